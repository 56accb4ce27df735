package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/opendao/dao"
)

// The orchestrator's own watch (watchInternal) is never ended for falling behind: a reader
// that takes nothing while writers write far more than the watch buffer gets every event
// afterwards, in order, where any other watch ends with ErrSlowWatcher.
func TestInternalWatchIsNeverEndedForFallingBehind(t *testing.T) {
	s, err := NewMemoryStore(WithHistory(16), WithWatchBuffer(16))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	internal, err := s.Watch(ctx, 0, watchInternal())
	if err != nil {
		t.Fatal(err)
	}
	plain, err := s.Watch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	for i := range n {
		err := s.Update(ctx, "test", func(tx Tx) error {
			return tx.CreateTask(&Task{Task: dao.Task{ID: fmt.Sprintf("web.%d", i), ServiceID: "web",
				DesiredState: dao.TaskRunning, Spec: dao.ContainerSpec{Image: "example.com/web:1", Env: []string{"A=1"}}}})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		select {
		case e := <-internal:
			if e.Err != nil {
				t.Fatalf("event %d of the internal watch: %v", i, e.Err)
			}
			if want := fmt.Sprintf("web.%d", i); e.Task == nil || e.Task.ID != want || len(e.Task.Spec.Env) != 1 {
				t.Fatalf("event %d of the internal watch: %+v, want the creation of %s", i, e, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the internal watch delivered %d of %d events", i, n)
		}
	}
	for {
		select {
		case e := <-plain:
			if e.Err == nil {
				continue
			}
			if !errors.Is(e.Err, ErrSlowWatcher) {
				t.Fatalf("the plain watch ended with %v, want ErrSlowWatcher", e.Err)
			}
			return
		case <-time.After(10 * time.Second):
			t.Fatal("the plain watch, 1000 events behind a buffer of 16, was not ended")
		}
	}
}

// A shared read returns the stored task's spec itself; a plain read a copy that the
// caller may change without the store seeing it.
func TestSharedReadsShareOnlyWhenAsked(t *testing.T) {
	s, err := NewMemoryStore()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	err = s.Update(ctx, "test", func(tx Tx) error {
		if err := tx.CreateNode(&Node{Node: dao.Node{ID: "n1", Labels: map[string]string{"zone": "a"}}}); err != nil {
			return err
		}
		return tx.CreateTask(&Task{Task: dao.Task{ID: "web.1", ServiceID: "web", DesiredState: dao.TaskRunning,
			Spec: dao.ContainerSpec{Image: "example.com/web:1", Env: []string{"A=1"}}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	read := func(ctx context.Context) (tk Task, n Node) {
		err := s.View(ctx, func(tx ReadTx) error {
			var err error
			if tk, err = tx.Task("web.1"); err != nil {
				return err
			}
			n, err = tx.Node("n1")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return tk, n
	}
	plainT, plainN := read(ctx)
	plainT.Spec.Env[0], plainN.Labels["zone"] = "A=changed", "changed"
	sharedT, sharedN := read(SharedReads(ctx))
	if sharedT.Spec.Env[0] != "A=1" || sharedN.Labels["zone"] != "a" {
		t.Fatalf("a plain read's copy, changed, changed the store: %v %v", sharedT.Spec.Env, sharedN.Labels)
	}
	again, againN := read(SharedReads(ctx))
	if &sharedT.Spec.Env[0] != &again.Spec.Env[0] {
		t.Error("two shared reads of a task do not share its environment")
	}
	againN.Labels["probe"] = "x"
	if _, ok := sharedN.Labels["probe"]; !ok {
		t.Error("two shared reads of a node do not share its labels")
	}
}
