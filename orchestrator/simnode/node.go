package simnode

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/clock"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/policy"
)

// State is whether a simulated node runs, and whether the control plane can reach it.
type State int

// Node states.
const (
	// Up: the node runs its tasks and reports.
	Up State = iota
	// Disconnected: the node runs its tasks but cannot be reached: Assign fails, and it
	// neither reports nor beats. When it is Up again, it reports the status of every task.
	Disconnected
	// Down: the machine is off. Its tasks do not run; Assign fails. When it is Up again it
	// boots: it starts every task of its assignment that has not ended, from scratch.
	Down
)

func (s State) String() string {
	switch s {
	case Up:
		return "up"
	case Disconnected:
		return "disconnected"
	case Down:
		return "down"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Node is a simulated node: it takes assignments and runs their tasks as edge.Agent
// does (it accepts them, prepares, starts and runs them, restarts them by their restart
// policy when they crash, stops those no longer wanted, and reports every status change
// in order), but in memory, with nothing real to run. Time comes from its Clock, so that
// with a clock.Manual a simulation runs as fast as the CPU allows and always the same way.
//
// It is cheap: it starts no goroutine (its clock calls it back when something is due, one
// call at a time for the node), keeps about 250 bytes per task and no copy of the task's
// spec, so a process holds thousands of nodes and a million tasks.
//
// What it does not do: it ignores a change of a task's spec under the same ID (Dao gives a
// new spec a new task), and it forgets, without a report, a task that ended and is no
// longer assigned.
//
// A Node is safe for simultaneous use.
type Node struct {
	info  dao.Node
	o     options
	clock clock.Clock

	mu         sync.Mutex
	idle       sync.Cond // signalled when inflight drops to 0 after Close
	rnd        *rand.Rand
	state      State
	closed     bool
	revision   uint64
	epoch      string
	assigns    uint64
	tasks      map[string]*simTask
	allocated  dao.Resources
	queue      eventQueue
	seq        uint64
	timer      clock.Timer
	timerAt    int64
	arms       uint64
	out        []outItem
	delivering bool
	inflight   int
	pid        uint32
}

var _ orchestrator.NodeAgent = (*Node)(nil)

// simTask is what a node keeps of one task.
type simTask struct {
	id, service string
	desired     dao.TaskState
	state       dao.TaskState
	resources   dao.Resources
	restart     dao.RestartPolicy
	tracker     *policy.RestartTracker // made at the first exit
	message     string
	err         string
	startedAt   int64 // Unix nanoseconds; 0: never
	finishedAt  int64
	exitCode    int32
	pid         uint32 // 0: no process
	restarts    int32
	gen         uint32 // changes to cancel the events scheduled for the task
	mark        uint64 // the last Assign that listed the task
	accepted    bool   // its resources are counted
	removed     bool   // no longer assigned: forgotten once stopped
	stopping    bool
}

type eventKind uint8

const (
	evAccept eventKind = iota + 1
	evStart
	evCrash
	evRestart
	evStop
	evHeartbeat
	evFlush
)

// event is something due at a time: for a task, or (task nil) for the node.
type event struct {
	at   int64
	seq  uint64
	task *simTask
	gen  uint32
	kind eventKind
	code int32
}

// outItem is a status update or a heartbeat to deliver.
type outItem struct {
	update    orchestrator.TaskUpdate
	heartbeat int64 // set for a heartbeat
}

// New returns a node described by info (its ID is required), up, with no assignment.
func New(info dao.Node, opts ...Option) (*Node, error) {
	if info.ID == "" {
		return nil, fmt.Errorf("simnode: node ID: must not be empty: %w", dao.ErrInvalid)
	}
	o := defaultOptions()
	for _, opt := range opts {
		if opt == nil {
			return nil, invalid("Option", "nil option")
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	info.Labels = maps.Clone(info.Labels)
	n := &Node{info: info, o: o, clock: o.clock, rnd: o.rand(), tasks: map[string]*simTask{}, pid: 1000}
	n.idle.L = &n.mu
	if o.heartbeat > 0 {
		n.mu.Lock()
		n.schedule(event{at: n.now(), kind: evHeartbeat})
		n.mu.Unlock()
	}
	return n, nil
}

// ID returns the node's ID.
func (n *Node) ID() string { return n.info.ID }

// Info returns the node's description, with Status.State telling the truth about it:
// ready when it is up, disconnected or down.
func (n *Node) Info() dao.Node {
	info := n.info
	info.Labels = maps.Clone(info.Labels)
	switch n.State() {
	case Up:
		info.Status.State = dao.NodeReady
	case Disconnected:
		info.Status.State = dao.NodeDisconnected
	case Down:
		info.Status.State = dao.NodeDown
	}
	return info
}

// State returns whether the node is up, disconnected or down.
func (n *Node) State() State {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.state
}

// Revision returns the revision of the current assignment, 0 before any.
func (n *Node) Revision() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.revision
}

// Allocated returns the resources of the tasks the node has accepted and that have not
// ended or begun to stop.
func (n *Node) Allocated() dao.Resources {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.allocated
}

// Assign replaces the node's assignment, as edge.Agent.Assign does: an assignment with a
// lower revision than the current one of the same epoch is refused with ErrStaleRevision; tasks are checked
// first (non-empty, distinct IDs, valid desired states, and with WithValidation each new
// task's Validate), and one bad task refuses the whole assignment. It fails with
// ErrUnreachable when the node is down or disconnected. The node acts on the assignment
// after Assign returns, when its clock says so, and keeps no reference to a.Tasks.
func (n *Node) Assign(a orchestrator.Assignment) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.closed:
		return ErrClosed
	case n.state != Up:
		return fmt.Errorf("simnode: node %s is %s: %w", n.info.ID, n.state, ErrUnreachable)
	case a.Epoch == n.epoch && a.Revision < n.revision:
		return fmt.Errorf("%w: have %d, got %d", ErrStaleRevision, n.revision, a.Revision)
	}
	if err := n.check(a.Tasks); err != nil {
		return err
	}
	n.epoch, n.revision = a.Epoch, a.Revision
	n.assigns++
	mark := n.assigns
	now := n.now()
	for i := range a.Tasks {
		t := &a.Tasks[i]
		st := n.tasks[t.ID]
		if st != nil && st.removed {
			// Given back while it stopped: it starts again, as a new task.
			n.forget(st)
			st = nil
		}
		if st == nil {
			st = &simTask{id: t.ID, service: t.ServiceID, desired: t.DesiredState, state: dao.TaskAssigned,
				resources: t.Spec.Resources, restart: t.Restart, mark: mark, message: "assigned"}
			n.tasks[t.ID] = st
			if st.desired <= dao.TaskRunning {
				n.schedule(event{at: now, task: st, gen: st.gen, kind: evAccept})
			}
			continue
		}
		st.mark = mark
		st.desired = t.DesiredState
		if st.desired > dao.TaskRunning {
			n.stop(st, now)
		}
	}
	var gone []*simTask
	for _, st := range n.tasks {
		if st.mark != mark && !st.removed {
			gone = append(gone, st)
		}
	}
	// In order of ID, so that a simulation repeats exactly.
	slices.SortFunc(gone, func(a, b *simTask) int { return cmp.Compare(a.id, b.id) })
	for _, st := range gone {
		st.removed = true
		n.stop(st, now)
	}
	return nil
}

// check checks the tasks of an assignment before any is acted on.
func (n *Node) check(tasks []dao.Task) error {
	n.assigns++
	mark := n.assigns
	var fresh map[string]bool
	for i := range tasks {
		t := &tasks[i]
		if t.ID == "" {
			return fmt.Errorf("simnode: assignment task %d: empty ID: %w", i, dao.ErrInvalid)
		}
		if !t.DesiredState.Valid() {
			return fmt.Errorf("simnode: assignment task %d (%s): desired state %d: %w", i, t.ID, int(t.DesiredState), dao.ErrInvalid)
		}
		if st := n.tasks[t.ID]; st != nil && !st.removed {
			if st.mark == mark {
				return fmt.Errorf("simnode: assignment: task %s appears twice: %w", t.ID, dao.ErrInvalid)
			}
			st.mark = mark
			continue
		}
		if fresh == nil {
			fresh = map[string]bool{}
		}
		if fresh[t.ID] {
			return fmt.Errorf("simnode: assignment: task %s appears twice: %w", t.ID, dao.ErrInvalid)
		}
		fresh[t.ID] = true
		if n.o.validate {
			if err := t.Validate(); err != nil {
				return fmt.Errorf("simnode: assignment task %d (%s): %w", i, t.ID, err)
			}
		}
	}
	return nil
}

// Tasks returns the node's tasks with their current status, sorted by ID. A task holds
// what the node keeps of it: its ID, service, desired state, resources (in Spec) and
// status.
func (n *Node) Tasks() []dao.Task {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.now()
	out := make([]dao.Task, 0, len(n.tasks))
	for _, st := range n.tasks {
		out = append(out, n.task(st, now))
	}
	slices.SortFunc(out, func(a, b dao.Task) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Task returns one task of the node, as Tasks does, and whether the node has it.
func (n *Node) Task(id string) (dao.Task, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := n.tasks[id]
	if st == nil {
		return dao.Task{}, false
	}
	return n.task(st, n.now()), true
}

func (n *Node) task(st *simTask, now int64) dao.Task {
	return dao.Task{ID: st.id, ServiceID: st.service, NodeID: n.info.ID, DesiredState: st.desired,
		Spec: dao.ContainerSpec{Resources: st.resources}, Restart: st.restart, Status: n.status(st, now)}
}

// Crash makes a running task's process exit now with exitCode, as if it had crashed (or
// ended, with 0); its restart policy then decides what happens. It fails with
// ErrUnknownTask when the node has no such task running.
func (n *Node) Crash(taskID string, exitCode int) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := n.tasks[taskID]
	if st == nil || st.state != dao.TaskRunning || st.pid == 0 || st.stopping || n.state == Down {
		return fmt.Errorf("simnode: node %s: task %s: %w", n.info.ID, taskID, ErrUnknownTask)
	}
	n.schedule(event{at: n.now(), task: st, gen: st.gen, kind: evCrash, code: int32(exitCode)})
	return nil
}

// Down turns the node off: its tasks stop at once, without a word to anyone, and what it
// had not reported yet is lost. It keeps its assignment, as edge.Agent keeps it on disk.
func (n *Node) Down() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state == Down || n.closed {
		return
	}
	n.state = Down
	n.out = nil
	clear(n.queue)
	n.queue = n.queue[:0]
	n.disarm()
	n.allocated = dao.Resources{}
	for _, st := range n.tasks {
		st.gen++
		st.stopping = false
		st.accepted = false
		if st.removed {
			delete(n.tasks, st.id)
		}
	}
}

// Disconnect cuts the node off from the control plane: its tasks run on, but Assign
// fails and nothing is reported until it is Up again.
func (n *Node) Disconnect() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state != Up || n.closed {
		return
	}
	n.state = Disconnected
	n.out = nil
}

