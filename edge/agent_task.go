package edge

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/policy"
)

// taskWorker keeps one task's container as its task asks: it creates and starts it, restarts
// it by the restart policy, and runs its health check. One goroutine per task.
type taskWorker struct {
	a      *Agent
	task   dao.Task
	id     string // container ID: the task ID
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{}

	tracker   *policy.RestartTracker
	lastExit  time.Time // FinishedAt of the last exit handled
	restartAt time.Time // when a decided restart is due; zero when none
	terminal  bool      // the task ended here: complete, failed or rejected
	// restartLabel is set while the container has a LabelNextRestart of this worker's.
	restartLabel bool

	mu     sync.Mutex
	status dao.TaskStatus
	health *healthChecker
}

func newTaskWorker(ctx context.Context, a *Agent, t dao.Task) *taskWorker {
	ctx, cancel := context.WithCancel(ctx)
	w := &taskWorker{
		a:       a,
		task:    t,
		id:      t.ID,
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		tracker: policy.NewRestartTracker(t.Restart, nil),
		status:  dao.TaskStatus{State: dao.TaskAssigned, ContainerID: t.ID},
	}
	if prev, ok := a.statuses[t.ID]; ok && prev.State.Valid() {
		w.status = prev
	}
	return w
}

// notify wakes the worker to look at its container again.
func (w *taskWorker) notify(Event) {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *taskWorker) lastStatus() dao.TaskStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status
}

// retryDelay is the wait after a failure that may pass, such as containerd restarting.
const retryDelay = 500 * time.Millisecond

