package dao_test

import (
	"testing"
	"time"

	"github.com/opendao/dao"
)

func TestTaskStatusDescribe(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		st   dao.TaskStatus
		want string
	}{
		{dao.TaskStatus{State: dao.TaskRunning, Restarting: true, ExitCode: 1, Restarts: 3, NextRestartAt: now.Add(2 * time.Second)},
			"restarting (exit 1, 3 restarts, next attempt in 2s)"},
		{dao.TaskStatus{State: dao.TaskRunning, Restarting: true, ExitCode: 137, OOMKilled: true, Restarts: 1, NextRestartAt: now.Add(-time.Second)},
			"restarting (OOM killed, 1 restart, next attempt now)"},
		{dao.TaskStatus{State: dao.TaskRunning, Restarting: true, ExitCode: 143, NextRestartAt: now.Add(150 * time.Millisecond)},
			"restarting (killed by signal 15, next attempt in 150ms)"},
		{dao.TaskStatus{State: dao.TaskRunning, PID: 4242, Health: dao.HealthHealthy, Restarts: 2},
			"running (pid 4242, healthy, 2 restarts)"},
		{dao.TaskStatus{State: dao.TaskRunning}, "running"},
		// Restarting means nothing past running.
		{dao.TaskStatus{State: dao.TaskFailed, Restarting: true, ExitCode: 2, Restarts: 5, Err: "exited with code 2; gave up after 5 restarts"},
			"failed (exit 2, 5 restarts): exited with code 2; gave up after 5 restarts"},
		{dao.TaskStatus{State: dao.TaskComplete}, "complete (exit 0)"},
		{dao.TaskStatus{State: dao.TaskShutdown, FinishedAt: now, ExitCode: 143}, "shutdown (killed by signal 15)"},
		{dao.TaskStatus{State: dao.TaskShutdown}, "shutdown"},
		{dao.TaskStatus{State: dao.TaskRejected, Err: "edge: image not found: x:1", Message: "rejected by the node"},
			"rejected: edge: image not found: x:1"},
		{dao.TaskStatus{State: dao.TaskPending, Message: "no node matches"}, "pending: no node matches"},
	}
	for _, tt := range tests {
		if got := tt.st.Describe(now); got != tt.want {
			t.Errorf("Describe(%+v)\n got %q\nwant %q", tt.st, got, tt.want)
		}
	}
}
