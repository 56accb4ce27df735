package orchestrator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/orchestrator/scheduler"
)

// plan is what one pass of the reconciler decided for one service: written in one
// transaction, whose cause joins the reasons.
type plan struct {
	now     time.Time
	svc     *Service
	creates []*Task
	updates []*Task
	deletes []*Task
	reasons []string
	// wake, when set, is when the service should be planned again: a failed task's
	// replace delay ends, or a rolling update's wait.
	wake time.Time
	// svcRev is the revision of the service as the plan read it (0: none).
	svcRev uint64
	// deaf is set when nothing the plan decided waits for a task to start: no rolling
	// update is in progress and no slot holds two live tasks (a start-first handover). The
	// news that the service's tasks started can then change nothing until its next plan
	// (which something else asks for), and the orchestrator lets it go: the thousands of
	// "running" reports of a new service's tasks cost no plan each.
	deaf bool
}

// wakeAt asks for the service to be planned again at t (the earliest of those asked).
func (p *plan) wakeAt(t time.Time) {
	if p.wake.IsZero() || t.Before(p.wake) {
		p.wake = t
	}
}

func (p *plan) empty() bool {
	return p.svc == nil && len(p.creates)+len(p.updates)+len(p.deletes) == 0
}

func (p *plan) why(format string, args ...any) {
	p.reasons = append(p.reasons, fmt.Sprintf(format, args...))
}

// shutdown asks a task's node to stop it. A task on no node has nothing to stop: it ends
// at once (nothing would ever report on it).
func (p *plan) shutdown(t *Task) {
	t.DesiredState = dao.TaskShutdown
	if t.NodeID == "" {
		t.Status = dao.TaskStatus{State: dao.TaskShutdown, Message: "shut down before it was placed", Timestamp: p.now}
	}
	p.updates = append(p.updates, t)
}

func (p *plan) cause(serviceID string) string {
	const most = 4
	rs := p.reasons
	if len(rs) == 0 {
		return "reconciler: " + serviceID
	}
	s := strings.Join(rs[:min(len(rs), most)], "; ")
	if len(rs) > most {
		s += fmt.Sprintf("; and %d more", len(rs)-most)
	}
	return s
}

// reconcile brings one service's tasks in line with its spec, as the reconciler plans it
// (see reconciler.plan), and writes the plan in one transaction that names the revisions
// it read, so a concurrent change makes it fail with ErrConflict and the pass runs again.
// A plan that asks to be looked at again later (a replace delay, an update's wait) arms a
// timer for it, written or not.
func (o *Orchestrator) reconcile(ctx context.Context, id string) error {
	var p plan
	now := o.opts.clock.Now()
	err := o.store.View(withSharedReads(ctx), func(tx ReadTx) error {
		p = o.rec.plan(tx, id, now)
		return nil
	})
	if err != nil {
		return err
	}
	if !p.wake.IsZero() {
		o.wakeAt(id, p.wake)
	}
	if p.empty() {
		o.heard(id, p.deaf)
		return nil
	}
	if err := o.writePlan(ctx, id, &p); err != nil {
		return err
	}
	o.heard(id, p.deaf)
	if o.debugEnabled() {
		for _, r := range p.reasons {
			o.opts.log.Debug(r, "service", id)
		}
	}
	return nil
}

// errPlanStale ends the writing of a plan in several transactions when its service changed
// in between: the next plan goes on from what was written.
var errPlanStale = errors.New("the service changed while its plan was written")

