package orchestrator_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/opendao/dao"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/orchestrator/simnode"
)

// TestNothingLeftRunning creates an Orchestrator over a memory store and over a bbolt
// store, runs it with a few services on simulated nodes (on the system clock, so that
// their timers are real), waits for the tasks to run, deploys, then stops and closes
// everything, many times, and checks that no goroutine is left. It does not run in
// parallel with other tests: goleak counts every goroutine of the process.
func TestNothingLeftRunning(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	stores := []struct {
		name string
		open func(t *testing.T, i int) orchestrator.Store
	}{
		{"memory", func(t *testing.T, _ int) orchestrator.Store {
			s, err := orchestrator.NewMemoryStore()
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
		{"bbolt", func(t *testing.T, i int) orchestrator.Store {
			s, err := orchestrator.OpenBoltStore(filepath.Join(t.TempDir(), fmt.Sprintf("state-%d.db", i)))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			for i := range 10 {
				runOnce(t, st.open(t, i))
				if t.Failed() {
					return
				}
			}
		})
	}
	goleak.VerifyNone(t, ignore)
}

// runOnce runs an orchestrator over store until three services run, deploys one of them
// and removes another, then stops it, closes the nodes and the store.
func runOnce(t *testing.T, store orchestrator.Store) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o, err := orchestrator.New(store, orchestrator.WithHeartbeatTimeout(time.Second), orchestrator.WithGrace(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := simnode.NewCluster(4,
		simnode.WithNodeOptions(simnode.WithStartLatency(simnode.Uniform(0, 5*time.Millisecond))),
		simnode.WithClusterStatusFunc(o.ReportStatus),
		simnode.WithClusterHeartbeat(100*time.Millisecond, func(id string, _ time.Time) { _ = o.Heartbeat(id) }))
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range cluster.Infos() {
		if err := o.AddNode(ctx, info, cluster.Node(info.ID)); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	fast := dao.UpdatePolicy{Parallelism: 2, Monitor: dao.Duration(time.Millisecond)}
	for _, name := range []string{"web", "api", "db"} {
		spec := dao.ServiceSpec{Name: name, Replicas: 3, Update: fast,
			Container: dao.ContainerSpec{Image: "example.com/" + name + ":1"}}
		if _, err := o.CreateService(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	waitRunning(t, o, "web", "example.com/web:1", 3)
	// A second Run while the first runs (it placed the tasks) is refused, and starts
	// nothing.
	rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
	if err := o.Run(rctx); !errors.Is(err, orchestrator.ErrAlreadyRunning) {
		t.Errorf("second Run: %v, want ErrAlreadyRunning", err)
	}
	rcancel()
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	if err := o.Deploy(dctx, "web", "example.com/web:2"); err != nil {
		t.Errorf("Deploy: %v", err)
	}
	dcancel()
	if err := o.RemoveService(ctx, "db"); err != nil {
		t.Error(err)
	}
	waitRunning(t, o, "api", "example.com/api:1", 3)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v, want context.Canceled", err)
	}
	cluster.Close()
	if err := store.Close(); err != nil {
		t.Errorf("store Close: %v", err)
	}
}

// waitRunning waits until n tasks of the service run image.
func waitRunning(t *testing.T, o *orchestrator.Orchestrator, service, image string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ts, err := o.Tasks(context.Background(), orchestrator.TaskFilter{ServiceID: service, Live: true})
		if err != nil {
			t.Fatal(err)
		}
		running := 0
		for _, tk := range ts {
			if tk.Status.State == dao.TaskRunning && tk.Spec.Image == image {
				running++
			}
		}
		if running == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d tasks run %s after 10s", service, running, n, image)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
