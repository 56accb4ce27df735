package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/atomicfile"
)

// Labels the Agent puts on the containers of its tasks.
const (
	// LabelTask holds the ID of the task a container runs.
	LabelTask = dao.LabelPrefix + "task"
	// LabelService holds the task's service ID, when it has one.
	LabelService = dao.LabelPrefix + "service"
	// LabelRestarts holds how many times the agent restarted the container, so that the
	// count survives a restart of the agent's program.
	LabelRestarts = dao.LabelPrefix + "restarts"
	// LabelNextRestart holds, while the container is down and the agent will start it again
	// after a backoff, when it will (RFC 3339); it is empty otherwise. Tools that read
	// containerd, such as dao ps, show such a container as restarting.
	LabelNextRestart = dao.LabelPrefix + "next-restart"
)

// Assignment and TaskUpdate are the root package's: the orchestrator speaks them too.
type (
	Assignment = dao.Assignment
	TaskUpdate = dao.TaskUpdate
)

// AgentOption configures an Agent.
type AgentOption func(*agentOptions) error

type agentOptions struct {
	stateDir  string
	onStatus  func(TaskUpdate)
	resync    time.Duration
	logger    *slog.Logger
	heartbeat time.Duration
	beat      func()
}

// WithHeartbeat makes Run call beat every interval while it runs, and once at its start: how
// a node in the same process as the orchestrator tells it that it is alive (pass a function
// that calls Orchestrator.Heartbeat). beat must not block for long. The default sends none.
func WithHeartbeat(interval time.Duration, beat func()) AgentOption {
	return func(o *agentOptions) error {
		if interval < 10*time.Millisecond {
			return optionError(fmt.Sprintf("WithHeartbeat(%s)", interval), "interval must be at least 10ms")
		}
		if beat == nil {
			return optionError("WithHeartbeat", "func must not be nil")
		}
		o.heartbeat, o.beat = interval, beat
		return nil
	}
}

// WithStateDir keeps the assignment in dir (created if missing), so that after a restart of the
// program, or while the control plane cannot be reached, the node keeps running what it was
// given. The default keeps it in memory only.
func WithStateDir(dir string) AgentOption {
	return func(o *agentOptions) error {
		if !filepath.IsAbs(dir) {
			return optionError(fmt.Sprintf("WithStateDir(%q)", dir), "must be an absolute path")
		}
		o.stateDir = dir
		return nil
	}
}

// WithStatusFunc sets the function told of every observed status change, in order, from one
// goroutine. It must not block for long: updates queue up behind it. The default does nothing.
func WithStatusFunc(f func(TaskUpdate)) AgentOption {
	return func(o *agentOptions) error {
		if f == nil {
			return optionError("WithStatusFunc(nil)", "must not be nil")
		}
		o.onStatus = f
		return nil
	}
}

// WithResyncInterval sets how often the agent re-reads every container's state even when
// containerd reports nothing, as a safety net for missed events. The default is 10s.
func WithResyncInterval(d time.Duration) AgentOption {
	return func(o *agentOptions) error {
		if d < 100*time.Millisecond {
			return optionError(fmt.Sprintf("WithResyncInterval(%s)", d), "must be at least 100ms")
		}
		o.resync = d
		return nil
	}
}

// WithAgentLogger sets the logger of the agent's own messages. The default discards them.
func WithAgentLogger(l *slog.Logger) AgentOption {
	return func(o *agentOptions) error {
		if l == nil {
			return optionError("WithAgentLogger(nil)", "must not be nil")
		}
		o.logger = l
		return nil
	}
}

// Agent converges one node to its assignment: it starts the containers of assigned tasks
// that are missing, stops and removes those no longer assigned, restarts exited ones by their
// task's restart policy without asking anyone, runs health checks, and reports every status
// change. Container IDs are task IDs, so a container is never duplicated, whoever restarts.
//
// Call Run to make it work; Assign may be called before or while it runs, from any
// goroutine. Close stops it for good and waits for every goroutine it started.
type Agent struct {
	rt   *Runtime
	opts agentOptions
	log  *slog.Logger

	mu       sync.Mutex
	assigned *Assignment // nil until the first assignment (given or loaded)
	tasks    map[string]*taskWorker
	statuses map[string]dao.TaskStatus
	removals map[string]bool // containers being stopped and removed
	wake     chan struct{}
	running  bool
	runDone  chan struct{} // closed when the active Run has returned
	closed   bool

	// life is ended by Close: it ends Run and cuts off the removals under way.
	life    context.Context
	endLife context.CancelFunc

	removalsWG sync.WaitGroup

	reports   []TaskUpdate
	reportsMu sync.Mutex
	reportsCh chan struct{}
}

