package orchestrator

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/policy"
)

type updatedTask = policy.UpdatedTask

// rollout is what the loop keeps in memory of one rolling update: when it saw each new
// task start and fail, by task ID (the times the monitor window is counted from). What
// the update has done is read from the store on every pass, so that after a restart the
// rollout carries on; only those times start over.
type rollout struct {
	// started and rollingBack name the update followed: its UpdateStatus.StartedAt, and
	// whether it is a rollback. A scale changes the service's version, not the update.
	started     time.Time
	rollingBack bool
	seen        map[string]*updatedTask
	// waiting is the reason of the last wait logged, so that a wait is logged once.
	waiting string
}

// updater is the part of the reconciler that rolls out a service's new spec (plan). It
// owns what it remembers of each rolling update between passes (a rollout), which only it
// reads.
type updater struct {
	log      *slog.Logger
	rollouts map[string]*rollout
}

func newUpdater(log *slog.Logger) *updater {
	return &updater{log: log, rollouts: map[string]*rollout{}}
}

// forget drops what the updater remembers of a service's update: the service was removed
// or is skipped.
func (u *updater) forget(serviceID string) { delete(u.rollouts, serviceID) }

// rolloutPolicy returns the update policy that rolls out the service's current spec: its
// Update policy, or for a rollback the Rollback policy of the spec rolled back from (or
// of the current one), and its Update policy when neither sets one.
func rolloutPolicy(s *Service) dao.UpdatePolicy {
	if s.UpdateStatus.State == UpdateRollingBack || s.UpdateStatus.State == UpdateRollbackPaused {
		if s.PreviousSpec != nil && s.PreviousSpec.Rollback != (dao.UpdatePolicy{}) {
			return s.PreviousSpec.Rollback
		}
		if s.Spec.Rollback != (dao.UpdatePolicy{}) {
			return s.Spec.Rollback
		}
	}
	return s.Spec.Update
}

// taskDown reports whether a task's container is down while the task runs: its node
// restarts it (Restarting), or it exited after its last start and has not started again
// (for nodes that do not report Restarting).
func taskDown(t *dao.Task) bool {
	st := &t.Status
	return st.State == dao.TaskRunning && (st.Restarting || st.FinishedAt.After(st.StartedAt))
}

// taskFailed reports whether a new task of an update counts as failed: it failed or was
// rejected, its health check failed, or its container exited and was restarted, or is
// being restarted.
func taskFailed(t *dao.Task) bool {
	switch {
	case t.Status.State == dao.TaskFailed, t.Status.State == dao.TaskRejected:
		return true
	case t.Status.Health == dao.HealthUnhealthy, t.Status.Restarts > 0, taskDown(t):
		return true
	}
	return false
}

// taskStarted reports whether a task runs (its container is up, not waiting to be
// restarted), and, when it has a health check, is healthy.
func taskStarted(t *dao.Task) bool {
	if t.Status.State != dao.TaskRunning || taskDown(t) {
		return false
	}
	return t.Spec.HealthCheck == nil || t.Status.Health == dao.HealthHealthy
}

