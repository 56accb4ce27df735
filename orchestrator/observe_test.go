package orchestrator

import (
	"testing"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/orchestrator/scheduler"
)

func TestReconcileSees(t *testing.T) {
	base := dao.Task{ID: "t1", ServiceID: "s", ServiceVersion: 1, Slot: 1, NodeID: "n1",
		DesiredState: dao.TaskRunning, Status: dao.TaskStatus{State: dao.TaskAssigned}}
	checked := base
	checked.Spec.HealthCheck = &dao.HealthCheck{Command: []string{"true"}}
	tests := []struct {
		name   string
		from   dao.Task
		change func(*dao.Task)
		want   bool // the reconciler hears of it, at once or a moment later
		lazy   bool // a moment later: the task started, and nothing else changed
	}{
		{"assigned to starting", base, func(t *dao.Task) { t.Status.State = dao.TaskStarting }, false, false},
		{"a new message", base, func(t *dao.Task) { t.Status.Message = "pulling" }, false, false},
		{"running, no health check", base, func(t *dao.Task) { t.Status.State = dao.TaskRunning }, true, true},
		{"running, health unknown", checked, func(t *dao.Task) { t.Status.State = dao.TaskRunning }, false, false},
		{"healthy", withState(checked, dao.TaskRunning), func(t *dao.Task) { t.Status.Health = dao.HealthHealthy }, true, true},
		{"unhealthy", withState(checked, dao.TaskRunning), func(t *dao.Task) { t.Status.Health = dao.HealthUnhealthy }, true, false},
		{"restarted", withState(base, dao.TaskRunning), func(t *dao.Task) { t.Status.Restarts = 1 }, true, false},
		{"restarting", withState(base, dao.TaskRunning), func(t *dao.Task) { t.Status.Restarting = true }, true, false},
		{"failed", base, func(t *dao.Task) { t.Status.State = dao.TaskFailed }, true, false},
		{"completed", withState(base, dao.TaskRunning), func(t *dao.Task) { t.Status.State = dao.TaskComplete }, true, false},
		{"shut down", base, func(t *dao.Task) { t.DesiredState = dao.TaskShutdown }, true, false},
		{"moved", base, func(t *dao.Task) { t.NodeID = "n2" }, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, cur := tt.from, tt.from
			tt.change(&cur)
			now := reconcileSees(&p, &cur)
			if got := now || startedOnly(&p, &cur); got != tt.want {
				t.Errorf("heard of = %v, want %v", got, tt.want)
			}
			if tt.want && now == tt.lazy {
				t.Errorf("heard of at once = %v, want %v", now, !tt.lazy)
			}
		})
	}
}

func withState(t dao.Task, s dao.TaskState) dao.Task {
	t.Status.State = s
	return t
}