func (w *taskWorker) run() {
	defer close(w.done)
	defer w.stopHealth()
	for {
		wait := w.step()
		if w.ctx.Err() != nil {
			return
		}
		var timer *time.Timer
		var fire <-chan time.Time
		if wait > 0 {
			timer = time.NewTimer(wait)
			fire = timer.C
		}
		select {
		case <-w.ctx.Done():
		case <-w.wake:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// step looks at the container once and acts. It returns when it wants to look again at the
// latest (zero: at the next event).
func (w *taskWorker) step() time.Duration {
	if w.terminal {
		return 0
	}
	rt := w.a.rt
	st, err := rt.Status(w.ctx, w.id)
	switch {
	case errors.Is(err, ErrNotFound):
		return w.create()
	case err != nil:
		if w.ctx.Err() == nil {
			w.a.log.Warn("container status", "task", w.id, "err", err)
		}
		return retryDelay
	}
	w.restartLabel = st.Labels[LabelNextRestart] != "" // perhaps left by an earlier program
	if st.SpecHash != SpecHash(&w.task.Spec) {
		// Left by an older spec of the same task: replace it.
		w.a.log.Debug("container of an older spec of the task: replacing it", "task", w.id, "state", st.State)
		w.stopHealth()
		if _, err := rt.Stop(w.ctx, w.id); err != nil {
			return retryDelay
		}
		if err := rt.Remove(w.ctx, w.id); err != nil && !errors.Is(err, ErrNotFound) {
			return retryDelay
		}
		return w.create()
	}
	switch st.State {
	case StateCreated:
		return w.start("starting")
	case StateRunning, StatePaused:
		w.mu.Lock()
		known := w.status.State == dao.TaskRunning && w.status.PID == st.PID
		w.mu.Unlock()
		if !known {
			// A container found running: ours from before a restart of the program.
			w.a.log.Debug("container found running: adopted", "task", w.id, "pid", st.PID, "startedAt", st.StartedAt)
			w.tracker.Started(st.StartedAt)
			w.update(func(s *dao.TaskStatus) {
				s.State = dao.TaskRunning
				s.Message = "running"
				s.Restarting, s.NextRestartAt = false, time.Time{}
				s.PID = st.PID
				s.StartedAt = st.StartedAt
				s.Addresses = st.Addresses
				if n, err := strconv.Atoi(st.Labels[LabelRestarts]); err == nil && n > s.Restarts {
					s.Restarts = n // counted before this program started
				}
			})
			w.startHealth(st.PID)
		}
		return 0
	case StateStopped:
		return w.exited(st)
	}
	return retryDelay
}

// create creates and starts the container.
func (w *taskWorker) create() time.Duration {
	w.update(func(s *dao.TaskStatus) {
		s.State = max(s.State, dao.TaskPreparing)
		s.Message = "creating container"
	})
	labels := map[string]string{LabelTask: w.task.ID}
	if w.task.ServiceID != "" {
		labels[LabelService] = w.task.ServiceID
	}
	err := w.a.rt.Create(w.ctx, w.id, w.task.Spec, WithLabels(labels))
	switch {
	case err == nil:
		w.a.log.Debug("container created", "task", w.id, "image", w.task.Spec.Image)
	case errors.Is(err, ErrAlreadyExists):
		w.a.log.Debug("container already there", "task", w.id)
	case errors.Is(err, dao.ErrInvalid), errors.Is(err, ErrImageNotFound), errors.Is(err, errInvalidID),
		errors.Is(err, ErrNoNetwork):
		w.a.log.Debug("task rejected", "task", w.id, "err", err)
		w.terminal = true
		w.update(func(s *dao.TaskStatus) {
			s.State = dao.TaskRejected
			s.Message = "rejected by the node"
			s.Err = err.Error()
		})
		return 0
	default:
		if w.ctx.Err() != nil {
			return 0
		}
		w.a.log.Debug("create failed: retrying", "task", w.id, "after", retryDelay, "err", err)
		w.update(func(s *dao.TaskStatus) { s.Message = "create failed, retrying: " + err.Error() })
		return retryDelay
	}
	return w.start("starting")
}

// start starts the (created or exited) container.
func (w *taskWorker) start(message string) time.Duration {
	w.update(func(s *dao.TaskStatus) {
		s.State = max(s.State, dao.TaskStarting)
		s.Message = message
	})
	st, err := w.a.rt.Start(w.ctx, w.id)
	if err != nil {
		if w.ctx.Err() != nil {
			return 0
		}
		w.a.log.Debug("start failed: retrying", "task", w.id, "after", retryDelay, "err", err)
		next := time.Now().Add(retryDelay)
		w.update(func(s *dao.TaskStatus) {
			s.Message = "start failed, retrying: " + err.Error()
			if s.Restarting {
				s.NextRestartAt = next
			}
		})
		return retryDelay
	}
	w.restartAt = time.Time{}
	w.tracker.Started(time.Now())
	w.a.log.Debug("container started", "task", w.id, "pid", st.PID, "why", message)
	w.update(func(s *dao.TaskStatus) {
		s.State = dao.TaskRunning
		s.Message = "running"
		s.Err = ""
		s.Restarting, s.NextRestartAt = false, time.Time{}
		s.PID = st.PID
		s.Addresses = st.Addresses
		s.StartedAt = st.StartedAt
		if s.StartedAt.IsZero() {
			s.StartedAt = time.Now()
		}
	})
	w.startHealth(st.PID)
	return 0
}

// exited handles a stopped container: decide once per exit, then restart when due.
func (w *taskWorker) exited(st ContainerStatus) time.Duration {
	if !st.FinishedAt.Equal(w.lastExit) || w.restartAt.IsZero() && w.lastExit.IsZero() {
		w.lastExit = st.FinishedAt
		w.stopHealth()
		when := st.FinishedAt
		if when.IsZero() {
			when = time.Now()
		}
		d := w.tracker.Exited(when, st.ExitCode)
		if d.Restart {
			w.restartAt = time.Now().Add(d.Delay)
			w.a.log.Debug("container exited: restart scheduled", "task", w.id, "exitCode", st.ExitCode,
				"oomKilled", st.OOMKilled, "backoff", d.Delay, "attempt", d.Attempt, "at", w.restartAt)
		} else {
			w.a.log.Debug("container exited: not restarted", "task", w.id, "exitCode", st.ExitCode,
				"oomKilled", st.OOMKilled, "why", d.Reason)
		}
		w.update(func(s *dao.TaskStatus) {
			s.PID = 0
			s.ExitCode = st.ExitCode
			s.OOMKilled = st.OOMKilled
			s.FinishedAt = st.FinishedAt
			s.Health = dao.HealthNone
			s.Restarting, s.NextRestartAt = false, time.Time{}
			if w.task.Spec.HealthCheck != nil {
				s.Health = dao.HealthStarting
			}
			switch {
			case d.Restart:
				s.Message = st.Reason() + "; " + d.Reason
				// Down, and coming back: the task stays running, as in CrashLoopBackOff.
				// A container that exited ran (before a restart of this program, say).
				if !st.FinishedAt.IsZero() {
					s.State = max(s.State, dao.TaskRunning)
				}
				s.Restarting = s.State == dao.TaskRunning
				if s.Restarting {
					s.NextRestartAt = w.restartAt
				}
			case st.ExitCode == 0 && !st.OOMKilled:
				s.State = dao.TaskComplete
				s.Message = st.Reason() + "; " + d.Reason
			default:
				s.State = dao.TaskFailed
				s.Message = st.Reason()
				s.Err = st.Reason() + "; " + d.Reason
			}
		})
		switch {
		case d.Restart && d.Delay > 0:
			// Down for a while: say so on the container too, for those who read containerd.
			w.setRestartLabel(map[string]string{LabelNextRestart: w.restartAt.UTC().Format(time.RFC3339Nano)})
		case !d.Restart && w.restartLabel:
			w.setRestartLabel(map[string]string{LabelNextRestart: ""})
		}
		if !d.Restart {
			w.terminal = true
			return 0
		}
	}
	if wait := time.Until(w.restartAt); wait > 0 {
		return wait
	}
	var restarts int
	w.update(func(s *dao.TaskStatus) { s.Restarts++; restarts = s.Restarts })
	w.a.log.Debug("restarting container", "task", w.id, "restarts", restarts)
	wait := w.start("restarting")
	// The count goes on the container once it runs again, not before: a write of
	// containerd's metadata (a transaction synced to disk) is not worth delaying the restart
	// for. A program that stops in between loses one restart from the count.
	labels := map[string]string{LabelRestarts: strconv.Itoa(restarts)}
	if w.restartLabel {
		labels[LabelNextRestart] = ""
	}
	w.setRestartLabel(labels)
	return wait
}

// setRestartLabel sets labels that record restarts on the container.
func (w *taskWorker) setRestartLabel(labels map[string]string) {
	if err := w.a.rt.setLabels(w.ctx, w.id, labels); err != nil {
		if w.ctx.Err() == nil {
			w.a.log.Warn("record restart on the container", "task", w.id, "err", err)
		}
		return
	}
	if v, ok := labels[LabelNextRestart]; ok {
		w.restartLabel = v != ""
	}
}

// update changes the worker's status and reports it.
func (w *taskWorker) update(f func(*dao.TaskStatus)) {
	w.mu.Lock()
	before := w.status
	f(&w.status)
	w.status.ContainerID = w.id
	if !before.State.CanTransition(w.status.State) {
		w.status.State = before.State
	}
	if w.status.State != dao.TaskRunning {
		w.status.Restarting, w.status.NextRestartAt = false, time.Time{}
	}
	w.status.Timestamp = time.Now()
	st := w.status
	w.mu.Unlock()
	if w.ctx.Err() != nil {
		return
	}
	w.a.report(w.id, st, false)
}

func (w *taskWorker) startHealth(pid uint32) {
	hc := w.task.Spec.HealthCheck
	if hc == nil {
		return
	}
	w.mu.Lock()
	if w.health != nil && w.health.pid == pid {
		w.mu.Unlock()
		return
	}
	old := w.health
	h := newHealthChecker(w, hc.WithDefaults(), pid)
	w.health = h
	w.mu.Unlock()
	if old != nil {
		old.stop()
	}
	w.update(func(s *dao.TaskStatus) { s.Health = dao.HealthStarting })
	go h.run()
}

func (w *taskWorker) stopHealth() {
	w.mu.Lock()
	h := w.health
	w.health = nil
	w.mu.Unlock()
	if h != nil {
		h.stop()
	}
}
