package orchestrator

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/opendao/dao"
)

func newTestStore(t *testing.T, opts ...StoreOption) *MemoryStore {
	t.Helper()
	s, err := NewMemoryStore(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustPanic(t *testing.T, what, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Errorf("%s: no panic", what)
			return
		}
		if !strings.Contains(fmt.Sprint(r), want) {
			t.Errorf("%s: panic %v, want one saying %q", what, r, want)
		}
	}()
	f()
}

func TestTransactionMisuse(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	var kept Tx
	if err := s.Update(ctx, "test", func(tx Tx) error {
		kept = tx
		return tx.CreateTask(&Task{Task: dao.Task{ID: "t1"}})
	}); err != nil {
		t.Fatal(err)
	}
	mustPanic(t, "Task after Update returned", "after its function returned", func() { kept.Task("t1") })
	mustPanic(t, "Tasks after Update returned", "after its function returned", func() {
		for range kept.Tasks() {
		}
	})
	mustPanic(t, "CreateTask after Update returned", "after its function returned", func() {
		kept.CreateTask(&Task{Task: dao.Task{ID: "t2"}})
	})
	mustPanic(t, "write in a View", "read-only", func() {
		s.View(ctx, func(tx ReadTx) error { return tx.(Tx).CreateTask(&Task{Task: dao.Task{ID: "t3"}}) })
	})
	if err := s.View(ctx, func(tx ReadTx) error {
		_, err := tx.Task("t3")
		if err == nil {
			t.Error("a write in a View was kept")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestHistoryIsBounded(t *testing.T) {
	for _, history := range []int{1, 3, 100, 5000} {
		t.Run(fmt.Sprint(history), func(t *testing.T) {
			h := newHub(0, history, 10)
			for rev := uint64(1); rev <= 20_000; rev++ {
				h.publish(rev, "test", []change{{typ: TaskObject, id: "t", cur: &taskRec{}}})
				kept := h.next - h.head.first
				if kept < uint64(min(history, int(rev))) || kept > uint64(history+h.chunkSize) {
					t.Fatalf("revision %d: %d events kept, want %d to %d", rev, kept, history, history+h.chunkSize)
				}
				if h.compacted != h.head.first {
					t.Fatalf("revision %d: compacted %d, first revision kept %d", rev, h.compacted, h.head.first+1)
				}
			}
		})
	}
}

func TestTasksShareTheirSpec(t *testing.T) {
	s := newTestStore(t)
	spec := func() dao.ContainerSpec {
		return dao.ContainerSpec{Image: "web", Env: []string{"A=1"}, Labels: map[string]string{"a": "b"}}
	}
	err := s.Update(context.Background(), "test", func(tx Tx) error {
		for i := range 3 {
			if err := tx.CreateTask(&Task{Task: dao.Task{ID: fmt.Sprint(i), ServiceID: "web", Spec: spec()}}); err != nil {
				return err
			}
		}
		other := spec()
		other.Env = []string{"A=2"}
		return tx.CreateTask(&Task{Task: dao.Task{ID: "other", ServiceID: "web", Spec: other}})
	})
	if err != nil {
		t.Fatal(err)
	}
	st := &s.c.st
	env := func(id string) *string { return &st.tasks.get(id).Spec.Env[0] }
	if env("0") != env("1") || env("1") != env("2") {
		t.Error("tasks with equal specs do not share them")
	}
	if env("other") == env("0") {
		t.Error("a task with another spec shares the first one")
	}
	// An update that leaves the spec as it was keeps sharing it.
	err = s.Update(context.Background(), "test", func(tx Tx) error {
		tk, err := tx.Task("1")
		if err != nil {
			return err
		}
		tk.NodeID = "n1"
		return tx.UpdateTask(&tk)
	})
	if err != nil {
		t.Fatal(err)
	}
	if env("1") != env("0") {
		t.Error("an updated task no longer shares its spec")
	}
}