// Up brings the node back. A disconnected node reports the status of every task at once;
// a node that was down boots: it starts each task of its assignment that had not ended
// and is still wanted (reported as preparing, then running), and reports as shut down
// those that were being stopped.
func (n *Node) Up() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state == Up || n.closed {
		return
	}
	was := n.state
	n.state = Up
	now := n.now()
	for _, st := range n.sorted() {
		switch {
		case was == Disconnected:
			n.report(st, now)
		case st.state.Terminal():
		case st.desired <= dao.TaskRunning:
			st.state, st.pid, st.message, st.err = dao.TaskAssigned, 0, "node restarted", ""
			n.schedule(event{at: now, task: st, gen: st.gen, kind: evAccept})
		default:
			st.state, st.pid, st.message, st.finishedAt = dao.TaskShutdown, 0, "stopped: node restarted", now
			n.report(st, now)
		}
	}
	if was == Down && n.o.heartbeat > 0 {
		n.schedule(event{at: now, kind: evHeartbeat})
	}
	if was == Disconnected && n.o.heartbeat > 0 {
		n.out = append(n.out, outItem{heartbeat: now})
	}
	n.schedule(event{at: now, kind: evFlush})
}

// Close stops the node: nothing more happens in it, and once Close returns its status and
// heartbeat functions are not called again. It must not be called from them.
func (n *Node) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	n.queue = nil
	n.out = nil
	n.disarm()
	for n.inflight > 0 {
		n.idle.Wait()
	}
}