// writePlan writes a plan: in one transaction, or, when the store takes fewer objects at
// once (TxnLimiter), in several, the service's own change first. Each leaves a state the
// reconciler plans from like any other (some of the tasks created, some shut down), and
// each after the first is written only if the service is still as the plan found it, so
// that a plan the service's change made stale stops there.
func (o *Orchestrator) writePlan(ctx context.Context, id string, p *plan) error {
	type op struct {
		t    *Task
		kind EventKind
	}
	ops := make([]op, 0, len(p.creates)+len(p.updates)+len(p.deletes))
	for _, t := range p.updates {
		ops = append(ops, op{t, EventUpdated})
	}
	for _, t := range p.deletes {
		ops = append(ops, op{t, EventDeleted})
	}
	for _, t := range p.creates {
		ops = append(ops, op{t, EventCreated})
	}
	limit := txnLimit(o.store)
	first := 0
	if p.svc != nil && limit > 0 {
		first = 1 // the service's write takes one of the first transaction's
	}
	parts := batches(len(ops)+first, limit)
	svcRev := p.svcRev
	for i, b := range parts {
		lo, hi := max(0, b[0]-first), b[1]-first
		cause := p.cause(id)
		if len(parts) > 1 {
			cause = fmt.Sprintf("%s (part %d of %d)", cause, i+1, len(parts))
		}
		var rev uint64
		err := o.store.Update(withSharedReads(ctx), cause, func(tx Tx) error {
			if i == 0 && p.svc != nil {
				if err := tx.UpdateService(p.svc); err != nil {
					return err
				}
			}
			if i > 0 && svcRev != 0 {
				if cur, err := tx.Service(id); err != nil || cur.Revision != svcRev {
					return errPlanStale
				}
			}
			for _, w := range ops[lo:hi] {
				var err error
				switch w.kind {
				case EventCreated:
					err = tx.CreateTask(w.t)
				case EventUpdated:
					err = tx.UpdateTask(w.t)
				case EventDeleted:
					if err = tx.DeleteTask(w.t.ID, w.t.Revision); errors.Is(err, ErrNotFound) {
						err = nil
					}
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		if errors.Is(err, errPlanStale) {
			o.mu.Lock()
			o.dirtySvc[id] = true
			o.mu.Unlock()
			return nil
		}
		if err != nil {
			return err
		}
		// The revision the store gave the writes (set on the plan's objects).
		if i == 0 && p.svc != nil {
			rev, svcRev = p.svc.Revision, p.svc.Revision
		}
		for _, w := range ops[lo:hi] {
			if w.kind != EventDeleted {
				rev = w.t.Revision
				break
			}
		}
		if rev != 0 {
			o.wrote(rev)
		}
	}
	return nil
}

// heard records what a service's plan, now in effect, said of the news that its tasks
// started (see plan.deaf). News let go while the plan was made, against the plan before
// it, is taken in now if this plan listens.
func (o *Orchestrator) heard(id string, deaf bool) {
	o.mu.Lock()
	again := !deaf && o.skippedSvc[id]
	if deaf {
		o.deafSvc[id] = true
	} else {
		delete(o.deafSvc, id)
	}
	if again {
		o.dirtySvc[id] = true
	}
	delete(o.skippedSvc, id)
	o.mu.Unlock()
	if again {
		o.poke()
	}
}

// reconciler is the loop that turns services into tasks: for one service at a time, it
// reads the store in a read transaction and plans what should change (plan), without
// writing anything; Orchestrator.reconcile writes the plan. It owns what it remembers
// between passes: the updater (the rolling updates in progress) and which invalid stored
// services it has warned of. It runs on the loop goroutine of Run only, and needs no
// Orchestrator: a test gives it a store's read transaction and reads its plan.
type reconciler struct {
	log          *slog.Logger
	replaceDelay time.Duration
	history      int
	// sched is the scheduler's account of the nodes, which says which nodes a global
	// service's task may go to. Orchestrator.follow sets it with each new account.
	sched *scheduler.Scheduler
	upd   *updater
	// refused is shared with the dispatcher, which learns the tasks nodes refused as
	// invalid (see assignValid); the reconciler ends them.
	refused map[string]refusal
	// invalid holds, by service ID, the message of the invalid stored service last
	// warned of, so that each is logged once.
	invalid map[string]string
}

// newReconciler returns a reconciler that plans with the orchestrator's options.
func newReconciler(o *options, sched *scheduler.Scheduler, refused map[string]refusal) *reconciler {
	return &reconciler{
		log:          o.log,
		replaceDelay: o.replaceDelay,
		history:      o.history,
		sched:        sched,
		upd:          newUpdater(o.log),
		refused:      refused,
		invalid:      map[string]string{},
	}
}

// debugEnabled reports whether the reconciler's logger takes Debug messages.
func (r *reconciler) debugEnabled() bool {
	return r.log.Enabled(context.Background(), slog.LevelDebug)
}

// slotID names what a task fills: its slot in a replicated service, its node in a global
// one. It is a map key that costs no allocation (the reconciler makes one per task and per
// slot on every pass); String gives the words of the causes, "slot 3" or "node n1".
type slotID struct {
	global bool
	slot   int
	node   string
}

func (s slotID) String() string {
	if s.global {
		return "node " + s.node
	}
	return "slot " + strconv.Itoa(s.slot)
}

// slotKey names what a task fills.
func slotKey(global bool, t *dao.Task) slotID {
	if global {
		return slotID{global: true, node: t.NodeID}
	}
	return slotID{slot: t.Slot}
}

// nodeReader is implemented by the transactions of this package's stores: what the
// reconciler needs of a node, without a copy of it.
type nodeReader interface {
	nodeState(id string) (dao.Availability, dao.NodeState, bool)
}

// nodeState returns a node's availability and liveness, and whether the node exists.
func nodeState(tx ReadTx, id string) (dao.Availability, dao.NodeState, bool) {
	if r, ok := tx.(nodeReader); ok {
		return r.nodeState(id)
	}
	n, err := tx.Node(id)
	return n.Availability, n.Status.State, err == nil
}

// current reports whether a task runs the service's current spec. Specs, not version
// numbers, are compared, so that a rollback (a new version with the old spec) leaves the
// tasks of the old spec where they are, and a scale changes no task.
func current(t *dao.Task, s *Service) bool {
	if t.ServiceVersion == s.Version {
		return true
	}
	return reflect.DeepEqual(t.Spec, s.Spec.Container) && reflect.DeepEqual(t.Restart, s.Spec.Restart)
}

func (r *reconciler) plan(tx ReadTx, id string, now time.Time) plan {
	p := plan{now: now}
	var tasks []*Task
	for t := range tx.TasksByService(id) {
		tasks = append(tasks, &t)
	}
	svc, err := tx.Service(id)
	if err != nil {
		r.upd.forget(id)
		r.planRemoved(tx, id, tasks, &p)
		return p
	}
	p.svcRev = svc.Revision
	if err := checkStored(&svc); err != nil {
		r.upd.forget(id)
		r.planInvalid(&svc, err, &p)
		return p
	}
	if !svc.UpdateStatus.State.Valid() {
		// Only the update state is unknown: the update is paused, for a person to look at
		// (UpdateService or RollbackService starts another), and the service runs.
		msg := fmt.Sprintf("paused: invalid stored update state %q", svc.UpdateStatus.State)
		r.log.Warn("orchestrator: invalid stored update state paused", "service", id, "state", svc.UpdateStatus.State)
		n := svc
		n.UpdateStatus = UpdateStatus{State: UpdatePaused, Message: msg, StartedAt: svc.UpdateStatus.StartedAt}
		n.UpdatedAt = now
		p.svc = &n
		p.why("reconciler: %s: update %s", id, msg)
		return p
	}
	delete(r.invalid, id)
	global := svc.Spec.Mode == dao.ModeGlobal
	liveBy := make(map[slotID][]*Task, len(tasks))
	deadBy := map[slotID][]*Task{}
	// stoppingBy holds the tasks on their way out whose node may still run them: a slot
	// gets no new task while it holds one (stop-first; see the fill below).
	stoppingBy := map[slotID][]*Task{}
	for _, t := range tasks {
		k := slotKey(global, &t.Task)
		why := badTask(&t.Task)
		if why == "" && len(r.refused) > 0 { // no lookup per task in the common case
			if ref, ok := r.refused[t.ID]; ok {
				if ref.revision == t.Revision && !t.Status.State.Terminal() {
					why = "refused by node " + t.NodeID + ": " + ref.why
				}
				delete(r.refused, t.ID)
			}
		}
		if why != "" {
			// Nothing can be decided of it: end it, so that its node stops it (the
			// dispatcher sends no task in an undefined state) and its slot is filled.
			r.log.Warn("orchestrator: invalid stored task ended", "service", id, "task", t.ID, "reason", why)
			t.DesiredState = dao.TaskShutdown
			t.Status = dao.TaskStatus{State: dao.TaskOrphaned, Message: "invalid stored task: " + why, Timestamp: now}
			p.updates = append(p.updates, t)
			p.why("reconciler: %s: task %s ended: invalid stored task: %s", id, t.ID, why)
			deadBy[k] = append(deadBy[k], t)
			continue
		}
		var avail dao.Availability
		var nstate dao.NodeState
		exists := true
		if t.NodeID != "" {
			avail, nstate, exists = nodeState(tx, t.NodeID)
		}
		switch {
		case t.Status.State.Terminal():
			deadBy[k] = append(deadBy[k], t)
		case !exists:
			// Its node was removed without its tasks: nothing will report them.
			t.Status.State, t.Status.Message, t.Status.Timestamp = dao.TaskOrphaned, "node "+t.NodeID+" removed", now
			p.updates = append(p.updates, t)
			deadBy[k] = append(deadBy[k], t)
		case t.DesiredState > dao.TaskRunning:
			// On its way out.
			switch {
			case t.NodeID == "":
				// Never placed: nothing runs it, and nothing will report it ended.
				t.Status = dao.TaskStatus{State: dao.TaskShutdown, Message: "shut down before it was placed", Timestamp: now}
				p.updates = append(p.updates, t)
				deadBy[k] = append(deadBy[k], t)
			case nstate == dao.NodeDown:
				// Its node is lost (it would have been orphaned as it went down): nothing
				// can be waited for.
				t.Status.State, t.Status.Message, t.Status.Timestamp = dao.TaskOrphaned, "node "+t.NodeID+" down", now
				p.updates = append(p.updates, t)
				deadBy[k] = append(deadBy[k], t)
			default:
				stoppingBy[k] = append(stoppingBy[k], t)
			}
		case avail == dao.Drain:
			p.shutdown(t)
			stoppingBy[k] = append(stoppingBy[k], t)
			p.why("reconciler: %s %s: task %s shut down: node %s drained", id, k, t.ID, t.NodeID)
		case !global && (t.Slot < 1 || t.Slot > svc.Spec.Replicas):
			p.shutdown(t)
			p.why("reconciler: %s: scale down to %d: task %s (slot %d) shut down", id, svc.Spec.Replicas, t.ID, t.Slot)
		default:
			liveBy[k] = append(liveBy[k], t)
		}
	}

	// The slots (or nodes) the service wants.
	var wants []slotID
	if global {
		probe := &dao.Task{ServiceID: svc.ID, ServiceVersion: svc.Version, Spec: svc.Spec.Container, DesiredState: dao.TaskRunning}
		pipe, perr := r.sched.Placer(svc.ID, svc.Version, svc.Spec.Placement)
		for n := range tx.Nodes() {
			k := slotID{global: true, node: n.ID}
			if n.Availability == dao.Drain {
				continue
			}
			if len(liveBy[k])+len(stoppingBy[k]) == 0 {
				ni := r.sched.Node(n.ID)
				if perr != nil || ni == nil || pipe.Filter(probe, ni) != nil {
					continue
				}
			}
			wants = append(wants, k)
		}
		slices.SortFunc(wants, func(a, b slotID) int { return strings.Compare(a.node, b.node) })
	} else {
		// checkStored bounds Replicas.
		wants = make([]slotID, svc.Spec.Replicas)
		for i := range wants {
			wants[i] = slotID{slot: i + 1}
		}
	}

	// Fill the empty slots; replace what ended. A slot whose last task is still stopping
	// waits for it to end (its node reports it shut down, or is lost): stop-first, so that
	// the slot never runs two tasks at once (host ports, memory, singletons), whether its
	// task was stopped by a rolling update, a drain or a scale. Only a start-first update
	// runs two (see updater.plan and planHandover).
	updating := svc.UpdateStatus.State == UpdateInProgress || svc.UpdateStatus.State == UpdateRollingBack
	var created []slotID
	for _, w := range wants {
		if len(liveBy[w]) > 0 {
			continue
		}
		if st := stoppingBy[w]; len(st) > 0 {
			if r.debugEnabled() {
				r.log.Debug(fmt.Sprintf("reconciler: %s %s: waits for task %s to stop on node %s before its next task starts",
					id, w, st[0].ID, st[0].NodeID), "service", id)
			}
			continue
		}
		why := "created"
		dead := newest(deadBy[w])
		if dead != nil {
			st := dead.Status
			if st.State == dao.TaskFailed || st.State == dao.TaskRejected {
				if at := st.Timestamp.Add(r.replaceDelay); now.Before(at) {
					p.wakeAt(at)
					continue
				}
			}
			why = fmt.Sprintf("replaced: task %s %s", dead.ID, st.State)
			if d := cmp.Or(st.Err, st.Message); d != "" {
				why += ": " + d
			}
		}
		t := newTask(&svc, w.slot, w.node, now)
		p.creates = append(p.creates, t)
		liveBy[w] = append(liveBy[w], t)
		switch {
		case updating && dead != nil && dead.DesiredState > dao.TaskRunning && !current(&dead.Task, &svc):
			verb := "update"
			if svc.UpdateStatus.State == UpdateRollingBack {
				verb = "rollback"
			}
			p.why("updater: %s %s %s: task %s stopped (%s), task %s of version %d created", verb, id, w, dead.ID, dead.Status.State, t.ID, svc.Version)
		case why == "created":
			created = append(created, w)
		default:
			p.why("reconciler: %s %s %s", id, w, why)
		}
	}
	if len(created) > 0 {
		p.why("reconciler: %s: %s", id, summarize("created tasks for", created))
	}
	// A global service's tasks on nodes it no longer wants (constraints changed).
	if global {
		wanted := make(map[slotID]bool, len(wants))
		for _, w := range wants {
			wanted[w] = true
		}
		for k, ts := range liveBy {
			if !wanted[k] {
				for _, t := range ts {
					p.shutdown(t)
					p.why("reconciler: %s %s: task %s shut down: node no longer eligible", id, k, t.ID)
				}
				delete(liveBy, k)
			}
		}
	}

	r.upd.plan(&svc, wants, liveBy, tasks, &p, now)
	planHandover(&svc, liveBy, &p)
	p.deaf = !updating && p.svc == nil
	for _, ts := range liveBy {
		if len(ts) > 1 {
			p.deaf = false
			break
		}
	}

	// Keep a bounded history of ended tasks per slot.
	for _, dead := range deadBy {
		if len(dead) <= r.history {
			continue
		}
		slices.SortFunc(dead, func(a, b *Task) int { return b.CreatedAt.Compare(a.CreatedAt) })
		for _, t := range dead[r.history:] {
			if !slices.Contains(p.updates, t) {
				p.deletes = append(p.deletes, t)
			}
		}
	}
	return p
}

// checkStored checks a service as the loops read it from the store, which may hold what
// no API call would have admitted (a file of an older version, or written by other code):
// the bounds the loops' allocations depend on, whatever Validate checks, then Validate,
// but for PreviousSpec, which only a rollback reads (and checks; see updater.plan), and the
// update state, which plan sets right.
func checkStored(s *Service) error {
	switch {
	case s.Spec.Mode != "" && s.Spec.Mode != dao.ModeReplicated && s.Spec.Mode != dao.ModeGlobal:
		return fmt.Errorf("%w: spec.mode %q is not a service mode", dao.ErrInvalid, s.Spec.Mode)
	case s.Spec.Replicas < 0 || s.Spec.Replicas > dao.MaxReplicas:
		return fmt.Errorf("%w: spec.replicas %d is not between 0 and %d", dao.ErrInvalid, s.Spec.Replicas, dao.MaxReplicas)
	}
	c := *s
	c.PreviousSpec = nil
	c.UpdateStatus.State = "" // see plan
	return c.Validate()
}

// planInvalid reports a service whose stored form is invalid, and skips it: none of its
// tasks is created, replaced or stopped until a valid spec is written (UpdateService,
// ScaleService). Its update state becomes paused, with the reason in its message (an
// event on the watch), and a warning is logged once per reason.
func (r *reconciler) planInvalid(svc *Service, err error, p *plan) {
	msg := "service skipped: invalid stored service: " + err.Error()
	if r.invalid[svc.ID] != msg {
		r.log.Warn("orchestrator: invalid stored service skipped", "service", svc.ID, "revision", svc.Revision, "err", err)
		r.invalid[svc.ID] = msg
	}
	if svc.UpdateStatus.State == UpdatePaused && svc.UpdateStatus.Message == msg {
		return
	}
	n := *svc
	n.UpdateStatus = UpdateStatus{State: UpdatePaused, Message: msg, StartedAt: svc.UpdateStatus.StartedAt}
	n.UpdatedAt = p.now
	p.svc = &n
	p.why("reconciler: %s skipped: invalid stored service: %v", svc.ID, err)
}

// badTask says what makes a stored task impossible to reason about, or "" when nothing
// does: states that are none of the defined ones, a negative slot.
func badTask(t *dao.Task) string {
	switch {
	case !t.Status.State.Valid():
		return fmt.Sprintf("status.state %d is not a task state", int(t.Status.State))
	case !t.DesiredState.Valid():
		return fmt.Sprintf("desiredState %d is not a task state", int(t.DesiredState))
	case t.Slot < 0:
		return fmt.Sprintf("slot %d is negative", t.Slot)
	}
	return ""
}

// planRemoved deletes the tasks of a service that is not in the store once they ended, or
// when no node will report on them. RemoveService shuts a service's tasks down in the
// transaction that removes it, so a task still meant to run has lost its service some other
// way: its record was set aside as undecodable (BoltStore.Quarantined), or the store was
// changed behind the API. Such tasks are left running, and reported once, rather than
// stopped: a damaged record must not take a service's containers down with it.
func (r *reconciler) planRemoved(tx ReadTx, id string, tasks []*Task, p *plan) {
	var kept, deleted int
	for _, t := range tasks {
		gone := t.NodeID == "" || badTask(&t.Task) != "" || (len(r.refused) > 0 && r.refused[t.ID].revision == t.Revision)
		if !gone {
			n, err := tx.Node(t.NodeID)
			gone = err != nil || n.Status.State == dao.NodeDown
		}
		switch {
		case t.Status.State.Terminal() || gone:
			p.deletes = append(p.deletes, t)
			deleted++
		case t.DesiredState <= dao.TaskRunning:
			kept++
		}
	}
	if deleted > 0 {
		p.why("reconciler: service %s removed: %d ended tasks deleted", id, deleted)
	}
	if kept == 0 {
		delete(r.invalid, id)
		return
	}
	msg := fmt.Sprintf("service %s is not in the store, but %d of its tasks are meant to run: left running", id, kept)
	if r.invalid[id] != msg {
		r.log.Warn("orchestrator: tasks of a service the store does not have are left running (was its record set aside? see BoltStore.Quarantined)",
			"service", id, "tasks", kept)
		r.invalid[id] = msg
	}
}

func newest(ts []*Task) *Task {
	var n *Task
	for _, t := range ts {
		if n == nil || t.CreatedAt.After(n.CreatedAt) || (t.CreatedAt.Equal(n.CreatedAt) && t.ID > n.ID) {
			n = t
		}
	}
	return n
}

func summarize(what string, keys []slotID) string {
	const most = 8
	words := make([]string, 0, min(len(keys), most))
	for _, k := range keys[:min(len(keys), most)] {
		words = append(words, k.String())
	}
	s := strings.Join(words, ", ")
	if len(keys) > most {
		s += fmt.Sprintf(" and %d more", len(keys)-most)
	}
	return what + " " + s
}

// newTask makes a task of the service's current spec for a slot, or for a node (a global
// service's, which needs no scheduling).
func newTask(svc *Service, slot int, nodeID string, now time.Time) *Task {
	t := &Task{Task: dao.Task{
		ID:             fmt.Sprintf("%s.%d.%08x", svc.ID, slot, rand.Uint32()),
		ServiceID:      svc.ID,
		ServiceVersion: svc.Version,
		Slot:           slot,
		NodeID:         nodeID,
		Spec:           svc.Spec.Container,
		Restart:        svc.Spec.Restart,
		DesiredState:   dao.TaskRunning,
		Status:         dao.TaskStatus{State: dao.TaskPending, Message: "waiting for a node", Timestamp: now},
		CreatedAt:      now,
	}}
	if nodeID != "" {
		t.Status = dao.TaskStatus{State: dao.TaskAssigned, Message: "global service: on node " + nodeID, Timestamp: now}
	}
	return t
}
