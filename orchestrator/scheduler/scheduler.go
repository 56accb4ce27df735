package scheduler

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/clock"
	"github.com/opendao/dao/policy"
)

// DefaultSampleSize is how many feasible nodes the scheduler weighs for a group of tasks
// (at least as many as the group has tasks), unless WithSampleSize says otherwise.
const DefaultSampleSize = 64

// Scheduler decides which node runs each task. It keeps an incremental account of what every
// node has been given (resources, host ports, tasks per service, per label value), places
// identical tasks as one batch, and weighs a bounded sample of feasible nodes, so that the
// cost of a placement does not grow with the size of the cluster while constraints stay exact:
// every node it chooses passes every filter.
//
// A Scheduler is not safe for concurrent use: an orchestrator's scheduling loop owns its own.
type Scheduler struct {
	cluster  *policy.ClusterInfo
	nodes    map[string]*policy.NodeInfo
	order    []*policy.NodeInfo // nodes in a stable order, for scanning
	index    map[string]int     // node ID -> position in order
	taskNode map[string]string  // task ID -> node ID, for tasks counted on a node
	placers  map[placerKey]*policy.Placer
	sample   int
	now      func() time.Time
	rnd      *rand.Rand
}

type placerKey struct {
	service string
	version uint64
}

// Option configures a Scheduler (New, or an orchestrator's through
// orchestrator.WithScheduling).
type Option func(*options) error

type options struct {
	sample int
	now    func() time.Time
	rnd    *rand.Rand // nil: seeded randomly by each new Scheduler
}

func defaultOptions() options {
	return options{sample: DefaultSampleSize, now: time.Now}
}

// invalid returns the error of an option given a bad value: it names the option and the
// reason, and wraps dao.ErrInvalid.
func invalid(option, format string, args ...any) error {
	return fmt.Errorf("scheduler: %s: %s: %w", option, fmt.Sprintf(format, args...), dao.ErrInvalid)
}

// WithSampleSize sets how many feasible nodes are weighed for a group of tasks when the group
// is smaller than that. The default is DefaultSampleSize (64); it must be at least 1. A larger
// sample places better and costs more per group.
func WithSampleSize(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return invalid("WithSampleSize", "%d: must be at least 1", n)
		}
		o.sample = n
		return nil
	}
}

// WithClock sets the clock the placement policies read (recent failures). The default is
// clock.System(); an orchestrator gives its Scheduler its own (orchestrator.WithClock).
func WithClock(c clock.Clock) Option {
	return func(o *options) error {
		if c == nil {
			return invalid("WithClock", "nil clock")
		}
		o.now = c.Now
		return nil
	}
}

// WithRand sets the random source that picks where a scan of the nodes starts. The default
// is a source seeded randomly for each Scheduler.
func WithRand(r *rand.Rand) Option {
	return func(o *options) error {
		if r == nil {
			return invalid("WithRand", "nil source")
		}
		o.rnd = r
		return nil
	}
}

