package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/clock"
	"github.com/opendao/dao/orchestrator/scheduler"
)

// Orchestrator runs the control loops of a cluster over a Store: it turns services into
// tasks (the reconciler), places pending tasks on nodes (the scheduling loop), gives each
// node its full assignment (the dispatcher), writes what nodes report (the status
// writer), judges node liveness from heartbeats, and rolls out changes of a service's
// spec (the updater). Every write it makes names the loop or API call that made it, and
// why, in its cause.
//
// Its state is the store: a new Orchestrator over the same store (a bbolt file after a
// restart of the program) carries on where the last one stopped. In memory it keeps the
// connections to nodes, their last heartbeat, the scheduler's account of each node, and
// when the new tasks of rolling updates were seen starting and failing (what an update
// has done is read from the store; after a restart, the monitor windows of the tasks it
// watches start over).
//
// The API methods may be called before and while Run runs, from any goroutine; the loops
// act on what they did once Run runs.
type Orchestrator struct {
	store Store
	opts  options

	mu       sync.Mutex
	running  bool
	nodes    map[string]*nodeConn
	dirtySvc map[string]bool
	// lazySvc are services whose only news is that tasks started (startedOnly): they are
	// planned a moment later (startedDelay), together, rather than once a status batch.
	lazySvc   map[string]bool
	lazyArmed bool
	// deafSvc are the services whose last plan waited for no task to start (no rolling
	// update in progress, no slot handing over; see plan.deaf): the news that their tasks
	// started is not worth a plan. skippedSvc are those whose start news was let go since
	// their last plan, in case the plan in progress finds a reason to listen after all.
	deafSvc    map[string]bool
	skippedSvc map[string]bool
	// own holds the revisions of the loop's own writes not observed yet: the reconciler's
	// plans and the scheduler's placements. Their task events are no news to the
	// reconciler: a plan took in what it decided, and a placement decides nothing it looks
	// at (a node that changed under it is news of its own). Without this, the 10,000 tasks
	// of a new service, created then placed, arrive as many batches of events, each of
	// which would plan the service again.
	own         map[uint64]bool
	dirtyNodes  map[string]bool
	pendingWork bool
	allSvc      bool
	// massHeld is set while so many nodes are silent at once that checkLiveness holds
	// them as they are (WithMassSilence).
	massHeld bool
	// observed is the revision of the last event observe took in (of the initial list
	// before any): the scheduler's view of the nodes is that of this revision.
	observed uint64
	// nodeWritten is the highest revision at which the orchestrator wrote a node (set in
	// the transaction, before its commit). While it is above observed, the scheduler's
	// view of the nodes may be behind the store's, and tasks newer than observed wait.
	nodeWritten atomic.Uint64
	statusQ     []statusReport
	timers      map[clock.Timer]struct{}

	kick       chan struct{}
	statusKick chan struct{}

	// Owned by the loop goroutine of Run.
	sched *scheduler.Scheduler
	// rec plans each service's tasks (the reconciler and its updater).
	rec *reconciler
	// recheck holds when each service asks to be reconciled again (plan.wake).
	recheck map[string]time.Time
	// refused holds, by ID, the stored revision of tasks a node refused as invalid: the
	// dispatcher leaves them out (see assignValid), and the reconciler ends them.
	refused map[string]refusal
}

// nodeConn is what the orchestrator keeps of a node in memory.
type nodeConn struct {
	agent    NodeAgent
	lastSeen time.Time
	// state is the liveness last written to the store.
	state dao.NodeState
	// failed is set when the last Assign failed; the next heartbeat sends it again.
	failed bool
	// assigned is the number of tasks in the last assignment sent.
	assigned int
	// sent is the store revision of the last assignment sent: a change of the node's tasks
	// at or before it is in it already.
	sent uint64
	// lostAt is when the node's connection was seen to close (Disconnect), zero while it
	// is open: from then on the node is judged as if its heartbeat timeout had run out.
	lostAt time.Time
	// lostWhy says how the connection closed, for the liveness message.
	lostWhy string
}

// silence returns how long the node has been silent, as liveness judges it: since its last
// sign of life, or, once its connection closed, as if the heartbeat timeout had run out
// then.
func (c *nodeConn) silence(now time.Time, timeout time.Duration) time.Duration {
	since := now.Sub(c.lastSeen)
	if !c.lostAt.IsZero() {
		since = max(since, now.Sub(c.lostAt)+timeout+time.Nanosecond)
	}
	return since
}

type statusReport struct {
	nodeID string
	u      TaskUpdate
}

