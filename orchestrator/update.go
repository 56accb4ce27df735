package orchestrator

import (
	"slices"
	"strings"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/policy"
)

type updatedTask = policy.UpdatedTask

// rollout is the progress of one rolling update, kept in memory by the loop. After a
// restart it is rebuilt from the store: the current tasks created since the update
// started count as its new tasks.
type rollout struct {
	version     uint64
	rollingBack bool
	total       int
	updated     map[string]*updatedTask
}

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

// taskFailed reports whether a new task of an update counts as failed: it failed or was
// rejected, its health check failed, or its container exited and was restarted.
func taskFailed(t *dao.Task) bool {
	switch {
	case t.Status.State == dao.TaskFailed, t.Status.State == dao.TaskRejected:
		return true
	case t.Status.Health == dao.HealthUnhealthy, t.Status.Restarts > 0:
		return true
	}
	return false
}

// taskStarted reports whether a task runs, and, when it has a health check, is healthy.
func taskStarted(t *dao.Task) bool {
	if t.Status.State != dao.TaskRunning {
		return false
	}
	return t.Spec.HealthCheck == nil || t.Status.Health == dao.HealthHealthy
}

// planUpdate drives a rolling update of the service, when one is in progress: it feeds
// what the new tasks did to policy.Rollout.Decide and does what it says: replace the next
// batch of slots that run an older spec (stop-first: the old task is shut down as the new
// one is created; start-first: once the new one is started, see planHandover), wait (a
// timer wakes it at RecheckAt), pause, roll back (the service goes back to its previous
// spec, whose rollout then replaces only the slots that do not run it: healthy old tasks
// stay), or complete.
func (o *Orchestrator) planUpdate(svc *Service, keys []slotID, liveBy map[slotID][]*Task, tasks []*Task, p *plan, now time.Time) {
	state := svc.UpdateStatus.State
	if state != UpdateInProgress && state != UpdateRollingBack {
		delete(o.rollouts, svc.ID)
		return
	}
	rollingBack := state == UpdateRollingBack
	verb := "update"
	if rollingBack {
		verb = "rollback"
	}
	// Slots whose live tasks all run an older spec.
	var candidates []slotID
	for _, k := range keys {
		ts := liveBy[k]
		if len(ts) == 0 {
			continue
		}
		old := true
		for _, t := range ts {
			if current(&t.Task, svc) {
				old = false
			}
		}
		if old {
			candidates = append(candidates, k)
		}
	}
	byID := map[string]*Task{}
	for _, t := range tasks {
		byID[t.ID] = t
	}
	ro := o.rollouts[svc.ID]
	if ro == nil || ro.version != svc.Version || ro.rollingBack != rollingBack {
		ro = &rollout{version: svc.Version, rollingBack: rollingBack, total: len(candidates), updated: map[string]*updatedTask{}}
		for _, t := range tasks {
			if current(&t.Task, svc) && !t.CreatedAt.Before(svc.UpdateStatus.StartedAt) && !svc.UpdateStatus.StartedAt.IsZero() {
				ro.updated[t.ID] = &updatedTask{}
				ro.total++
			}
		}
		o.rollouts[svc.ID] = ro
	}
	for id, u := range ro.updated {
		t := byID[id]
		if t == nil {
			continue
		}
		if u.Failed.IsZero() && taskFailed(&t.Task) {
			u.Failed = now
		}
		if u.Started.IsZero() && taskStarted(&t.Task) {
			u.Started = now
		}
	}
	r := policy.NewRollout(rolloutPolicy(svc), svc.Spec.Container.HealthCheck)
	st := policy.RolloutStatus{Total: ro.total, RollingBack: rollingBack}
	for _, u := range ro.updated {
		st.Updated = append(st.Updated, *u)
	}
	d := r.Decide(st, now)
	if d.Action == policy.RolloutContinue && len(candidates) == 0 {
		// Slots left the update (scaled down, or refilled with new tasks after a failure).
		ro.total = len(ro.updated)
		st.Total = ro.total
		d = r.Decide(st, now)
	}
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
	switch d.Action {
	case policy.RolloutContinue:
		batch := candidates[:min(d.Batch, len(candidates))]
		order := rolloutPolicy(svc).Order
		for _, k := range batch {
			old := liveBy[k][0]
			nodeID := ""
			if svc.Spec.Mode == dao.ModeGlobal {
				nodeID = old.NodeID
			}
			t := newTask(svc, old.Slot, nodeID, now)
			p.creates = append(p.creates, t)
			p.updated = append(p.updated, t.ID)
			liveBy[k] = append(liveBy[k], t)
			if order != dao.StartFirst {
				for _, ot := range liveBy[k][:len(liveBy[k])-1] {
					p.shutdown(ot)
				}
				liveBy[k] = liveBy[k][len(liveBy[k])-1:]
			}
		}
		p.why("updater: %s %s: %s to version %d (%s)", verb, svc.ID, summarize("replacing", batch), svc.Version, d.Reason)
	case policy.RolloutWait:
		if !d.RecheckAt.IsZero() {
			o.wakeAt(svc.ID, d.RecheckAt)
		}
	case policy.RolloutRollback:
		if svc.PreviousSpec == nil {
			setStatus(UpdatePaused, "paused: "+d.Reason+"; no previous spec to roll back to", false)
			p.why("updater: pause %s: %s", svc.ID, d.Reason)
			break
		}
		n := *svc
		prev := svc.Spec
		n.Spec, n.PreviousSpec = *svc.PreviousSpec, &prev
		n.UpdateStatus = UpdateStatus{State: UpdateRollingBack, Message: "rollback: " + d.Reason, StartedAt: now}
		n.UpdatedAt = now
		p.svc = &n
		p.why("updater: rollback %s: %s", svc.ID, d.Reason)
		delete(o.rollouts, svc.ID)
	case policy.RolloutPause:
		s := UpdatePaused
		if rollingBack {
			s = UpdateRollbackPaused
		}
		setStatus(s, "paused: "+d.Reason, false)
		p.why("updater: pause %s %s: %s", verb, svc.ID, d.Reason)
	case policy.RolloutComplete:
		s := UpdateCompleted
		if rollingBack {
			s = UpdateRolledBack
		}
		setStatus(s, d.Reason, true)
		p.why("updater: %s %s to version %d completed: %s", verb, svc.ID, svc.Version, d.Reason)
		delete(o.rollouts, svc.ID)
	}
}

// planHandover finishes the slots that hold more than one live task: once a task of the
// current spec has started (running, and healthy if it has a health check), the others
// are shut down (start-first updates; a slot refilled twice). It runs whether or not an
// update is in progress.
func (o *Orchestrator) planHandover(svc *Service, liveBy map[slotID][]*Task, p *plan) {
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
