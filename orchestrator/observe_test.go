package orchestrator

import (
	"testing"

	"github.com/opendao/dao"
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
		want   bool
	}{
		{"assigned to starting", base, func(t *dao.Task) { t.Status.State = dao.TaskStarting }, false},
		{"a new message", base, func(t *dao.Task) { t.Status.Message = "pulling" }, false},
		{"running, no health check", base, func(t *dao.Task) { t.Status.State = dao.TaskRunning }, true},
		{"running, health unknown", checked, func(t *dao.Task) { t.Status.State = dao.TaskRunning }, false},
		{"healthy", withState(checked, dao.TaskRunning), func(t *dao.Task) { t.Status.Health = dao.HealthHealthy }, true},
		{"unhealthy", withState(checked, dao.TaskRunning), func(t *dao.Task) { t.Status.Health = dao.HealthUnhealthy }, true},
		{"restarted", withState(base, dao.TaskRunning), func(t *dao.Task) { t.Status.Restarts = 1 }, true},
		{"failed", base, func(t *dao.Task) { t.Status.State = dao.TaskFailed }, true},
		{"completed", withState(base, dao.TaskRunning), func(t *dao.Task) { t.Status.State = dao.TaskComplete }, true},
		{"shut down", base, func(t *dao.Task) { t.DesiredState = dao.TaskShutdown }, true},
		{"moved", base, func(t *dao.Task) { t.NodeID = "n2" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, cur := tt.from, tt.from
			tt.change(&cur)
			if got := reconcileSees(&p, &cur); got != tt.want {
				t.Errorf("reconcileSees = %v, want %v", got, tt.want)
			}
		})
	}
}

func withState(t dao.Task, s dao.TaskState) dao.Task {
	t.Status.State = s
	return t
}