// New returns an orchestrator over store. It starts nothing: call Run.
func New(store Store, opts ...Option) (*Orchestrator, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: nil store", dao.ErrInvalid)
	}
	o := &Orchestrator{
		store:      store,
		opts:       defaultOptions(),
		nodes:      map[string]*nodeConn{},
		dirtySvc:   map[string]bool{},
		lazySvc:    map[string]bool{},
		deafSvc:    map[string]bool{},
		skippedSvc: map[string]bool{},
		own:        map[uint64]bool{},
		dirtyNodes: map[string]bool{},
		timers:     map[clock.Timer]struct{}{},
		kick:       make(chan struct{}, 1),
		statusKick: make(chan struct{}, 1),
		recheck:    map[string]time.Time{},
		refused:    map[string]refusal{},
	}
	for _, opt := range opts {
		if opt == nil {
			return nil, invalid("Option", "nil option")
		}
		if err := opt(&o.opts); err != nil {
			return nil, err
		}
	}
	o.rec = newReconciler(&o.opts, nil, o.refused)
	return o, nil
}

// Run runs the control loops until ctx is done, and returns ctx's error then, or an error
// of the store (ErrClosed) that ends them. Every goroutine it starts has ended when it
// returns; nodes keep running what they were given. Only one Run may be active at a time
// (ErrAlreadyRunning).
func (o *Orchestrator) Run(ctx context.Context) error {
	o.mu.Lock()
	if o.running {
		o.mu.Unlock()
		return ErrAlreadyRunning
	}
	o.running = true
	o.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		o.mu.Lock()
		for t := range o.timers {
			t.Stop()
		}
		clear(o.timers)
		o.running = false
		o.mu.Unlock()
	}()
	wg.Go(func() { o.statusLoop(ctx) })
	o.tickLiveness(ctx)
	for {
		err := o.follow(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrClosed) {
			return err
		}
		// A watch that fell behind or was compacted: list again.
		o.opts.log.Warn("orchestrator: following the store again", "err", err)
	}
}