// NewAgent returns an agent over rt. It loads the assignment kept in the state directory, if
// any. It starts no goroutine: Run does.
func NewAgent(rt *Runtime, opts ...AgentOption) (*Agent, error) {
	o := agentOptions{
		onStatus: func(TaskUpdate) {},
		resync:   10 * time.Second,
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if rt == nil {
		return nil, fmt.Errorf("edge: NewAgent: nil Runtime: %w", dao.ErrInvalid)
	}
	if o.logger == nil {
		o.logger = rt.log
	}
	life, endLife := context.WithCancel(context.Background())
	a := &Agent{
		life:      life,
		endLife:   endLife,
		rt:        rt,
		opts:      o,
		log:       o.logger,
		tasks:     map[string]*taskWorker{},
		statuses:  map[string]dao.TaskStatus{},
		removals:  map[string]bool{},
		wake:      make(chan struct{}, 1),
		reportsCh: make(chan struct{}, 1),
	}
	if o.stateDir != "" {
		if err := os.MkdirAll(o.stateDir, 0o750); err != nil {
			return nil, fmt.Errorf("edge: state dir: %w", err)
		}
		as, err := a.loadAssignment()
		if err != nil {
			endLife()
			return nil, err
		}
		a.assigned = as
	}
	return a, nil
}

// Assign replaces the node's assignment. An assignment with a lower revision than the current
// one of the same epoch is refused with ErrStaleRevision; one with the same epoch, revision
// and tasks changes nothing; one of another epoch (a control plane whose store started over)
// is taken whatever its revision.
// Every task is validated first; an invalid one refuses the whole assignment.
func (a *Agent) Assign(set Assignment) error {
	if a.isClosed() {
		return ErrClosed
	}
	seen := map[string]bool{}
	for i := range set.Tasks {
		t := &set.Tasks[i]
		if err := t.Validate(); err != nil {
			return fmt.Errorf("edge: assignment task %d (%s): %w", i, t.ID, err)
		}
		if err := validID(t.ID); err != nil {
			return fmt.Errorf("edge: assignment task %d: %w", i, err)
		}
		if seen[t.ID] {
			return fmt.Errorf("edge: assignment: task %s appears twice: %w", t.ID, dao.ErrInvalid)
		}
		seen[t.ID] = true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if cur := a.assigned; cur != nil && cur.Epoch != set.Epoch {
		a.log.Info("assignment of a new epoch: the control plane's store started over",
			"epoch", set.Epoch, "revision", set.Revision, "was", cur.Epoch, "wasRevision", cur.Revision)
	} else if cur != nil {
		if set.Revision < cur.Revision {
			return fmt.Errorf("%w: have %d, got %d", ErrStaleRevision, cur.Revision, set.Revision)
		}
		if set.Revision == cur.Revision && sameTasks(cur.Tasks, set.Tasks) {
			a.log.Debug("assignment received: unchanged", "epoch", set.Epoch, "revision", set.Revision, "tasks", len(set.Tasks))
			return nil
		}
	}
	set.Tasks = slices.Clone(set.Tasks)
	if a.opts.stateDir != "" {
		if err := a.saveAssignment(&set); err != nil {
			return err
		}
	}
	a.assigned = &set
	a.log.Debug("assignment received", "epoch", set.Epoch, "revision", set.Revision, "tasks", len(set.Tasks))
	a.poke()
	return nil
}

// Revision returns the revision of the current assignment, 0 before any.
func (a *Agent) Revision() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.assigned == nil {
		return 0
	}
	return a.assigned.Revision
}

// Tasks returns the assigned tasks with their last observed status, sorted by ID.
func (a *Agent) Tasks() []dao.Task {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.assigned == nil {
		return nil
	}
	out := make([]dao.Task, 0, len(a.assigned.Tasks))
	for _, t := range a.assigned.Tasks {
		if st, ok := a.statuses[t.ID]; ok {
			t.Status = st
		}
		out = append(out, t)
	}
	slices.SortFunc(out, func(x, y dao.Task) int { return cmpString(x.ID, y.ID) })
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Run converges the node until ctx is done, or the Agent is closed. It returns ctx's error
// (ErrClosed after Close), leaving every container running: a restart of the program is not
// a reason to restart containers. Removals of containers no longer assigned that are under
// way are finished first, unless Close cuts them off (one not finished is finished by the
// next Run, of this Agent or of a new one over the same namespace, as its container belongs
// to no assigned task), and their status reported: once Run has returned, none of its
// goroutines acts on a container or calls the status function. Only one Run may be active at
// a time.
func (a *Agent) Run(ctx context.Context) error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return ErrClosed
	}
	if a.running {
		a.mu.Unlock()
		return errAgentRunning
	}
	a.running = true
	runDone := make(chan struct{})
	a.runDone = runDone
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.running = false
		a.runDone = nil
		a.mu.Unlock()
		close(runDone)
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(a.life, cancel)() // Close ends Run
	events := a.rt.Subscribe(ctx)
	// The status function is told of everything until the end, the last removals too: the
	// report loop ends after them.
	reportCtx, endReports := context.WithCancel(context.WithoutCancel(ctx))
	reportsDone := make(chan struct{})
	go func() {
		defer close(reportsDone)
		a.reportLoop(reportCtx)
	}()
	defer func() {
		cancel()
		a.mu.Lock()
		workers := slices.Collect(maps.Values(a.tasks))
		a.tasks = map[string]*taskWorker{}
		a.mu.Unlock()
		for _, w := range workers {
			w.cancel()
			<-w.done
		}
		// No goroutine of this Run acts on a container once it has returned: removals
		// under way are finished (a removal is not cut off half-way; one that fails is
		// tried again by the next Run, as the container is not assigned).
		a.removalsWG.Wait()
		endReports()
		<-reportsDone
		a.log.Debug("agent stopped")
	}()
	a.log.Debug("agent running", "revision", a.Revision())

	resync := time.NewTicker(a.opts.resync)
	defer resync.Stop()
	var beats <-chan time.Time
	if a.opts.beat != nil {
		t := time.NewTicker(a.opts.heartbeat)
		defer t.Stop()
		beats = t.C
		a.opts.beat()
	}
	a.converge(ctx)
	for {
		select {
		case <-ctx.Done():
			if a.life.Err() != nil {
				return ErrClosed
			}
			return ctx.Err()
		case <-beats:
			a.opts.beat()
		case <-a.wake:
			a.converge(ctx)
		case <-resync.C:
			a.converge(ctx)
			a.broadcast(Event{Type: EventResync, Time: time.Now()})
		case e, ok := <-events:
			if !ok || e.Type == EventError && !errors.Is(e.Err, ErrSlowSubscriber) {
				if a.life.Err() != nil {
					return ErrClosed
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return ErrClosed // the Runtime was closed
			}
			if e.Type == EventError {
				// Dropped as too slow (a status function that blocks, say): events were
				// missed. Subscribe again, and look at everything.
				a.log.Warn("agent fell behind containerd's events: subscribing again", "err", e.Err)
				events = a.rt.Subscribe(ctx)
				a.converge(ctx)
				a.broadcast(Event{Type: EventResync, Time: time.Now()})
				continue
			}
			if e.Type == EventResync {
				a.converge(ctx)
				a.broadcast(e)
				continue
			}
			a.mu.Lock()
			w := a.tasks[e.ContainerID]
			a.mu.Unlock()
			if w != nil {
				w.notify(e)
			}
		}
	}
}

// Close stops the Agent for good: it ends Run (which then returns ErrClosed), cutting off
// the removals under way, and waits until Run has returned and every goroutine it started has
// ended; no status is reported after Close returns. Containers keep running, and a removal
// cut off is finished by the next Agent over the same namespace (its container belongs to no
// assigned task). The Runtime is left open. Later calls of Run and Assign return ErrClosed.
// Close may be called more than once, and from any goroutine.
func (a *Agent) Close() error {
	a.mu.Lock()
	a.closed = true
	done := a.runDone
	a.mu.Unlock()
	a.endLife()
	if done != nil {
		<-done
	}
	return nil
}

func (a *Agent) isClosed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.closed
}