func (n *Node) now() int64 { return n.clock.Now().UnixNano() }

// sorted returns the tasks in order of ID.
func (n *Node) sorted() []*simTask {
	out := slices.Collect(maps.Values(n.tasks))
	slices.SortFunc(out, func(a, b *simTask) int { return cmp.Compare(a.id, b.id) })
	return out
}

// schedule adds an event to the queue and makes sure the clock calls the node in time.
func (n *Node) schedule(e event) {
	n.seq++
	e.seq = n.seq
	n.queue.push(e)
	n.arm()
}

// arm has the clock call fire when the first event of the queue is due.
func (n *Node) arm() {
	if len(n.queue) == 0 || n.closed {
		return
	}
	at := n.queue[0].at
	if n.timer != nil && n.timerAt <= at {
		return
	}
	n.disarm()
	n.arms++
	arm := n.arms
	n.timer = n.clock.AfterFunc(time.Duration(at-n.now()), func() { n.fire(arm) })
	n.timerAt = at
}

func (n *Node) disarm() {
	if n.timer != nil {
		n.timer.Stop()
		n.timer = nil
	}
}

// fire handles the events that are due, then delivers what they reported.
func (n *Node) fire(arm uint64) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	if arm == n.arms {
		n.timer = nil
	}
	now := n.now()
	for len(n.queue) > 0 && n.queue[0].at <= now {
		n.handle(n.queue.pop(), now)
	}
	n.arm()
	n.inflight++
	n.mu.Unlock()
	n.deliver()
	n.mu.Lock()
	n.inflight--
	if n.inflight == 0 {
		n.idle.Broadcast()
	}
	n.mu.Unlock()
}