// New returns a scheduler with no nodes. A nil option, or an option given a bad value, is
// an error wrapping dao.ErrInvalid.
func New(opts ...Option) (*Scheduler, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if opt == nil {
			return nil, invalid("Option", "nil option")
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	rnd := o.rnd
	if rnd == nil {
		rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return &Scheduler{
		cluster:  policy.NewClusterInfo(),
		nodes:    map[string]*policy.NodeInfo{},
		index:    map[string]int{},
		taskNode: map[string]string{},
		placers:  map[placerKey]*policy.Placer{},
		sample:   o.sample,
		now:      o.now,
		rnd:      rnd,
	}, nil
}

// SetNode adds a node or updates it (labels, status, availability, resources). Its tasks
// stay counted on it.
func (s *Scheduler) SetNode(node *dao.Node) {
	n := *node
	if ni, ok := s.nodes[n.ID]; ok {
		ni.SetNode(&n)
		return
	}
	ni := policy.NewNodeInfo(s.cluster, &n)
	s.nodes[n.ID] = ni
	s.index[n.ID] = len(s.order)
	s.order = append(s.order, ni)
}

// RemoveNode forgets a node and the tasks counted on it, and returns their IDs.
func (s *Scheduler) RemoveNode(id string) []string {
	ni, ok := s.nodes[id]
	if !ok {
		return nil
	}
	var gone []string
	for tid, nid := range s.taskNode {
		if nid == id {
			gone = append(gone, tid)
			delete(s.taskNode, tid)
		}
	}
	ni.Clear()
	i := s.index[id]
	last := len(s.order) - 1
	s.order[i] = s.order[last]
	s.index[s.order[i].Node().ID] = i
	s.order = s.order[:last]
	delete(s.index, id)
	delete(s.nodes, id)
	return gone
}

// Node returns the scheduler's view of a node, or nil.
func (s *Scheduler) Node(id string) *policy.NodeInfo { return s.nodes[id] }

// Nodes returns the number of nodes.
func (s *Scheduler) Nodes() int { return len(s.order) }

// Count counts a task on its node (t.NodeID), as for a task placed earlier or by another
// scheduler. A task whose node is unknown is not counted, and Count returns false.
func (s *Scheduler) Count(t *dao.Task) bool {
	ni, ok := s.nodes[t.NodeID]
	if !ok {
		return false
	}
	if prev, ok := s.taskNode[t.ID]; ok {
		if prev == t.NodeID {
			return true
		}
		s.Uncount(t.ID)
	}
	ni.AddTask(t)
	s.taskNode[t.ID] = t.NodeID
	return true
}

// Uncount takes a task off its node: it ended or was removed.
func (s *Scheduler) Uncount(taskID string) {
	nid, ok := s.taskNode[taskID]
	if !ok {
		return
	}
	delete(s.taskNode, taskID)
	if ni := s.nodes[nid]; ni != nil {
		ni.RemoveTask(taskID)
	}
}

// RecordFailure notes that a task of the service failed on the node, for the policies that
// steer away from such nodes.
func (s *Scheduler) RecordFailure(nodeID, serviceID string, at time.Time) {
	if ni := s.nodes[nodeID]; ni != nil {
		ni.RecordFailure(serviceID, at)
	}
}

// Placer returns the placer (filters and scorers) of a service version, building it from
// placement with policy.DefaultPlacer the first time. A placement whose constraints do not
// parse gives a *policy.SyntaxError.
func (s *Scheduler) Placer(serviceID string, version uint64, placement dao.Placement) (*policy.Placer, error) {
	k := placerKey{serviceID, version}
	if p, ok := s.placers[k]; ok {
		return p, nil
	}
	p, err := policy.DefaultPlacer(placement)
	if err != nil {
		return nil, err
	}
	s.placers[k] = p
	return p, nil
}

// ForgetPlacers drops the cached placers of a service (it was updated or removed).
func (s *Scheduler) ForgetPlacers(serviceID string) {
	for k := range s.placers {
		if k.service == serviceID {
			delete(s.placers, k)
		}
	}
}

// Decision is where one task goes, or why it cannot go anywhere.
type Decision struct {
	Task *dao.Task
	// NodeID is the chosen node; empty when Err is set.
	NodeID string
	// Err is a *policy.PlacementError (errors.Is policy.ErrUnschedulable) explaining, node
	// count by reason, why no node could take the task.
	Err error
}

// Place places a group of tasks that ask for the same thing (one service version: the same
// spec and placement) with placer p, counts each placed task on its node, and returns one
// decision per task, in order. Tasks are not changed.
//
// The group is placed as one batch. Feasible nodes are found by scanning the nodes from a
// random start until max(sample size, group size) of them pass the filters; the scan goes on
// only when those run out, so a group costs about as much as it has tasks, whatever the number
// of nodes, and an unplaceable group costs one pass over them. Every chosen node passes every
// filter for the task it gets.
//
// Among the feasible nodes, spreading over label values (the placer's SpreadLabel scorers)
// is done exactly, by counts: each task goes to the label value with the fewest tasks of the
// service. Within a value, nodes are ranked by the placer's other scorers in a heap that is
// re-scored lazily: a node is re-scored when it gets a task or reaches the top, and every
// node when the service's largest count on one node grows (the node-spreading scorer is
// relative to it). Scorers of a user's own are assumed to change only for the node that gets
// a task.
func (s *Scheduler) Place(p *policy.Placer, tasks []*dao.Task) []Decision {
	out := make([]Decision, len(tasks))
	if len(tasks) == 0 {
		return out
	}
	s.cluster.SetNow(s.now())
	first := tasks[0]
	b := newBatch(s, p, first)
	total := len(s.order)
	b.want = min(max(s.sample, len(tasks)), total)
	if total > 0 {
		b.start = s.rnd.IntN(total)
	}
	b.scan()
	var unplaceable error
	for i, t := range tasks {
		out[i].Task = t
		if unplaceable != nil {
			out[i].Err = unplaceable
			continue
		}
		ni := b.next(t)
		if ni == nil {
			unplaceable = &policy.PlacementError{TaskID: t.ID, Nodes: total, Refusals: b.refusals.Counts()}
			out[i].Err = unplaceable
			continue
		}
		nid := ni.Node().ID
		s.taskNode[t.ID] = nid
		out[i].NodeID = nid
	}
	return out
}

// batch is the state of one Place call.
type batch struct {
	s        *Scheduler
	local    policy.Placer // the placer without its label-spread scorers
	keys     []string      // label keys spread over, most important first
	task     *dao.Task     // the first task: the one the scan filters for
	groups   []*group      // feasible nodes by label values
	byValue  map[string]*group
	refusals policy.Refusals
	want     int
	start    int
	scanned  int
	maxNode  int // the service's largest count on one node, when last scored
}

// group holds the feasible nodes with the same values of the spread labels.
type group struct {
	values  []string
	present []bool
	heap    candidates
}

func newBatch(s *Scheduler, p *policy.Placer, first *dao.Task) *batch {
	b := &batch{s: s, task: first, byValue: map[string]*group{}}
	b.local.Filters = p.Filters
	for _, sc := range p.Scorers {
		if key, ok := sc.SpreadKey(); ok && sc.Weight != 0 {
			b.keys = append(b.keys, key)
			continue
		}
		b.local.Scorers = append(b.local.Scorers, sc)
	}
	b.maxNode = s.cluster.MaxTasksPerNode(first.ServiceID)
	return b
}

// scan adds feasible nodes until want of them are held or every node was looked at.
func (b *batch) scan() {
	order := b.s.order
	total := len(order)
	held := 0
	for _, g := range b.groups {
		held += len(g.heap.items)
	}
	touched := map[*group]bool{}
	for b.scanned < total && held < b.want {
		ni := order[(b.start+b.scanned)%total]
		b.scanned++
		if err := b.local.Filter(b.task, ni); err != nil {
			b.refusals.Add(err)
			continue
		}
		g := b.group(ni)
		g.heap.items = append(g.heap.items, candidate{node: ni, score: b.local.Score(b.task, ni)})
		touched[g] = true
		held++
	}
	for g := range touched {
		heap.Init(&g.heap)
	}
}

// group returns the group of node ni's label values, making it if new.
func (b *batch) group(ni *policy.NodeInfo) *group {
	if len(b.keys) == 0 {
		if len(b.groups) == 0 {
			b.groups = append(b.groups, &group{})
		}
		return b.groups[0]
	}
	labels := ni.Node().Labels
	var key strings.Builder
	for _, k := range b.keys {
		v, ok := labels[k]
		if ok {
			key.WriteByte('=')
		} else {
			key.WriteByte('!')
		}
		key.WriteString(v)
		key.WriteByte(0)
	}
	if g, ok := b.byValue[key.String()]; ok {
		return g
	}
	g := &group{values: make([]string, len(b.keys)), present: make([]bool, len(b.keys))}
	for i, k := range b.keys {
		g.values[i], g.present[i] = labels[k]
	}
	b.byValue[key.String()] = g
	b.groups = append(b.groups, g)
	return g
}

// count returns the service's tasks on nodes with g's value of the i-th key.
func (b *batch) count(g *group, i int) int {
	if g.present[i] {
		return b.s.cluster.LabelTasks(b.task.ServiceID, b.keys[i], g.values[i])
	}
	return b.s.cluster.UnlabeledTasks(b.task.ServiceID, b.keys[i])
}

// less reports whether group x should get the next task before group y: fewer tasks of the
// service on its label values, key by key, then a better best node.
func (b *batch) less(x, y *group) bool {
	for i := range b.keys {
		if cx, cy := b.count(x, i), b.count(y, i); cx != cy {
			return cx < cy
		}
	}
	return x.heap.items[0].score > y.heap.items[0].score
}

// next places t on the best feasible node and returns it, or nil when no node can take it.
func (b *batch) next(t *dao.Task) *policy.NodeInfo {
	for {
		var best *group
		for _, g := range b.groups {
			if len(g.heap.items) > 0 && (best == nil || b.less(g, best)) {
				best = g
			}
		}
		if best == nil {
			if b.scanned < len(b.s.order) {
				b.scan()
				continue
			}
			return nil
		}
		h := &best.heap
		top := h.items[0]
		if err := b.local.Filter(t, top.node); err != nil {
			// Full now: it leaves the sample, and a scan may bring another in.
			b.refusals.Add(err)
			h.dropTop()
			continue
		}
		score := b.local.Score(t, top.node)
		if score < top.score && len(h.items) > 1 && score < h.peekNext() {
			// Its score went down since it was pushed: let the others have their turn.
			h.items[0].score = score
			heap.Fix(h, 0)
			continue
		}
		top.node.AddTask(t)
		h.items[0].score = b.local.Score(t, top.node)
		heap.Fix(h, 0)
		if m := b.s.cluster.MaxTasksPerNode(t.ServiceID); m != b.maxNode {
			b.maxNode = m
			b.rescore(t)
		}
		return top.node
	}
}

// rescore scores every held node again.
func (b *batch) rescore(t *dao.Task) {
	for _, g := range b.groups {
		for i := range g.heap.items {
			g.heap.items[i].score = b.local.Score(t, g.heap.items[i].node)
		}
		heap.Init(&g.heap)
	}
}

// candidate is a feasible node and its last known score.
type candidate struct {
	node  *policy.NodeInfo
	score int64
}

// candidates is a max-heap of candidates by score.
type candidates struct {
	items []candidate
}

func (c *candidates) Len() int           { return len(c.items) }
func (c *candidates) Less(i, j int) bool { return c.items[i].score > c.items[j].score }
func (c *candidates) Swap(i, j int)      { c.items[i], c.items[j] = c.items[j], c.items[i] }
func (c *candidates) Push(x any)         { c.items = append(c.items, x.(candidate)) }
func (c *candidates) Pop() any {
	last := c.items[len(c.items)-1]
	c.items = c.items[:len(c.items)-1]
	return last
}

// dropTop removes the best candidate without boxing it (heap.Pop would allocate).
func (c *candidates) dropTop() {
	last := len(c.items) - 1
	c.items[0] = c.items[last]
	c.items = c.items[:last]
	if last > 0 {
		heap.Fix(c, 0)
	}
}

// peekNext returns the best score after the top's.
func (c *candidates) peekNext() int64 {
	best := c.items[1].score
	if len(c.items) > 2 && c.items[2].score > best {
		best = c.items[2].score
	}
	return best
}
