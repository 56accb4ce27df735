package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/opendao/dao"
)

// TestSlowWatcherWhoseGoroutineDidNotRun ends a watch whose reader takes nothing, when the
// watch's goroutine gets to run only after the writers are done: no publish saw it
// blocked, so it must find out for itself that it is too far behind.
func TestSlowWatcherWhoseGoroutineDidNotRun(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	s, err := NewMemoryStore(WithHistory(64), WithWatchBuffer(64))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	events, err := s.Watch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	runtime.Gosched() // the watcher waits for the first publish
	for i := range 400 {
		err := s.Update(ctx, "test", func(tx Tx) error {
			for j := range 8 {
				if err := tx.CreateTask(&Task{Task: dao.Task{ID: fmt.Sprintf("t%d.%d", i, j), ServiceID: "web"}}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatal("watch closed without an error event")
			}
			if e.Err != nil {
				if !errors.Is(e.Err, ErrSlowWatcher) {
					t.Fatalf("watch ended with %v, want ErrSlowWatcher", e.Err)
				}
				return
			}
		case <-deadline:
			t.Fatal("the watch was not ended")
		}
	}
}
