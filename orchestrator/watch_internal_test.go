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
