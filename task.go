package dao

import (
	"fmt"
	"strings"
	"time"
)

// TaskState is a step in the life of a task. States only move forward, in the order of the
// constants below; the last five end a task. JSON has a state as its name ("running");
// the etcd store and the node protocol (CBOR) as its number, so the constants are never
// renumbered.
type TaskState int

// Task states, in order.
const (
	// TaskPending: created, waiting for a node.
	TaskPending TaskState = iota
	// TaskAssigned: placed on a node, which has not acted yet.
	TaskAssigned
	// TaskPreparing: the node is getting the image and creating the container.
	TaskPreparing
	// TaskStarting: the container is created and being started.
	TaskStarting
	// TaskRunning: the container runs. Local restarts keep the task here.
	TaskRunning
	// TaskComplete: the container exited with code 0 and will not be restarted.
	TaskComplete
	// TaskFailed: the container failed and will not be restarted on this node.
	TaskFailed
	// TaskShutdown: stopped because it was no longer wanted.
	TaskShutdown
	// TaskRejected: the node could not run it (bad image, bad spec).
	TaskRejected
	// TaskOrphaned: its node was lost for good.
	TaskOrphaned
)

var taskStateNames = [...]string{"pending", "assigned", "preparing", "starting", "running",
	"complete", "failed", "shutdown", "rejected", "orphaned"}

func (s TaskState) String() string {
	if s < 0 || int(s) >= len(taskStateNames) {
		return fmt.Sprintf("TaskState(%d)", int(s))
	}
	return taskStateNames[s]
}

// ParseTaskState reads the name of a state, such as "running".
func ParseTaskState(name string) (TaskState, error) {
	for i, n := range taskStateNames {
		if n == name {
			return TaskState(i), nil
		}
	}
	return 0, fmt.Errorf("%w: task state %q: must be one of %v", ErrInvalid, name, taskStateNames)
}

