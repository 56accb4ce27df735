package policy

import (
	"strconv"
	"time"

	"github.com/opendao/dao"
)

// DefaultUpdateMonitor is the monitor window of a rolling update whose policy sets none:
// dao.DefaultUpdateMonitor.
const DefaultUpdateMonitor = time.Duration(dao.DefaultUpdateMonitor)

// RolloutAction is what a rolling update should do next.
type RolloutAction int

// Rollout actions.
const (
	// RolloutContinue: replace the next Batch tasks now.
	RolloutContinue RolloutAction = iota
	// RolloutWait: nothing to do until tasks start, a monitor window ends or the delay
	// between batches passes; decide again at RecheckAt, or on the next task event.
	RolloutWait
	// RolloutPause: stop replacing tasks and leave the service as it is, for a person to
	// look at.
	RolloutPause
	// RolloutRollback: roll the service back to its previous spec.
	RolloutRollback
	// RolloutComplete: every task was replaced and has come through its monitor window.
	RolloutComplete
)

func (a RolloutAction) String() string {
	switch a {
	case RolloutContinue:
		return "continue"
	case RolloutWait:
		return "wait"
	case RolloutPause:
		return "pause"
	case RolloutRollback:
		return "rollback"
	case RolloutComplete:
		return "complete"
	}
	return "RolloutAction(" + strconv.Itoa(int(a)) + ")"
}

// UpdatedTask is what a rollout needs to know of one task it started (or of one slot it is
// replacing: a slot whose old task is still stopping, before its new task is created,
// is an UpdatedTask that has not started).
type UpdatedTask struct {
	// Started is when the task began running (and, with a health check, became healthy);
	// zero while it has not.
	Started time.Time
	// Failed is when the task failed: it exited, was rejected, became unhealthy, or its
	// container exited and was (or is being) restarted by its node; zero while it has not.
	Failed time.Time
}

// RolloutStatus is the progress of a rolling update.
type RolloutStatus struct {
	// Total is the number of tasks the update replaces.
	Total int
	// Updated lists the new tasks of the batches started so far, in any order: the slots
	// being replaced, Total less the ones still to do.
	Updated []UpdatedTask
	// RollingBack is true when this rollout is itself a rollback: one that fails pauses
	// instead of rolling back again.
	RollingBack bool
}

// RolloutDecision is what Rollout.Decide concluded.
type RolloutDecision struct {
	Action RolloutAction
	// Batch is the number of tasks to replace now, with RolloutContinue.
	Batch int
	// Failed counts the new tasks that failed within their monitor window; Monitoring the
	// ones still in it; Starting the ones not running yet.
	Failed, Monitoring, Starting int
	// RecheckAt is when, with no new event, the decision changes (a monitor window or the
	// delay between batches ends); zero when only an event can change it.
	RecheckAt time.Time
	// Reason says why, in a few words.
	Reason string
}

// Rollout decides the course of rolling updates under one dao.UpdatePolicy: tasks are
// replaced Parallelism at a time, and each new task is watched for a monitor window after
// it starts (runs, and with a health check is healthy). The monitor window is also the
// gate between batches: the next batch starts only once every task of the last one has
// come through its window without failing, and not before Delay has passed since the last
// of them started. (Docker Swarm starts the next batch as soon as the last one runs, so a
// task that crashes a second after it started has already been followed by the next
// batch; here it has not.) When the tasks that failed within their window exceed
// MaxFailureRatio of all the tasks to update, the update takes its FailureAction. A
// healthy rollout of n tasks thus takes about n/Parallelism monitor windows (or Delays,
// when longer). It is a value: make one per update with NewRollout.
type Rollout struct {
	policy  dao.UpdatePolicy
	monitor time.Duration
}

// NewRollout returns the rollout of policy u for tasks with health check hc (nil for none).
// Its monitor window is MonitorWindow(u, hc). A Parallelism below 1 is 1, and a
// FailureAction that is none of the dao.Action constants is pause.
func NewRollout(u dao.UpdatePolicy, hc *dao.HealthCheck) Rollout {
	if u.Parallelism <= 0 {
		u.Parallelism = 1
	}
	switch u.FailureAction {
	case dao.ActionRollback, dao.ActionContinue:
	default: // "", or one a validated policy does not have: the safe one
		u.FailureAction = dao.ActionPause
	}
	return Rollout{policy: u, monitor: MonitorWindow(u, hc)}
}