func (a *Agent) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *Agent) broadcast(e Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, w := range a.tasks {
		w.notify(e)
	}
}

// converge makes the set of task workers match the assignment and removes containers of tasks
// that are no longer assigned.
func (a *Agent) converge(ctx context.Context) {
	a.mu.Lock()
	if a.assigned == nil {
		// Nothing is known yet: touch nothing.
		a.mu.Unlock()
		return
	}
	want := map[string]dao.Task{}
	for _, t := range a.assigned.Tasks {
		if t.DesiredState <= dao.TaskRunning {
			want[t.ID] = t
		}
	}
	type gone struct {
		id string
		w  *taskWorker
	}
	var stale []gone
	for id, w := range a.tasks {
		if t, ok := want[id]; !ok || SpecHash(&t.Spec) != SpecHash(&w.task.Spec) {
			w.cancel()
			delete(a.tasks, id)
			a.removals[id] = true
			stale = append(stale, gone{id, w})
			why := "no longer assigned"
			if ok {
				why = "its spec changed"
			}
			a.log.Debug("task worker stopped: removing its container", "task", id, "why", why)
		}
	}
	for id, t := range want {
		if _, ok := a.tasks[id]; !ok && !a.removals[id] {
			w := newTaskWorker(ctx, a, t)
			a.tasks[id] = w
			a.log.Debug("task worker started", "task", id, "service", t.ServiceID)
			go w.run()
		}
	}
	a.mu.Unlock()
	for _, g := range stale {
		a.launchRemoval(ctx, g.id, g.w, g.w.done)
	}

	// Containers of ours that belong to no assigned task: stop and remove them. A worker that
	// is removing its own container is left to do it.
	list, err := a.rt.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("list containers", "err", err)
		}
		return
	}
	for _, c := range list {
		if c.Labels[LabelTask] == "" {
			continue
		}
		a.startRemoval(ctx, c.ID)
	}
}