// TestTaskStartedAndFailed: what a rolling update's gate makes of a new task's status. A
// task whose container is down (its node restarts it) runs in name only: it has not
// started, and it failed.
func TestTaskStartedAndFailed(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	run := dao.Task{ID: "t1", DesiredState: dao.TaskRunning,
		Status: dao.TaskStatus{State: dao.TaskRunning, StartedAt: t0}}
	checked := run
	checked.Spec.HealthCheck = &dao.HealthCheck{Command: []string{"true"}}
	with := func(t dao.Task, f func(*dao.TaskStatus)) dao.Task { f(&t.Status); return t }
	tests := []struct {
		name            string
		task            dao.Task
		started, failed bool
	}{
		{"running", run, true, false},
		{"starting", with(run, func(s *dao.TaskStatus) { s.State = dao.TaskStarting }), false, false},
		{"health unknown", checked, false, false},
		{"healthy", with(checked, func(s *dao.TaskStatus) { s.Health = dao.HealthHealthy }), true, false},
		{"unhealthy", with(checked, func(s *dao.TaskStatus) { s.Health = dao.HealthUnhealthy }), false, true},
		{"restarting", with(run, func(s *dao.TaskStatus) {
			s.Restarting, s.NextRestartAt, s.FinishedAt = true, t0.Add(2*time.Second), t0.Add(time.Second)
		}), false, true},
		{"restarting, healthy as last seen", with(checked, func(s *dao.TaskStatus) {
			s.Health, s.Restarting = dao.HealthHealthy, true
		}), false, true},
		{"exited, not restarted yet (no Restarting from its node)", with(run, func(s *dao.TaskStatus) {
			s.FinishedAt = t0.Add(time.Second)
		}), false, true},
		{"restarted once, running again", with(run, func(s *dao.TaskStatus) {
			s.Restarts, s.FinishedAt, s.StartedAt = 1, t0.Add(time.Second), t0.Add(2*time.Second)
		}), true, true},
		{"failed", with(run, func(s *dao.TaskStatus) { s.State = dao.TaskFailed }), false, true},
		{"rejected", with(run, func(s *dao.TaskStatus) { s.State = dao.TaskRejected }), false, true},
	}
	for _, tt := range tests {
		if got := taskStarted(&tt.task); got != tt.started {
			t.Errorf("%s: taskStarted = %v, want %v", tt.name, got, tt.started)
		}
		if got := taskFailed(&tt.task); got != tt.failed {
			t.Errorf("%s: taskFailed = %v, want %v", tt.name, got, tt.failed)
		}
	}
}

// The loop's own writes are no news to the reconciler: the events of a plan it wrote, or
// of a placement the scheduler wrote, leave the service as it was; the same change by any
// other writer marks it; and a plan deaf to starts lets the news that a task started go.
func TestObserveOwnWritesAndDeafServices(t *testing.T) {
	s, err := NewMemoryStore()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	o, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	sched, err := scheduler.New()
	if err != nil {
		t.Fatal(err)
	}
	o.sched = sched
	placed := dao.Task{ID: "web.1.x", ServiceID: "web", Slot: 1, NodeID: "n1",
		DesiredState: dao.TaskRunning, Status: dao.TaskStatus{State: dao.TaskAssigned}}
	unplaced := placed
	unplaced.NodeID, unplaced.Status.State = "", dao.TaskPending
	placement := func(rev uint64) *Event {
		return &Event{Revision: rev, Kind: EventUpdated, Type: TaskObject,
			Task: &Task{Task: placed}, PrevTask: &Task{Task: unplaced}}
	}
	reset := func() {
		clear(o.dirtySvc)
		clear(o.lazySvc)
		clear(o.skippedSvc)
	}

	o.wrote(7)
	o.observeLocked(placement(7))
	if o.dirtySvc["web"] {
		t.Error("the scheduler's own placement marked the service")
	}
	reset()
	o.observeLocked(placement(8))
	if !o.dirtySvc["web"] {
		t.Error("a placement by another writer did not mark the service")
	}

	reset()
	running := placed
	running.Status.State = dao.TaskRunning
	started := &Event{Revision: 9, Kind: EventUpdated, Type: TaskObject,
		Task: &Task{Task: running}, PrevTask: &Task{Task: placed}}
	o.observeLocked(started)
	if !o.lazySvc["web"] {
		t.Error("a task's start was not news to a listening service")
	}
	reset()
	o.heard("web", true)
	o.observeLocked(started)
	if o.lazySvc["web"] || o.dirtySvc["web"] || !o.skippedSvc["web"] {
		t.Errorf("deaf service: lazy %v, dirty %v, skipped %v; want the start let go and noted",
			o.lazySvc["web"], o.dirtySvc["web"], o.skippedSvc["web"])
	}
	// A plan made meanwhile that listens takes in what was let go.
	o.heard("web", false)
	if !o.dirtySvc["web"] || o.skippedSvc["web"] {
		t.Error("a listening plan did not take in the start let go while it was made")
	}
}
