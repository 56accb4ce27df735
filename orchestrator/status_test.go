package orchestrator

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/opendao/dao"
)

// TestStatusMergesRestarts feeds the status writer the reports of a crash-looping task, in
// order and out of it, and checks what the store keeps and what its events say: a restart
// shows until a newer report says the container runs again, an older report undoes nothing,
// and a task that left running is not restarting.
func TestStatusMergesRestarts(t *testing.T) {
	ctx := context.Background()
	store := newTestStore(t)
	o, err := New(store)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	if err := store.Update(ctx, "test", func(tx Tx) error {
		return tx.CreateTask(&Task{Task: dao.Task{ID: "t1", NodeID: "n1", DesiredState: dao.TaskRunning,
			Status: dao.TaskStatus{State: dao.TaskRunning, PID: 10, Timestamp: at(0)}}})
	}); err != nil {
		t.Fatal(err)
	}
	var rev uint64
	_ = store.View(ctx, func(tx ReadTx) error { rev = tx.Revision(); return nil })
	events, err := o.Watch(ctx, rev+1, WatchTypes(TaskObject))
	if err != nil {
		t.Fatal(err)
	}

	running := func(ts time.Duration, restarts int) dao.TaskStatus {
		return dao.TaskStatus{State: dao.TaskRunning, PID: 20, Restarts: restarts, Timestamp: at(ts)}
	}
	restarting := func(ts time.Duration, restarts int) dao.TaskStatus {
		return dao.TaskStatus{State: dao.TaskRunning, ExitCode: 1, Restarts: restarts, Restarting: true,
			NextRestartAt: at(ts + 2*time.Second), FinishedAt: at(ts), Timestamp: at(ts),
			Message: "exited with code 1; restart in 2s"}
	}
	type want struct {
		restarting bool
		restarts   int
		state      dao.TaskState
	}
	steps := []struct {
		name  string
		batch []statusReport
		want  want
		cause string // of the event, when one is written
	}{{
		name:  "the container exits: restarting",
		batch: []statusReport{{"n1", TaskUpdate{TaskID: "t1", Status: restarting(time.Second, 0)}}},
		want:  want{restarting: true, state: dao.TaskRunning},
		cause: "status: node n1: task t1 restarting (exit 1, next attempt in 2s)",
	}, {
		name:  "an older report of it running undoes nothing",
		batch: []statusReport{{"n1", TaskUpdate{TaskID: "t1", Status: running(500*time.Millisecond, 0)}}},
		want:  want{restarting: true, state: dao.TaskRunning},
	}, {
		name:  "a report of another node is dropped",
		batch: []statusReport{{"n2", TaskUpdate{TaskID: "t1", Status: running(5*time.Second, 1)}}},
		want:  want{restarting: true, state: dao.TaskRunning},
	}, {
		name:  "started again: no longer restarting",
		batch: []statusReport{{"n1", TaskUpdate{TaskID: "t1", Status: running(3*time.Second, 1)}}},
		want:  want{restarts: 1, state: dao.TaskRunning},
		cause: "status: node n1: task t1 running (pid 20, 1 restart)",
	}, {
		name: "in one batch, the newer report wins whatever the order",
		batch: []statusReport{
			{"n1", TaskUpdate{TaskID: "t1", Status: restarting(5*time.Second, 1)}},
			{"n1", TaskUpdate{TaskID: "t1", Status: running(4*time.Second, 1)}},
		},
		want:  want{restarting: true, restarts: 1, state: dao.TaskRunning},
		cause: "status: 2 reports",
	}, {
		name: "failed: not restarting, whatever the report says",
		batch: []statusReport{{"n1", TaskUpdate{TaskID: "t1", Status: func() dao.TaskStatus {
			s := restarting(6*time.Second, 1)
			s.State = dao.TaskFailed
			return s
		}()}}},
		want:  want{restarts: 1, state: dao.TaskFailed},
		cause: "status: node n1: task t1 failed (exit 1, 1 restart)",
	}}
	for _, step := range steps {
		if err := o.writeStatus(ctx, step.batch); err != nil {
			t.Fatalf("%s: writeStatus: %v", step.name, err)
		}
		task, err := o.Task(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		st := task.Status
		got := want{restarting: st.Restarting, restarts: st.Restarts, state: st.State}
		if got != step.want {
			t.Errorf("%s: stored %+v, want %+v", step.name, got, step.want)
		}
		if !st.Restarting && !st.NextRestartAt.IsZero() {
			t.Errorf("%s: not restarting, but the next restart is at %s", step.name, st.NextRestartAt)
		}
		if step.cause == "" {
			continue
		}
		select {
		case e := <-events:
			if e.Cause != step.cause {
				t.Errorf("%s: event cause %q, want %q", step.name, e.Cause, step.cause)
			}
			if e.Task == nil || e.Task.Status.Restarting != step.want.restarting {
				t.Errorf("%s: event task %+v, want restarting %v", step.name, e.Task, step.want.restarting)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no event", step.name)
		}
	}
	select {
	case e := <-events:
		if !strings.HasPrefix(e.Cause, "status") {
			break
		}
		t.Errorf("an event too many: %s", e.Cause)
	default:
	}
}

// TestStatusOrderBySequence: reports that their node numbered (dao.TaskStatus.Seq) are
// ordered by their numbers, not by the node's clock: a node whose clock was set back an
// hour still has its newer report win, and an old report sent again after a reconnection,
// stamped before the clock was set back, does not override a newer one. Unnumbered
// reports are ordered by their timestamps, as before.
func TestStatusOrderBySequence(t *testing.T) {
	ctx := context.Background()
	store := newTestStore(t)
	o, err := New(store)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	running := func(seq uint64, ts time.Duration, restarts int) dao.TaskStatus {
		return dao.TaskStatus{State: dao.TaskRunning, PID: 20, Restarts: restarts, Timestamp: t0.Add(ts), Seq: seq}
	}
	if err := store.Update(ctx, "test", func(tx Tx) error {
		return tx.CreateTask(&Task{Task: dao.Task{ID: "t1", NodeID: "n1", DesiredState: dao.TaskRunning, Status: running(10, 0, 0)}})
	}); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name         string
		status       dao.TaskStatus
		wantRestarts int
		wantSeq      uint64
	}{
		{"the node's clock is an hour behind: its newer report wins", running(11, -time.Hour, 1), 1, 11},
		{"an old report sent again, stamped an hour ahead, changes nothing", running(9, time.Hour, 7), 1, 11},
		{"the same report again changes nothing", running(11, 2*time.Hour, 8), 1, 11},
		{"newer still, the clock back to right", running(12, time.Second, 2), 2, 12},
		{"unnumbered and observed before: dropped by its timestamp", running(0, -2*time.Hour, 9), 2, 12},
		{"unnumbered and observed after: taken by its timestamp", running(0, 2*time.Second, 3), 3, 0},
		{"numbered over unnumbered: by the timestamps, the one it has is newer", running(13, time.Second, 4), 3, 0},
		{"numbered over unnumbered: observed after", running(14, 3*time.Second, 5), 5, 14},
	} {
		if err := o.writeStatus(ctx, []statusReport{{"n1", TaskUpdate{TaskID: "t1", Status: step.status}}}); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		task, err := o.Task(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		if got := task.Status; got.Restarts != step.wantRestarts || got.Seq != step.wantSeq {
			t.Errorf("%s: stored restarts %d, seq %d; want %d, %d", step.name, got.Restarts, got.Seq, step.wantRestarts, step.wantSeq)
		}
	}
}