// deliver calls the status and heartbeat functions with what is waiting, one at a time
// for the node, in order.
func (n *Node) deliver() {
	n.mu.Lock()
	if n.delivering {
		n.mu.Unlock()
		return
	}
	n.delivering = true
	for len(n.out) > 0 && !n.closed {
		batch := n.out
		n.out = nil
		up := n.state == Up
		n.mu.Unlock()
		for _, it := range batch {
			switch {
			case !up:
			case it.heartbeat != 0:
				if n.o.onHeartbeat != nil {
					n.o.onHeartbeat(time.Unix(0, it.heartbeat).UTC())
				}
			case n.o.onStatus != nil:
				n.o.onStatus(it.update)
			}
		}
		n.mu.Lock()
	}
	n.delivering = false
	n.mu.Unlock()
}

// handle acts on one event that is due.
func (n *Node) handle(e event, now int64) {
	st := e.task
	if st == nil {
		switch e.kind {
		case evHeartbeat:
			if n.state == Up {
				n.out = append(n.out, outItem{heartbeat: now})
			}
			n.schedule(event{at: now + int64(n.o.heartbeat), kind: evHeartbeat})
		case evFlush:
		}
		return
	}
	if e.gen != st.gen || n.tasks[st.id] != st {
		return // cancelled
	}
	switch e.kind {
	case evAccept:
		n.accept(st, now)
	case evStart:
		n.start(st, now)
	case evCrash:
		n.exit(st, int(e.code), now)
	case evRestart:
		st.restarts++
		st.message = "restarting"
		n.schedule(event{at: now + int64(n.o.startLatency(n.rnd)), task: st, gen: st.gen, kind: evStart})
	case evStop:
		st.state, st.pid, st.message, st.finishedAt, st.stopping = dao.TaskShutdown, 0, "stopped: no longer assigned", now, false
		n.release(st)
		n.report(st, now)
		if st.removed {
			delete(n.tasks, st.id)
		}
	}
}

// accept takes a new task in, or rejects it.
func (n *Node) accept(st *simTask, now int64) {
	if st.state != dao.TaskAssigned || st.desired > dao.TaskRunning {
		return
	}
	avail := n.info.Allocatable.Sub(n.allocated)
	switch {
	case n.o.rejectP > 0 && n.rnd.Float64() < n.o.rejectP:
		st.state, st.message, st.err = dao.TaskRejected, "rejected by the node", "simulated rejection"
	case n.o.capacityCheck && !fits(st.resources, avail, n.info.Allocatable):
		st.state, st.message = dao.TaskRejected, "rejected by the node"
		st.err = fmt.Sprintf("insufficient resources: task asks for %s, node %s has %s free",
			formatResources(st.resources), n.info.ID, formatResources(avail))
	default:
		st.accepted = true
		n.allocated = n.allocated.Add(st.resources)
		st.state, st.message = dao.TaskPreparing, "creating container"
		n.schedule(event{at: now + int64(n.o.startLatency(n.rnd)), task: st, gen: st.gen, kind: evStart})
	}
	n.report(st, now)
}

// fits reports whether r fits in avail; a zero field of allocatable does not limit.
func fits(r, avail, allocatable dao.Resources) bool {
	return (allocatable.MilliCPU == 0 || r.MilliCPU <= avail.MilliCPU) &&
		(allocatable.Memory == 0 || r.Memory <= avail.Memory) &&
		(allocatable.Pids == 0 || r.Pids <= avail.Pids)
}

func formatResources(r dao.Resources) string {
	return fmt.Sprintf("%dm CPU, %s memory, %d pids", r.MilliCPU, dao.FormatBytes(r.Memory), r.Pids)
}