// plan drives a rolling update of the service, when one is in progress. It reads
// the update's progress slot by slot (keys, the slots the service wants; liveBy, their
// live tasks, with those the reconciler creates in this pass): a slot whose live tasks
// all run an older spec is still to do; one that has a new task (of the current spec,
// created since the update started) is done, starting, in its monitor window or failed as
// that task is; one with no live task (its old task stopping, or ended and not replaced
// yet) is starting. It feeds that to policy.Rollout.Decide and does what it says:
//
//   - replace the next batch of slots. Stop-first (the default): the old task is shut
//     down, and the slot's new task is created by the reconciler once the old one has
//     ended, as its node reports (or once its node is lost, when nothing can be waited
//     for; see plan), so that the two never run at once. Start-first: the new task is
//     created now, and the old one shut down once the new one has started (planHandover).
//   - wait: for a batch to start, for it to come through its monitor window (the gate
//     between batches), or for the delay between batches; a timer wakes it at RecheckAt.
//   - pause; roll back (the service goes back to its previous spec, whose rollout then
//     replaces only the slots that do not run it: healthy old tasks stay); complete.
func (ud *updater) plan(svc *Service, keys []slotID, liveBy map[slotID][]*Task, tasks []*Task, p *plan, now time.Time) {
	state := svc.UpdateStatus.State
	if state != UpdateInProgress && state != UpdateRollingBack {
		delete(ud.rollouts, svc.ID)
		return
	}
	rollingBack := state == UpdateRollingBack
	verb := "update"
	if rollingBack {
		verb = "rollback"
	}
	ro := ud.rollouts[svc.ID]
	if ro == nil || !ro.started.Equal(svc.UpdateStatus.StartedAt) || ro.rollingBack != rollingBack {
		ro = &rollout{started: svc.UpdateStatus.StartedAt, rollingBack: rollingBack, seen: map[string]*updatedTask{}}
		ud.rollouts[svc.ID] = ro
	}
	pol := rolloutPolicy(svc)
	r := policy.NewRollout(pol, svc.Spec.Container.HealthCheck)
	monitor := r.Monitor()

	// The new tasks of the update, by slot.
	global := svc.Spec.Mode == dao.ModeGlobal
	isNew := func(t *Task) bool {
		return current(&t.Task, svc) && !t.CreatedAt.Before(svc.UpdateStatus.StartedAt)
	}
	newBy := map[slotID][]*Task{}
	for _, t := range tasks {
		if isNew(t) {
			k := slotKey(global, &t.Task)
			newBy[k] = append(newBy[k], t)
		}
	}
	for _, t := range p.creates {
		if isNew(t) {
			k := slotKey(global, &t.Task)
			newBy[k] = append(newBy[k], t)
		}
	}
	seen := make(map[string]bool, len(ro.seen))
	observe := func(t *Task) *updatedTask {
		u := ro.seen[t.ID]
		if u == nil {
			u = &updatedTask{}
			ro.seen[t.ID] = u
		}
		seen[t.ID] = true
		if u.Failed.IsZero() && taskFailed(&t.Task) {
			u.Failed = now
		}
		if u.Started.IsZero() && taskStarted(&t.Task) {
			u.Started = now
		}
		return u
	}
	counted := func(u *updatedTask) bool {
		return !u.Failed.IsZero() && (u.Started.IsZero() || u.Failed.Sub(u.Started) <= monitor)
	}

	st := policy.RolloutStatus{RollingBack: rollingBack}
	var candidates []slotID
	for _, k := range keys {
		live := liveBy[k]
		var failed, latest *updatedTask
		var latestAt time.Time
		for _, t := range newBy[k] {
			u := observe(t)
			if failed == nil && counted(u) {
				failed = u
			}
			if slices.Contains(live, t) && (latest == nil || t.CreatedAt.After(latestAt)) {
				latest, latestAt = u, t.CreatedAt
			}
		}
		old := len(live) > 0
		for _, t := range live {
			if current(&t.Task, svc) {
				old = false
			}
		}
		switch {
		case failed != nil:
			st.Updated = append(st.Updated, *failed)
		case latest != nil:
			st.Updated = append(st.Updated, *latest)
		case old:
			candidates = append(candidates, k)
		case len(live) > 0:
			// Ran the current spec before the update began.
		default:
			// Being replaced: its old task is stopping, or ended and not replaced yet.
			st.Updated = append(st.Updated, updatedTask{})
		}
	}
	for id := range ro.seen {
		if !seen[id] {
			delete(ro.seen, id)
		}
	}
	st.Total = len(candidates) + len(st.Updated)
	d := r.Decide(st, now)

	setStatus := func(s UpdateState, msg string, done bool) {
		if svc.UpdateStatus.State == s && svc.UpdateStatus.Message == msg {
			return
		}
		n := *svc
		n.UpdateStatus.State, n.UpdateStatus.Message = s, msg
		n.UpdatedAt = now
		if done {
			n.UpdateStatus.CompletedAt = now
		}
		p.svc = &n
	}
	if d.Action != policy.RolloutWait {
		ro.waiting = ""
	}
	switch d.Action {
	case policy.RolloutContinue:
		batch := candidates[:min(d.Batch, len(candidates))]
		for _, k := range batch {
			olds := liveBy[k]
			if pol.Order == dao.StartFirst {
				nodeID := ""
				if global {
					nodeID = olds[0].NodeID
				}
				t := newTask(svc, olds[0].Slot, nodeID, now)
				p.creates = append(p.creates, t)
				liveBy[k] = append(liveBy[k], t)
				continue
			}
			for _, t := range olds {
				p.shutdown(t)
			}
			delete(liveBy, k)
		}
		if pol.Order == dao.StartFirst {
			p.why("updater: %s %s: %s (start-first: the old tasks stop once the new ones have started), version %d (%s)",
				verb, svc.ID, summarize("starting new tasks for", batch), svc.Version, d.Reason)
		} else {
			p.why("updater: %s %s: %s (stop-first: each new task starts once the old one has stopped), version %d (%s)",
				verb, svc.ID, summarize("stopping", batch), svc.Version, d.Reason)
		}
	case policy.RolloutWait:
		if !d.RecheckAt.IsZero() {
			p.wakeAt(d.RecheckAt)
		}
		if d.Reason != ro.waiting {
			ro.waiting = d.Reason
			ud.log.Debug(fmt.Sprintf("updater: %s %s to version %d waits: %s", verb, svc.ID, svc.Version, d.Reason),
				"service", svc.ID, "until", d.RecheckAt)
		}
	case policy.RolloutRollback:
		if svc.PreviousSpec == nil {
			setStatus(UpdatePaused, "paused: "+d.Reason+"; no previous spec to roll back to", false)
			p.why("updater: pause %s: %s; no previous spec to roll back to", svc.ID, d.Reason)
			break
		}
		if err := svc.PreviousSpec.Validate(); err != nil {
			setStatus(UpdatePaused, "paused: "+d.Reason+"; the previous spec is invalid: "+err.Error(), false)
			p.why("updater: pause %s: %s; the previous spec is invalid: %v", svc.ID, d.Reason, err)
			break
		}
		n := *svc
		prev := svc.Spec
		n.Spec, n.PreviousSpec = *svc.PreviousSpec, &prev
		n.UpdateStatus = UpdateStatus{State: UpdateRollingBack, Message: "rollback: " + d.Reason, StartedAt: now}
		n.UpdatedAt = now
		p.svc = &n
		p.why("updater: rollback %s: %s", svc.ID, d.Reason)
		delete(ud.rollouts, svc.ID)
	case policy.RolloutPause:
		if rollingBack {
			// Keep why the rollback began.
			setStatus(UpdateRollbackPaused, "rollback paused: "+d.Reason+"; rolling back because: "+rollbackWhy(svc), false)
		} else {
			setStatus(UpdatePaused, "paused: "+d.Reason, false)
		}
		p.why("updater: pause %s %s: %s", verb, svc.ID, d.Reason)
	case policy.RolloutComplete:
		if rollingBack {
			// Keep why it was rolled back.
			setStatus(UpdateRolledBack, "rolled back: "+rollbackWhy(svc)+" ("+d.Reason+")", true)
		} else {
			setStatus(UpdateCompleted, d.Reason, true)
		}
		p.why("updater: %s %s to version %d completed: %s", verb, svc.ID, svc.Version, d.Reason)
		delete(ud.rollouts, svc.ID)
	}
}

