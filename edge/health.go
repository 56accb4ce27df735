package edge

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/opendao/dao"
)

// healthChecker runs a container's health check every interval while one process of it runs,
// and reports the health state when it changes: starting until the first success (failures in
// the start period do not count), healthy, and unhealthy after Retries failures in a row.
type healthChecker struct {
	w      *taskWorker
	check  dao.HealthCheck
	pid    uint32
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

func newHealthChecker(w *taskWorker, check dao.HealthCheck, pid uint32) *healthChecker {
	ctx, cancel := context.WithCancel(w.ctx)
	return &healthChecker{w: w, check: check, pid: pid, ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

func (h *healthChecker) stop() {
	h.cancel()
	<-h.done
}

func (h *healthChecker) run() {
	defer close(h.done)
	started := time.Now()
	failures := 0
	state := dao.HealthStarting
	tick := time.NewTicker(h.check.Interval.Std())
	defer tick.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-tick.C:
		}
		res, err := h.w.a.rt.Exec(h.ctx, h.w.id, h.check.Command, h.check.Timeout.Std())
		if h.ctx.Err() != nil {
			return
		}
		ok := err == nil && res.ExitCode == 0 && !res.TimedOut
		next := state
		var why string
		switch {
		case ok:
			failures = 0
			next = dao.HealthHealthy
		case time.Since(started) < h.check.StartPeriod.Std() && state == dao.HealthStarting:
			// Still starting: the failure does not count.
		default:
			failures++
			if failures >= h.check.Retries {
				next = dao.HealthUnhealthy
			}
			why = checkFailure(res, err)
		}
		if next != state {
			h.w.a.log.Debug("health changed", "task", h.w.id, "from", state, "to", next, "failures", failures, "why", why)
			state = next
			msg := "health check: " + string(next)
			if why != "" {
				msg += ": " + why
			}
			h.w.update(func(s *dao.TaskStatus) {
				s.Health = next
				s.Message = msg
			})
		}
	}
}

func checkFailure(res ExecResult, err error) string {
	switch {
	case err != nil:
		return err.Error()
	case res.TimedOut:
		return "timed out"
	}
	out := strings.TrimSpace(string(res.Output))
	if len(out) > 200 {
		out = out[len(out)-200:]
	}
	if out != "" {
		return "exit code " + strconv.Itoa(res.ExitCode) + ": " + out
	}
	return "exit code " + strconv.Itoa(res.ExitCode)
}
