package orchestrator_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/opendao/dao"
	"github.com/opendao/dao/orchestrator"
)

// TestTasksOfAQuarantinedServiceKeepRunning damages the record of a running service in
// the store's file: the store sets it aside as it opens, and the control plane that starts
// on the file leaves the service's tasks running (and says so) instead of taking them for
// those of a removed service and stopping them.
func TestTasksOfAQuarantinedServiceKeepRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	b, err := orchestrator.OpenBoltStore(path)
	if err != nil {
		t.Fatal(err)
	}
	spec := webSpec(2)
	ids := []string{"web.1.a", "web.2.a"}
	err = b.Update(t.Context(), "test: a service that ran", func(tx orchestrator.Tx) error {
		if err := tx.CreateService(&orchestrator.Service{ID: "web", Spec: spec}); err != nil {
			return err
		}
		for i, id := range ids {
			tk := &orchestrator.Task{Task: dao.Task{ID: id, ServiceID: "web", ServiceVersion: 1, Slot: i + 1,
				NodeID: "node-0001", Spec: spec.Container, DesiredState: dao.TaskRunning,
				Status: dao.TaskStatus{State: dao.TaskAssigned}, CreatedAt: time.Unix(1_700_000_000, 0)}}
			if err := tx.CreateTask(tk); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	editBolt(t, path, func(tx *bolt.Tx) error { return boltPut(tx, "services", "web", `{"id":"web","spec":`) })

	store, err := orchestrator.OpenBoltStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if q := store.Quarantined(); len(q) != 1 || !strings.Contains(q[0].Error(), "web") {
		t.Fatalf("quarantined: %v, want the record of web", q)
	}
	logger, logs := debugLogger()
	s := newSimWith(t, simConfig{nodes: 2, store: store, opts: []orchestrator.Option{orchestrator.WithLogger(logger)}})
	s.waitFor("both tasks running on their node", func() bool { return len(s.running("web")) == 2 })
	for range 40 { // two simulated seconds of passes
		s.clock.Advance(50 * time.Millisecond)
		time.Sleep(5 * time.Millisecond)
	}
	for _, id := range ids {
		got, err := s.o.Task(s.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.DesiredState != dao.TaskRunning || got.Status.State != dao.TaskRunning {
			t.Errorf("task %s of the quarantined service: desired %s, state %s; want both running", id, got.DesiredState, got.Status.State)
		}
	}
	if !strings.Contains(logs.String(), "left running") {
		t.Errorf("no warning says the tasks of the missing service are left running:\n%s", logs)
	}
}