// MonitorWindow returns how long each new task of an update is watched for failure, and
// so how long a batch must stay up before the next one starts:
// u.Monitor (DefaultUpdateMonitor, 5s, when zero), but never shorter than the health check hc
// needs to prove a task unhealthy in the worst case: StartPeriod + Retries × (Interval +
// Timeout), with hc's defaults. A shorter window would call an update good before its
// health check could have failed.
func MonitorWindow(u dao.UpdatePolicy, hc *dao.HealthCheck) time.Duration {
	m := u.Monitor.Std()
	if m <= 0 {
		m = DefaultUpdateMonitor
	}
	if hc != nil {
		h := hc.WithDefaults()
		need := h.StartPeriod.Std() + time.Duration(h.Retries)*(h.Interval.Std()+h.Timeout.Std())
		m = max(m, need)
	}
	return m
}

// Monitor returns the monitor window.
func (r Rollout) Monitor() time.Duration { return r.monitor }

// Decide returns what the update should do at now, given its progress. It is a pure
// function: the orchestrator calls it on every task event and at RecheckAt.
func (r Rollout) Decide(s RolloutStatus, now time.Time) RolloutDecision {
	u := r.policy
	var d RolloutDecision
	var lastStart, monitorEnd time.Time
	for _, t := range s.Updated {
		switch {
		case !t.Failed.IsZero():
			if t.Started.IsZero() || t.Failed.Sub(t.Started) <= r.monitor {
				d.Failed++
			}
		case t.Started.IsZero():
			d.Starting++
		default:
			if end := t.Started.Add(r.monitor); now.Before(end) {
				d.Monitoring++
				if monitorEnd.IsZero() || end.Before(monitorEnd) {
					monitorEnd = end
				}
			}
		}
		if t.Started.After(lastStart) {
			lastStart = t.Started
		}
	}
	failing := ""
	if d.Failed > 0 && s.Total > 0 && float64(d.Failed)/float64(s.Total) > u.MaxFailureRatio {
		failing = strconv.Itoa(d.Failed) + " of " + strconv.Itoa(s.Total) + " tasks failed within " +
			r.monitor.String() + ", more than the max failure ratio " + strconv.FormatFloat(u.MaxFailureRatio, 'g', -1, 64)
		switch {
		case u.FailureAction == dao.ActionRollback && !s.RollingBack:
			d.Action, d.Reason = RolloutRollback, failing
			return d
		case u.FailureAction == dao.ActionRollback, u.FailureAction == dao.ActionPause:
			d.Action, d.Reason = RolloutPause, failing
			if s.RollingBack {
				d.Reason += "; a failing rollback pauses"
			}
			return d
		}
		failing += "; failure action continue: "
	}
	remaining := s.Total - len(s.Updated)
	switch {
	case remaining <= 0 && d.Starting+d.Monitoring == 0:
		d.Action, d.Reason = RolloutComplete, failing+"all "+strconv.Itoa(s.Total)+" tasks updated"
	case remaining <= 0:
		d.Action, d.RecheckAt = RolloutWait, monitorEnd
		d.Reason = failing + "all tasks started; " + strconv.Itoa(d.Starting) + " starting, " +
			strconv.Itoa(d.Monitoring) + " in their monitor window"
	case d.Starting > 0:
		d.Action = RolloutWait
		d.Reason = failing + strconv.Itoa(d.Starting) + " tasks of the last batch still starting"
	case d.Monitoring > 0:
		// The monitor window is the gate between batches.
		d.Action, d.RecheckAt = RolloutWait, monitorEnd
		d.Reason = failing + strconv.Itoa(d.Monitoring) + " tasks of the last batch in their monitor window of " +
			r.monitor.String()
	case !lastStart.IsZero() && now.Before(lastStart.Add(u.Delay.Std())):
		d.Action, d.RecheckAt = RolloutWait, lastStart.Add(u.Delay.Std())
		d.Reason = failing + "delay of " + u.Delay.String() + " between batches"
	default:
		d.Action, d.Batch = RolloutContinue, min(u.Parallelism, remaining)
		d.Reason = failing + "update " + strconv.Itoa(d.Batch) + " more of " + strconv.Itoa(remaining) + " remaining"
	}
	return d
}