// startRemoval stops and removes a container of no task worker in the background, unless
// that is under way. It is decided with the agent's lock held: a container listed before a
// worker of its task was started, or before its removal ended, is not removed again.
func (a *Agent) startRemoval(ctx context.Context, id string) {
	a.mu.Lock()
	if a.removals[id] || a.tasks[id] != nil {
		a.mu.Unlock()
		return
	}
	a.removals[id] = true
	a.mu.Unlock()
	a.log.Debug("removing a container of no assigned task", "task", id)
	a.launchRemoval(ctx, id, nil, nil)
}

// launchRemoval stops and removes a container marked in a.removals, once after (a worker's
// goroutine) has ended; w is that worker, nil for a container of no worker. The agent is poked
// when it is done, so that a task whose spec changed gets its new container.
func (a *Agent) launchRemoval(ctx context.Context, id string, w *taskWorker, after <-chan struct{}) {
	a.removalsWG.Add(1)
	go func() {
		defer a.removalsWG.Done()
		defer func() {
			a.mu.Lock()
			delete(a.removals, id)
			a.mu.Unlock()
			a.poke()
		}()
		if after != nil {
			<-after
		}
		// The worker has ended: its status is its last word.
		last := dao.TaskStatus{ContainerID: id}
		if w != nil {
			last = w.lastStatus()
		}
		a.stopAndRemove(ctx, id, last, w != nil)
	}()
}