// MarshalText writes the state's name.
func (s TaskState) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, fmt.Errorf("%w: task state %d", ErrInvalid, int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText reads the state's name.
func (s *TaskState) UnmarshalText(b []byte) error {
	v, err := ParseTaskState(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Valid reports whether s is one of the defined states.
func (s TaskState) Valid() bool { return s >= TaskPending && s <= TaskOrphaned }

// Terminal reports whether s ends the task.
func (s TaskState) Terminal() bool { return s >= TaskComplete && s <= TaskOrphaned }

// CanTransition reports whether a task in state s may move to state to: only forward, never
// out of a terminal state. Staying in the same state is allowed (a status update).
func (s TaskState) CanTransition(to TaskState) bool {
	if !s.Valid() || !to.Valid() {
		return false
	}
	if s.Terminal() {
		return to == s
	}
	return to >= s
}

// HealthState is the result of a container's health check.
type HealthState string

// Health states. The zero value means the container has no health check.
const (
	HealthNone      HealthState = ""
	HealthStarting  HealthState = "starting"
	HealthHealthy   HealthState = "healthy"
	HealthUnhealthy HealthState = "unhealthy"
)

// Task is one slot of a service on one node.
type Task struct {
	ID string `json:"id"`
	// ServiceID and ServiceVersion name the service and the version of its spec that this task
	// runs; both are empty for a task run on its own.
	ServiceID      string `json:"serviceID,omitempty"`
	ServiceVersion uint64 `json:"serviceVersion,omitempty"`
	// Slot numbers the tasks of a replicated service from 1; 0 for a global one.
	Slot   int    `json:"slot,omitempty"`
	NodeID string `json:"nodeID,omitempty"`
	// Spec is what the task runs and Restart when its node restarts it.
	Spec    ContainerSpec `json:"spec"`
	Restart RestartPolicy `json:"restart,omitzero"`
	// DesiredState is where the control plane wants the task: the node runs it while this is
	// at most TaskRunning, and stops it once it is past (TaskShutdown).
	DesiredState TaskState  `json:"desiredState"`
	Status       TaskStatus `json:"status"`
	CreatedAt    time.Time  `json:"createdAt,omitzero"`
}

// TaskStatus is what a node observed of a task.
type TaskStatus struct {
	State   TaskState `json:"state"`
	Message string    `json:"message,omitempty"`
	// Err says what went wrong, in a failed or rejected state.
	Err         string      `json:"err,omitempty"`
	ContainerID string      `json:"containerID,omitempty"`
	PID         uint32      `json:"pid,omitempty"`
	Health      HealthState `json:"health,omitempty"`
	// ExitCode and OOMKilled describe the last exit of the container.
	ExitCode  int  `json:"exitCode,omitempty"`
	OOMKilled bool `json:"oomKilled,omitempty"`
	// Restarts counts local restarts of the container by its node.
	Restarts int `json:"restarts,omitempty"`
	// Restarting says that the container is down and its node will start it again at
	// NextRestartAt (its restart policy's backoff); ExitCode, OOMKilled and FinishedAt then
	// describe the exit it is recovering from. The task's State stays TaskRunning meanwhile,
	// as a Kubernetes pod in CrashLoopBackOff stays in phase Running. It goes false when the
	// container is started again, and in every state but TaskRunning. Describe renders it.
	Restarting    bool      `json:"restarting,omitempty"`
	NextRestartAt time.Time `json:"nextRestartAt,omitzero"`
	Addresses     []string  `json:"addresses,omitempty"`
	StartedAt     time.Time `json:"startedAt,omitzero"`
	FinishedAt    time.Time `json:"finishedAt,omitzero"`
	// Timestamp is when this status was observed, by its node's clock.
	Timestamp time.Time `json:"timestamp,omitzero"`
	// Seq orders the statuses a node reports of its tasks: a remote node numbers each one
	// it sends from one counter that only grows, across its sessions and the restarts of
	// its agent (package cluster's Client does, and keeps the counter in the node's state
	// directory). A status whose Seq is lower than the one the store has is older news,
	// whatever the clocks say. 0 is unnumbered (a node in the control plane's process):
	// then Timestamp orders them.
	Seq uint64 `json:"seq,omitempty"`
}

// Describe renders the status as a person reads it, at time now (for the wait before a
// restart), like the STATUS column of docker ps:
//
//	running (pid 4242, healthy, 2 restarts)
//	restarting (exit 1, 3 restarts, next attempt in 2s)
//	restarting (OOM killed, 1 restart, next attempt now)
//	failed (exit 2): exited with code 2; gave up after 5 restarts within 1m0s
//	complete (exit 0)
//	rejected: edge: image not found: example.com/app:1
//	pending: no node matches constraint zone==eu
func (s TaskStatus) Describe(now time.Time) string {
	var details []string
	exit := func() {
		switch {
		case s.OOMKilled:
			details = append(details, "OOM killed")
		case s.ExitCode > 128 && s.ExitCode < 128+65:
			details = append(details, fmt.Sprintf("killed by signal %d", s.ExitCode-128))
		default:
			details = append(details, fmt.Sprintf("exit %d", s.ExitCode))
		}
	}
	restarts := func() {
		switch s.Restarts {
		case 0:
		case 1:
			details = append(details, "1 restart")
		default:
			details = append(details, fmt.Sprintf("%d restarts", s.Restarts))
		}
	}
	name, why := s.State.String(), ""
	switch {
	case s.Restarting && s.State == TaskRunning:
		name = "restarting"
		exit()
		restarts()
		details = append(details, "next attempt "+untilText(s.NextRestartAt, now))
	case s.State == TaskRunning:
		if s.PID != 0 {
			details = append(details, fmt.Sprintf("pid %d", s.PID))
		}
		if s.Health != HealthNone {
			details = append(details, string(s.Health))
		}
		restarts()
	case s.State == TaskComplete, s.State == TaskFailed:
		exit()
		restarts()
		why = s.Err
	case s.State == TaskShutdown && !s.FinishedAt.IsZero():
		exit()
	default:
		why = s.Err
		if why == "" {
			why = s.Message
		}
	}
	out := name
	if len(details) > 0 {
		out += " (" + strings.Join(details, ", ") + ")"
	}
	if why != "" {
		out += ": " + why
	}
	return out
}

// untilText says when t comes, seen at now: "in 2s", "in 150ms", "now".
func untilText(t, now time.Time) string {
	d := t.Sub(now)
	if d < time.Second {
		d = d.Round(time.Millisecond)
	} else {
		d = d.Round(time.Second)
	}
	if t.IsZero() || d <= 0 {
		return "now"
	}
	return "in " + d.String()
}

// Validate checks the task and returns a *ValidationError naming every invalid field.
func (t *Task) Validate() error {
	var p problems
	if t.ID == "" {
		p.add("id", "must not be empty")
	}
	if t.Slot < 0 {
		p.add("slot", "must be >= 0, got %d", t.Slot)
	}
	t.Spec.validate(&p, "spec")
	t.Restart.validate(&p, "restart")
	if !t.DesiredState.Valid() {
		p.add("desiredState", "%d is not a task state", int(t.DesiredState))
	}
	if !t.Status.State.Valid() {
		p.add("status.state", "%d is not a task state", int(t.Status.State))
	}
	return p.err("task")
}