// start makes a task's process run.
func (n *Node) start(st *simTask, now int64) {
	if st.state != dao.TaskPreparing && (st.state != dao.TaskRunning || st.pid != 0) {
		return
	}
	n.pid++
	st.state, st.pid, st.startedAt, st.message, st.err = dao.TaskRunning, n.pid, now, "running", ""
	if st.tracker != nil {
		st.tracker.Started(time.Unix(0, now))
	}
	n.report(st, now)
	if n.o.crashP > 0 && n.rnd.Float64() < n.o.crashP {
		n.schedule(event{at: now + int64(n.o.crashAfter(n.rnd)), task: st, gen: st.gen, kind: evCrash, code: 1})
	}
}

// exit handles the exit of a task's process, by its restart policy.
func (n *Node) exit(st *simTask, code int, now int64) {
	if st.state != dao.TaskRunning || st.pid == 0 {
		return
	}
	if st.tracker == nil {
		st.tracker = policy.NewRestartTracker(st.restart, n.rnd)
		st.tracker.Started(time.Unix(0, st.startedAt))
	}
	d := st.tracker.Exited(time.Unix(0, now), code)
	st.pid, st.exitCode, st.finishedAt = 0, int32(code), now
	exited := fmt.Sprintf("exited with code %d", code)
	switch {
	case d.Restart:
		st.message = exited + "; " + d.Reason
		n.schedule(event{at: now + int64(d.Delay), task: st, gen: st.gen, kind: evRestart})
	case code == 0:
		st.state, st.message = dao.TaskComplete, exited+"; "+d.Reason
		n.release(st)
	default:
		st.state, st.message, st.err = dao.TaskFailed, exited, exited+"; "+d.Reason
		n.release(st)
	}
	n.report(st, now)
}

// stop stops a task that is no longer wanted.
func (n *Node) stop(st *simTask, now int64) {
	switch {
	case st.state.Terminal(), st.state == dao.TaskAssigned:
		// Nothing runs: cancel what was scheduled.
		st.gen++
		if st.removed {
			n.forget(st)
		}
	case st.stopping:
	default:
		// Its resources are free from now on, as the scheduler counts them.
		st.gen++
		st.stopping = true
		n.release(st)
		n.schedule(event{at: now + int64(n.o.stopLatency(n.rnd)), task: st, gen: st.gen, kind: evStop})
	}
}

// forget drops a task.
func (n *Node) forget(st *simTask) {
	st.gen++
	n.release(st)
	delete(n.tasks, st.id)
}

// release gives back the resources of a task that ended.
func (n *Node) release(st *simTask) {
	if st.accepted {
		st.accepted = false
		n.allocated = n.allocated.Sub(st.resources)
	}
}

// report queues the task's status for delivery.
func (n *Node) report(st *simTask, now int64) {
	n.out = append(n.out, outItem{update: orchestrator.TaskUpdate{TaskID: st.id, Status: n.status(st, now)}})
}

func (n *Node) status(st *simTask, now int64) dao.TaskStatus {
	s := dao.TaskStatus{
		State:     st.state,
		Message:   st.message,
		Err:       st.err,
		PID:       st.pid,
		ExitCode:  int(st.exitCode),
		Restarts:  int(st.restarts),
		Timestamp: time.Unix(0, now).UTC(),
	}
	if st.state > dao.TaskAssigned && st.state != dao.TaskRejected {
		s.ContainerID = st.id
	}
	if st.startedAt != 0 {
		s.StartedAt = time.Unix(0, st.startedAt).UTC()
	}
	if st.finishedAt != 0 {
		s.FinishedAt = time.Unix(0, st.finishedAt).UTC()
	}
	return s
}

// eventQueue is a min-heap of events by time, then by order of scheduling. It is written
// out rather than built on container/heap, which would allocate for each event.
type eventQueue []event

func (q eventQueue) less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}

func (q *eventQueue) push(e event) {
	*q = append(*q, e)
	h := *q
	for i := len(h) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
}

func (q *eventQueue) pop() event {
	h := *q
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h[last] = event{}
	h = h[:last]
	for i := 0; ; {
		l, r, small := 2*i+1, 2*i+2, i
		if l < len(h) && h.less(l, small) {
			small = l
		}
		if r < len(h) && h.less(r, small) {
			small = r
		}
		if small == i {
			break
		}
		h[i], h[small] = h[small], h[i]
		i = small
	}
	*q = h
	return top
}