// stopAndRemove stops and removes the container, and reports the task shut down. A removal
// is not cut off when ctx (Run's) ends, but Close cuts it off (the Stop: Remove, once begun,
// finishes), leaving the container to the next Agent; a failed one is tried again, until ctx
// has ended, the Agent or the Runtime is closed. known says the container is a worker's: its
// task is reported shut down even when it had no container; one of no worker that is
// already gone is not reported.
func (a *Agent) stopAndRemove(ctx context.Context, id string, last dao.TaskStatus, known bool) {
	begin := time.Now()
	for attempt := 0; ; attempt++ {
		st, err := a.rt.Stop(a.life, id)
		if err == nil {
			a.log.Debug("container stopped", "task", id, "exitCode", st.ExitCode, "took", time.Since(begin))
			err = a.rt.Remove(a.life, id)
		}
		if err == nil || errors.Is(err, ErrNotFound) {
			if err == nil {
				a.log.Debug("container removed", "task", id, "took", time.Since(begin))
			} else if !known {
				a.log.Debug("container gone before its removal", "task", id)
				return
			}
			last.State = dao.TaskShutdown
			last.Message = "stopped: no longer assigned"
			last.PID = 0
			last.Health = dao.HealthNone
			last.Restarting, last.NextRestartAt = false, time.Time{}
			if !st.FinishedAt.IsZero() {
				last.FinishedAt = st.FinishedAt
				last.ExitCode = st.ExitCode
				last.OOMKilled = st.OOMKilled
			}
			last.Timestamp = time.Now()
			a.report(id, last, true)
			return
		}
		if errors.Is(err, ErrClosed) {
			a.log.Warn("remove container: the runtime is closed", "id", id)
			return
		}
		if a.life.Err() != nil {
			a.log.Warn("remove container: cut off as the agent is closed; the next agent removes it", "id", id, "err", err)
			return
		}
		a.log.Warn("remove container", "id", id, "err", err, "attempt", attempt)
		if attempt >= 20 {
			return
		}
		retry := time.NewTimer(min(time.Duration(attempt+1)*200*time.Millisecond, 3*time.Second))
		select {
		case <-retry.C:
		case <-ctx.Done():
			retry.Stop()
			a.log.Warn("remove container: given up as the agent stops; the next run removes it", "id", id, "err", err)
			return
		}
	}
}

// report records a task's status and queues it for the status function. When final is
// set, the task is forgotten after the report.
func (a *Agent) report(id string, st dao.TaskStatus, final bool) {
	a.mu.Lock()
	if final {
		delete(a.statuses, id)
	} else {
		a.statuses[id] = st
	}
	a.mu.Unlock()
	a.reportsMu.Lock()
	a.reports = append(a.reports, TaskUpdate{TaskID: id, Status: st})
	a.reportsMu.Unlock()
	select {
	case a.reportsCh <- struct{}{}:
	default:
	}
}

// reportLoop calls the status function, one update at a time, in order.
func (a *Agent) reportLoop(ctx context.Context) {
	flush := func() {
		for {
			a.reportsMu.Lock()
			batch := a.reports
			a.reports = nil
			a.reportsMu.Unlock()
			if len(batch) == 0 {
				return
			}
			for _, u := range batch {
				if a.log.Enabled(context.Background(), slog.LevelDebug) {
					a.log.Debug("status sent", "task", u.TaskID, "state", u.Status.State,
						"status", u.Status.Describe(time.Now()), "message", u.Status.Message)
				}
				a.opts.onStatus(u)
			}
		}
	}
	for {
		select {
		case <-ctx.Done():
			flush()
			return
		case <-a.reportsCh:
			flush()
		}
	}
}

const assignmentFile = "assignment.json"

func (a *Agent) loadAssignment() (*Assignment, error) {
	b, err := os.ReadFile(filepath.Join(a.opts.stateDir, assignmentFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("edge: load assignment: %w", err)
	}
	var as Assignment
	if err := json.Unmarshal(b, &as); err != nil {
		return nil, fmt.Errorf("edge: load assignment %s: %w", filepath.Join(a.opts.stateDir, assignmentFile), err)
	}
	return &as, nil
}

// saveAssignment writes the assignment atomically: a crash leaves the old file or the new one.
func (a *Agent) saveAssignment(as *Assignment) error {
	b, err := json.Marshal(as)
	if err != nil {
		return fmt.Errorf("edge: save assignment: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(a.opts.stateDir, assignmentFile), b, 0o640); err != nil {
		return fmt.Errorf("edge: save assignment: %w", err)
	}
	return nil
}

// sameTasks reports whether two task lists ask for the same thing, ignoring order and status.
func sameTasks(x, y []dao.Task) bool {
	if len(x) != len(y) {
		return false
	}
	key := func(t dao.Task) string {
		t.Status = dao.TaskStatus{}
		b, _ := json.Marshal(t)
		return string(b)
	}
	m := map[string]int{}
	for _, t := range x {
		m[key(t)]++
	}
	for _, t := range y {
		k := key(t)
		if m[k] == 0 {
			return false
		}
		m[k]--
	}
	return true
}