// rollbackWhy returns why the rollback in progress began, from its status message.
func rollbackWhy(svc *Service) string {
	return strings.TrimPrefix(svc.UpdateStatus.Message, "rollback: ")
}

// planHandover finishes the slots that hold more than one live task: once a task of the
// current spec has started (running, and healthy if it has a health check), the others
// are shut down (start-first updates; a slot refilled twice). It runs whether or not an
// update is in progress.
func planHandover(svc *Service, liveBy map[slotID][]*Task, p *plan) {
	keys := make([]slotID, 0, len(liveBy))
	for k, ts := range liveBy {
		if len(ts) > 1 {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b slotID) int { return strings.Compare(a.String(), b.String()) })
	for _, k := range keys {
		ts := liveBy[k]
		var keep *Task
		for _, t := range ts {
			if t.Revision != 0 && current(&t.Task, svc) && taskStarted(&t.Task) {
				if keep == nil || t.CreatedAt.After(keep.CreatedAt) {
					keep = t
				}
			}
		}
		if keep == nil {
			continue
		}
		var stopped []string
		for _, t := range ts {
			if t != keep && !slices.Contains(p.updates, t) {
				p.shutdown(t)
				stopped = append(stopped, t.ID)
			}
		}
		if len(stopped) > 0 {
			p.why("updater: %s %s: %s shut down, task %s took over", svc.ID, k, strings.Join(stopped, ", "), keep.ID)
		}
	}
}

// debugEnabled reports whether the orchestrator's logger takes Debug messages, so that a
// loop builds them only then.
func (o *Orchestrator) debugEnabled() bool {
	return o.opts.log.Enabled(context.Background(), slog.LevelDebug)
}
