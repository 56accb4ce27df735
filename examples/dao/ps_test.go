package main

import (
	"testing"
	"time"

	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/pkg/protobuf"

	"github.com/opendao/dao/edge"
)

func TestDescribe(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	exited := &task.Process{Status: task.Status_STOPPED, ExitStatus: 1, ExitedAt: protobuf.ToTimestamp(now.Add(-3 * time.Second))}
	next := func(d time.Duration) map[string]string {
		return map[string]string{edge.LabelNextRestart: now.Add(d).Format(time.RFC3339Nano)}
	}
	tests := []struct {
		name          string
		p             *task.Process
		labels        map[string]string
		state, status string
	}{
		{"running", &task.Process{Status: task.Status_RUNNING, Pid: 42}, nil, "running", "pid 42"},
		{"stopped", exited, nil, "stopped", "exited (1) 3s ago"},
		{"restarting", exited, next(5 * time.Second), "restarting", "exited (1) 3s ago, next attempt in 5s"},
		{"restarting soon", exited, next(300 * time.Millisecond), "restarting", "exited (1) 3s ago, next attempt in <1s"},
		{"restart due", exited, next(-time.Second), "restarting", "exited (1) 3s ago, next attempt due"},
		{"restarting, its process deleted", nil, next(2 * time.Second), "restarting", "no process, next attempt in 2s"},
		// A label left on a container that runs again says nothing.
		{"running again", &task.Process{Status: task.Status_RUNNING, Pid: 43}, next(time.Second), "running", "pid 43"},
		{"label cleared", exited, map[string]string{edge.LabelNextRestart: ""}, "stopped", "exited (1) 3s ago"},
	}
	for _, tt := range tests {
		state, status := describe(tt.p, tt.labels, now)
		if state != tt.state || status != tt.status {
			t.Errorf("%s: describe = %q, %q; want %q, %q", tt.name, state, status, tt.state, tt.status)
		}
	}
}