// poke wakes the loop.
func (o *Orchestrator) poke() {
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// after arranges for f and a wake of the loop after d, with the orchestrator's clock, and
// stops the timer when Run returns (and arranges nothing once it has). f runs on the
// clock's goroutine and must be quick.
func (o *Orchestrator) after(d time.Duration, f func()) {
	var t clock.Timer
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.running {
		return
	}
	t = o.opts.clock.AfterFunc(d, func() {
		o.mu.Lock()
		delete(o.timers, t)
		o.mu.Unlock()
		if f != nil {
			f()
		}
		o.poke()
	})
	o.timers[t] = struct{}{}
}

// tickLiveness wakes the loop every quarter of the heartbeat timeout or of the grace,
// whichever is shorter (but a grace of 0), so that silent nodes are noticed, and nodes
// whose connection closed are down soon after their grace, until ctx is done.
func (o *Orchestrator) tickLiveness(ctx context.Context) {
	shortest := o.opts.hbTimeout
	if o.opts.grace > 0 {
		shortest = min(shortest, o.opts.grace)
	}
	period := max(shortest/4, time.Millisecond)
	var tick func()
	tick = func() {
		if ctx.Err() == nil {
			o.after(period, tick)
		}
	}
	o.after(period, tick)
}

// follow lists the store, rebuilds the scheduler's account, then reacts to the store's
// events until the watch ends.
func (o *Orchestrator) follow(ctx context.Context) error {
	// The orchestrator's clock comes last, so that it overrides any other.
	sopts := append(slices.Clip(o.opts.sched), scheduler.WithClock(o.opts.clock))
	sched, err := scheduler.New(sopts...)
	if err != nil {
		return err // checked by WithScheduling already
	}
	var rev uint64
	now := o.opts.clock.Now()
	err = o.store.View(withSharedReads(ctx), func(tx ReadTx) error {
		rev = tx.Revision()
		o.mu.Lock()
		defer o.mu.Unlock()
		o.observed = rev
		for n := range tx.Nodes() {
			sched.SetNode(&n.Node)
			c := o.nodes[n.ID]
			if c == nil {
				c = &nodeConn{lastSeen: now}
				o.nodes[n.ID] = c
			}
			c.state = n.Status.State
			o.dirtyNodes[n.ID] = true
		}
		for t := range tx.Tasks() {
			if occupies(&t.Task) {
				sched.Count(&t.Task)
			}
			if t.ServiceID != "" {
				o.dirtySvc[t.ServiceID] = true
			}
		}
		for s := range tx.Services() {
			o.dirtySvc[s.ID] = true
		}
		o.pendingWork = true
		return nil
	})
	if err != nil {
		return err
	}
	o.sched = sched
	o.rec.sched = sched
	// The watch ends with follow: its goroutine has ended when follow returns, so that
	// Run leaves nothing running.
	wctx, stopWatch := context.WithCancel(ctx)
	events, err := o.store.Watch(wctx, rev+1, watchInternal())
	if err != nil {
		stopWatch()
		return err
	}
	defer func() {
		stopWatch()
		for range events {
		}
	}()
	for {
		o.pass(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-o.kick:
		case e, ok := <-events:
			if !ok {
				return ctx.Err()
			}
			if e.Err != nil {
				return e.Err
			}
			o.observe(&e)
			// Take what else is waiting, so that a burst is handled in one pass: the watch
			// refills its channel from the store's log as it is read, so an empty channel
			// is given a moment (a few yields) before the pass runs. A backlog (the watch
			// far behind the writers, as while a pass placed a large service) then costs one
			// pass, not one per channelful.
			for n, idle := 1, 0; idle < 3 && n < maxDrain; n++ {
				select {
				case e, ok := <-events:
					if !ok {
						return ctx.Err()
					}
					if e.Err != nil {
						return e.Err
					}
					o.observe(&e)
					idle = 0
				default:
					idle++
					runtime.Gosched()
				}
			}
		}
	}
}

// maxDrain is the most events the loop takes in before a pass: enough that a backlog of
// a large service's writes costs a few passes, few enough that a pass is never far behind.
const maxDrain = 200_000

// wrote notes that the loop's transaction committed at rev (see own). The loop observes
// its events after this, on the same goroutine.
func (o *Orchestrator) wrote(rev uint64) {
	o.mu.Lock()
	o.own[rev] = true
	o.mu.Unlock()
}

// wroteNode notes that the transaction tx writes a node.
func (o *Orchestrator) wroteNode(tx Tx) {
	rev := tx.Revision() + 1
	for {
		cur := o.nodeWritten.Load()
		if cur >= rev || o.nodeWritten.CompareAndSwap(cur, rev) {
			return
		}
	}
}

// occupies reports whether a task holds resources on a node: it is on one and has not
// ended.
func occupies(t *dao.Task) bool { return t.NodeID != "" && !t.Status.State.Terminal() }

// live reports whether a task is wanted and has not ended: it fills its slot.
func live(t *dao.Task) bool { return t.DesiredState <= dao.TaskRunning && !t.Status.State.Terminal() }

// observe keeps the scheduler's account in step with a change of the store and marks what
// the next pass must look at.
func (o *Orchestrator) observe(e *Event) {
	if o.observeLocked(e) {
		o.after(startedDelay, func() {
			o.mu.Lock()
			for id := range o.lazySvc {
				o.dirtySvc[id] = true
			}
			clear(o.lazySvc)
			o.lazyArmed = false
			o.mu.Unlock()
		})
	}
}

// startedDelay is how long the news that a service's tasks started waits for more of the
// same before the reconciler plans the service: a thousand nodes report their tasks running
// over a second, and each plan reads every task of the service.
const startedDelay = 20 * time.Millisecond

// observeLocked is observe's work under o.mu; it reports whether the lazy services need a
// timer.
func (o *Orchestrator) observeLocked(e *Event) (arm bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.observed = e.Revision
	switch e.Type {
	case ServiceObject:
		o.dirtySvc[e.ID()] = true
		delete(o.deafSvc, e.ID())
		if e.Kind == EventDeleted {
			o.sched.ForgetPlacers(e.ID())
		}
	case NodeObject:
		n := e.Node
		if e.Kind == EventDeleted {
			o.sched.RemoveNode(n.ID)
		} else {
			o.sched.SetNode(&n.Node)
		}
		p := e.PrevNode
		if p == nil || e.Kind == EventDeleted || p.Status.State != n.Status.State ||
			p.Availability != n.Availability || !equalLabels(p.Labels, n.Labels) ||
			p.Allocatable != n.Allocatable {
			// Global services follow nodes; pending tasks may fit now.
			o.pendingWork = true
			o.dirtyNodes[n.ID] = true
			o.allSvc = true
		}
	case TaskObject:
		t, p := e.Task, e.PrevTask
		if e.Kind == EventDeleted {
			o.sched.Uncount(t.ID)
			if t.NodeID != "" {
				o.markNode(t.NodeID, e.Revision)
			}
			if occupies(&t.Task) {
				o.pendingWork = true
			}
		} else {
			if occupies(&t.Task) {
				o.sched.Count(&t.Task)
			} else {
				o.sched.Uncount(t.ID)
			}
			if p != nil && occupies(&p.Task) && !occupies(&t.Task) {
				o.pendingWork = true // resources were freed
				if t.Status.State == dao.TaskFailed || t.Status.State == dao.TaskRejected {
					o.sched.RecordFailure(p.NodeID, t.ServiceID, o.opts.clock.Now())
				}
			}
			if t.NodeID == "" && live(&t.Task) && (p == nil || p.NodeID != "") {
				o.pendingWork = true
			}
			if t.NodeID != "" && (p == nil || p.NodeID != t.NodeID || p.DesiredState != t.DesiredState ||
				p.Status.State.Terminal() != t.Status.State.Terminal()) {
				o.markNode(t.NodeID, e.Revision)
			}
			if p != nil && p.NodeID != "" && p.NodeID != t.NodeID {
				o.markNode(p.NodeID, e.Revision)
			}
		}
		switch {
		case t.ServiceID == "":
		case o.own[e.Revision]:
			// The reconciler or the scheduler wrote it.
		case e.Kind != EventUpdated || p == nil || reconcileSees(&p.Task, &t.Task):
			o.dirtySvc[t.ServiceID] = true
		case !startedOnly(&p.Task, &t.Task) || o.dirtySvc[t.ServiceID]:
		case o.deafSvc[t.ServiceID]:
			o.skippedSvc[t.ServiceID] = true
		default:
			o.lazySvc[t.ServiceID] = true
			if !o.lazyArmed {
				o.lazyArmed = true
				return true
			}
		}
	}
	return false
}

// markNode marks a node for an assignment for a change of its tasks at store revision rev,
// unless the last assignment sent to it was read at or after rev and so holds the change
// (the dispatcher often reads the scheduler's placements before their events come); o.mu
// is held.
func (o *Orchestrator) markNode(id string, rev uint64) {
	if c := o.nodes[id]; c != nil && !c.failed && c.sent >= rev {
		return
	}
	o.dirtyNodes[id] = true
}

// reconcileSees reports whether a task's change from p to t can change what the reconciler
// decides for its service. Most changes are a task's progress towards running (assigned,
// preparing, starting), which decide nothing: a million tasks starting make three million
// of those, and each would have the reconciler read every task of its service again.
func reconcileSees(p, t *dao.Task) bool {
	return p.NodeID != t.NodeID || p.DesiredState != t.DesiredState || p.Slot != t.Slot ||
		p.ServiceVersion != t.ServiceVersion ||
		p.Status.State.Terminal() != t.Status.State.Terminal() ||
		taskFailed(p) != taskFailed(t)
}

// startedOnly reports whether a task's change from p to t is news to the reconciler only in
// that the task started or stopped being started (running, and healthy when checked): what
// a rolling update's monitor window and a start-first handover wait for, and nothing else.
func startedOnly(p, t *dao.Task) bool { return taskStarted(p) != taskStarted(t) }

func equalLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// pass does what the marks ask for: liveness, reconciling services, scheduling pending
// tasks, and sending assignments, in that order.
func (o *Orchestrator) pass(ctx context.Context) {
	o.checkLiveness(ctx)
	o.mu.Lock()
	for rev := range o.own {
		if rev < o.observed { // a transaction's events may come in several batches
			delete(o.own, rev)
		}
	}
	svcs, all := o.dirtySvc, o.allSvc
	o.dirtySvc, o.allSvc = map[string]bool{}, false
	o.mu.Unlock()
	if all {
		// A node changed: every service may want a task more or less on it.
		_ = o.store.View(ctx, func(tx ReadTx) error {
			for s := range tx.Services() {
				svcs[s.ID] = true
			}
			return nil
		})
	}
	now := o.opts.clock.Now()
	for id, at := range o.recheck {
		if !now.Before(at) {
			svcs[id] = true
			delete(o.recheck, id)
		}
	}
	for id := range svcs {
		if err := o.reconcile(ctx, id); err != nil && ctx.Err() == nil {
			o.opts.log.Warn("orchestrator: reconcile", "service", id, "err", err)
			o.mu.Lock()
			o.dirtySvc[id] = true
			o.mu.Unlock()
			o.after(10*time.Millisecond, nil)
		}
	}
	o.mu.Lock()
	work := o.pendingWork
	o.pendingWork = false
	o.mu.Unlock()
	if work {
		if err := o.schedule(ctx); err != nil && ctx.Err() == nil {
			o.opts.log.Warn("orchestrator: schedule", "err", err)
			o.mu.Lock()
			o.pendingWork = true
			o.mu.Unlock()
			o.after(10*time.Millisecond, nil)
		}
	}
	o.dispatch(ctx)
}

// wakeAt arranges for the service to be reconciled again at t.
func (o *Orchestrator) wakeAt(serviceID string, t time.Time) {
	if at, ok := o.recheck[serviceID]; ok && !t.Before(at) {
		return
	}
	o.recheck[serviceID] = t
	o.after(t.Sub(o.opts.clock.Now()), nil)
}
