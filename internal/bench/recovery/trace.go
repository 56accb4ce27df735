package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/edge"
)

// tracer records when the agent did what for one task: the moments of its own debug
// messages, and of the status reports that say the task runs.
type tracer struct {
	id string

	mu      sync.Mutex
	logged  []mark
	running []running
	more    chan struct{}
}

type running struct {
	pid uint32
	at  time.Time
}

func newTracer(id string) *tracer { return &tracer{id: id, more: make(chan struct{})} }

// The agent's messages on a restart, and the names of their moments.
var agentSteps = map[string]string{
	"container exited: restart scheduled": "agent: exit decided",
	"restarting container":                "agent: restarting",
	"container started":                   "agent: started",
}

func (t *tracer) logger() *slog.Logger { return slog.New(traceHandler{t}) }

func (t *tracer) status(u edge.TaskUpdate) {
	if u.TaskID != t.id || u.Status.State != dao.TaskRunning || u.Status.PID == 0 {
		return
	}
	t.mu.Lock()
	t.running = append(t.running, running{u.Status.PID, time.Now()})
	close(t.more)
	t.more = make(chan struct{})
	t.mu.Unlock()
}

// waitRunning returns when the agent reported the task running with a PID other than old.
func (t *tracer) waitRunning(old uint32, timeout time.Duration) (time.Time, error) {
	deadline := time.After(timeout)
	for {
		t.mu.Lock()
		for _, r := range t.running {
			if r.pid != old {
				t.running = nil
				t.mu.Unlock()
				return r.at, nil
			}
		}
		more := t.more
		t.mu.Unlock()
		select {
		case <-more:
		case <-deadline:
			return time.Time{}, fmt.Errorf("the agent did not report %s running again within %s", t.id, timeout)
		}
	}
}

// marks returns the agent's steps since since, and forgets them.
func (t *tracer) marks(since time.Time) []mark {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ms []mark
	for _, m := range t.logged {
		if !m.at.Before(since) {
			ms = append(ms, m)
		}
	}
	t.logged = nil
	return ms
}

// traceHandler is the agent's logger: it keeps the moments of the restart's messages.
type traceHandler struct{ t *tracer }

func (h traceHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelDebug }

func (h traceHandler) Handle(_ context.Context, r slog.Record) error {
	name, ok := agentSteps[r.Message]
	if !ok {
		if r.Level >= slog.LevelWarn {
			fmt.Printf("agent: %s\n", r.Message)
		}
		return nil
	}
	h.t.mu.Lock()
	h.t.logged = append(h.t.logged, mark{name, r.Time})
	h.t.mu.Unlock()
	return nil
}

func (h traceHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h traceHandler) WithGroup(string) slog.Handler      { return h }
