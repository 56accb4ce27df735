package orchestrator

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/opendao/dao"
)

// core is the machinery the memory store and the bbolt store share: the state in memory,
// its indexes, transactions and the event log. The bbolt store adds a persist hook that
// writes each transaction to disk before it is made visible.
//
// Writers take turns on wsem (which a context can give up waiting for), then hold mu for
// writing while their function runs, changing the state in place and noting each object's
// state before the transaction; a failure puts those back. Readers hold mu for reading.
// Stored objects are never changed once stored: a write stores a new one, so that events
// and watchers can hold on to old ones without locks.
type core struct {
	wsem chan struct{}
	mu   sync.RWMutex
	st   state
	hub  *hub
	// persist, when set, makes the changes of a transaction durable at revision rev; an
	// error aborts the transaction.
	persist func(ctx context.Context, rev uint64, changes []change) error

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
	onClose   func() error
}

func newCore(rev uint64, o storeOptions) *core {
	return &core{
		wsem: make(chan struct{}, 1),
		st:   newState(rev),
		hub:  newHub(rev, o.history, o.buffer),
	}
}

// state is the content of a store at a revision.
type state struct {
	rev      uint64
	services map[string]*Service
	tasks    taskTable
	nodes    map[string]*Node
}

func newState(rev uint64) state {
	return state{rev: rev, services: map[string]*Service{}, tasks: newTaskTable(), nodes: map[string]*Node{}}
}

// change is one object's net change in a transaction. prev and cur hold a *Service, a
// *taskRec or a *Node.
type change struct {
	typ  ObjectType
	id   string
	prev any // before the transaction; nil when it did not exist
	cur  any // now; nil when deleted
}

// kind returns the kind of event the change makes, or 0 for none (created, then deleted).
func (c *change) kind() EventKind {
	switch {
	case c.prev == nil && c.cur == nil:
		return 0
	case c.prev == nil:
		return EventCreated
	case c.cur == nil:
		return EventDeleted
	}
	return EventUpdated
}

type objectKey struct {
	typ ObjectType
	id  string
}

// txn is a transaction of a core: read-only in a View, read-write in an Update.
type txn struct {
	c     *core
	st    *state
	write bool
	done  bool
	rev   uint64 // the revision of the writes
	// changes holds one entry per object written, in order of first write.
	changes []change
	// touched finds an object's entry in changes. It is built only when needed (an object
	// written twice, or created after a delete), to keep big batches cheap.
	touched map[objectKey]int
	deletes bool
	// track makes the writes note the caller's revision fields in callers, for a store
	// that learns the revision of its writes at the commit (see prepare).
	track   bool
	callers []*uint64
	// shared makes the task and node reads share the stored objects' specs, maps and
	// lists, not copy them (SharedReads).
	shared bool
}

// sharedReadsKey marks a context whose View or Update reads tasks and nodes without
// copying their specs, labels and lists (SharedReads).
type sharedReadsKey struct{}

// SharedReads returns a context whose View and Update, on the package's stores
// (MemoryStore, BoltStore, EtcdStore), return tasks and nodes that share the stored
// objects' specs, environment, labels, maps and lists instead of deep copies, as
// client-go's informer caches share theirs. The caller must only read those: writing to
// one changes the store's own object, which every reader and the next commit see. What it
// writes back goes through UpdateTask and UpdateNode as always, which copy it. The
// orchestrator's own loops read this way: a million tasks starting are read millions of
// times, and each deep copy of a task copies its whole spec. Another Store ignores it.
func SharedReads(ctx context.Context) context.Context {
	return context.WithValue(ctx, sharedReadsKey{}, true)
}

// withSharedReads is SharedReads, for the orchestrator's loops.
func withSharedReads(ctx context.Context) context.Context { return SharedReads(ctx) }

func sharedReads(ctx context.Context) bool { return ctx.Value(sharedReadsKey{}) != nil }

// nodeValue returns the node as the transaction's reader gets it.
func (tx *txn) nodeValue(n *Node) Node {
	if tx.shared {
		return *n
	}
	return cloneNodeValue(n)
}

// taskValue returns the record as the transaction's reader gets it.
func (tx *txn) taskValue(r *taskRec) Task {
	if tx.shared {
		return r.shallow()
	}
	return r.value()
}

// noteCaller notes a caller's revision field that a write set.
func (tx *txn) noteCaller(p *uint64) {
	if tx.track {
		tx.callers = append(tx.callers, p)
	}
}

func (c *core) view(ctx context.Context, fn func(ReadTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.closed.Load() {
		return ErrClosed
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	tx := &txn{c: c, st: &c.st, shared: sharedReads(ctx)}
	defer func() { tx.done = true }()
	return fn(tx)
}

func (c *core) update(ctx context.Context, cause string, fn func(Tx) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case c.wsem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.wsem }()
	if c.closed.Load() {
		return ErrClosed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	tx := &txn{c: c, st: &c.st, write: true, rev: c.st.rev + 1, shared: sharedReads(ctx)}
	committed := false
	defer func() {
		tx.done = true
		if !committed {
			tx.rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if !tx.changed() {
		committed = true
		return nil
	}
	if c.persist != nil {
		if err := c.persist(ctx, tx.rev, tx.changes); err != nil {
			return err
		}
	}
	c.st.rev = tx.rev
	c.hub.publish(tx.rev, cause, tx.changes)
	committed = true
	return nil
}

// prepare runs fn in a write transaction, as update does, then takes its writes back
// out, for a store that commits elsewhere first (EtcdStore): it returns the transaction's
// net changes, whose objects carry the revision after the state's (see stamp), and the
// caller's revision fields that the writes set. fn's error, or a panic, discards them.
// The caller holds wsem, and makes the changes the state with applyLocked.
func (c *core) prepare(ctx context.Context, fn func(Tx) error) (changes []change, callers []*uint64, err error) {
	if c.closed.Load() {
		return nil, nil, ErrClosed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	tx := &txn{c: c, st: &c.st, write: true, rev: c.st.rev + 1, track: true, shared: sharedReads(ctx)}
	defer func() {
		tx.done = true
		for i := range tx.changes {
			if tx.changes[i].kind() != 0 {
				changes = append(changes, tx.changes[i])
			}
		}
		tx.rollback()
		if err != nil {
			changes, callers = nil, nil
		}
	}()
	if err := fn(tx); err != nil {
		return nil, nil, err
	}
	return nil, tx.callers, nil
}

// stamp sets the revision of the objects of changes that prepare returned, before they
// are applied (no reader has seen them).
func stamp(changes []change, rev uint64) {
	for i := range changes {
		switch o := changes[i].cur.(type) {
		case *Service:
			o.Revision = rev
		case *taskRec:
			o.Revision = rev
		case *Node:
			o.Revision = rev
		}
	}
}

// current returns the state's object of a change's type and ID, or nil.
func (st *state) current(typ ObjectType, id string) any {
	switch typ {
	case ServiceObject:
		if s := st.services[id]; s != nil {
			return s
		}
	case TaskObject:
		if r := st.tasks.get(id); r != nil {
			return r
		}
	case NodeObject:
		if n := st.nodes[id]; n != nil {
			return n
		}
	}
	return nil
}

// applyLocked makes changes the state at revision rev and publishes them with cause. The
// prev of each change must be the state's current object. The caller holds mu.
func (c *core) applyLocked(rev uint64, cause string, changes []change) {
	for i := range changes {
		ch := &changes[i]
		switch ch.typ {
		case ServiceObject:
			cur, _ := ch.cur.(*Service)
			setMap(c.st.services, ch.id, cur)
			if cur == nil {
				delete(c.st.tasks.specs, ch.id)
			}
		case TaskObject:
			prev, _ := ch.prev.(*taskRec)
			cur, _ := ch.cur.(*taskRec)
			c.st.tasks.set(ch.id, prev, cur)
		case NodeObject:
			cur, _ := ch.cur.(*Node)
			setMap(c.st.nodes, ch.id, cur)
		}
	}
	c.st.rev = rev
	c.hub.publish(rev, cause, changes)
}

// changed reports whether the transaction changed anything.
func (tx *txn) changed() bool {
	for i := range tx.changes {
		if tx.changes[i].kind() != 0 {
			return true
		}
	}
	return false
}

// close closes the store once: it waits for a running Update, ends the watches and calls
// onClose.
func (c *core) close() error {
	c.closeOnce.Do(func() {
		c.wsem <- struct{}{}
		c.closed.Store(true)
		<-c.wsem
		c.hub.close()
		if c.onClose != nil {
			c.closeErr = c.onClose()
		}
	})
	return c.closeErr
}

// rollback puts back every object the transaction wrote.
func (tx *txn) rollback() {
	for i := len(tx.changes) - 1; i >= 0; i-- {
		ch := &tx.changes[i]
		switch ch.typ {
		case ServiceObject:
			prev, _ := ch.prev.(*Service)
			setMap(tx.st.services, ch.id, prev)
		case TaskObject:
			prev, _ := ch.prev.(*taskRec)
			cur, _ := ch.cur.(*taskRec)
			tx.st.tasks.set(ch.id, cur, prev)
		case NodeObject:
			prev, _ := ch.prev.(*Node)
			setMap(tx.st.nodes, ch.id, prev)
		}
	}
	tx.changes = nil
}

func setMap[T any](m map[string]*T, id string, v *T) {
	if v == nil {
		delete(m, id)
	} else {
		m[id] = v
	}
}

func (tx *txn) check() {
	if tx.done {
		panic("orchestrator: transaction used after its function returned")
	}
}

func (tx *txn) checkWrite() {
	tx.check()
	if !tx.write {
		panic("orchestrator: write in a read-only transaction")
	}
}

// written returns the index in tx.changes of an object the transaction wrote, or -1.
func (tx *txn) written(typ ObjectType, id string) int {
	if tx.touched == nil {
		tx.touched = make(map[objectKey]int, len(tx.changes)+16)
		for i := range tx.changes {
			tx.touched[objectKey{tx.changes[i].typ, tx.changes[i].id}] = i
		}
	}
	if i, ok := tx.touched[objectKey{typ, id}]; ok {
		return i
	}
	return -1
}

// record notes a write of the object from old to cur. inTx says whether old was written
// by this transaction, which only then needs looking up.
func (tx *txn) record(typ ObjectType, id string, old, cur any, inTx bool) {
	if inTx {
		if i := tx.written(typ, id); i >= 0 {
			tx.changes[i].cur = cur
			return
		}
	}
	tx.changes = append(tx.changes, change{typ: typ, id: id, prev: old, cur: cur})
	if tx.touched != nil {
		tx.touched[objectKey{typ, id}] = len(tx.changes) - 1
	}
}

// original returns the object as it was before the transaction: cur when the transaction
// has not written it.
func (tx *txn) original(typ ObjectType, id string, cur any) any {
	if i := tx.written(typ, id); i >= 0 {
		return tx.changes[i].prev
	}
	return cur
}

func emptyID(what string) error {
	return fmt.Errorf("orchestrator: %s: empty ID: %w", what, dao.ErrInvalid)
}

func conflict(what, id string, got, stored uint64) error {
	return fmt.Errorf("%s %s: revision %d, stored %d: %w", what, id, got, stored, ErrConflict)
}

func notFound(what, id string) error {
	return fmt.Errorf("%s %s: %w", what, id, ErrNotFound)
}

func exists(what, id string) error {
	return fmt.Errorf("%s %s: %w", what, id, ErrExists)
}

func (tx *txn) Revision() uint64 {
	tx.check()
	return tx.st.rev
}

// Services.

func (tx *txn) Service(id string) (Service, error) {
	tx.check()
	s := tx.st.services[id]
	if s == nil {
		return Service{}, notFound("service", id)
	}
	return *cloneService(s), nil
}

func (tx *txn) Services() iter.Seq[Service] {
	return func(yield func(Service) bool) {
		tx.check()
		for _, s := range tx.st.services {
			if !yield(*cloneService(s)) {
				return
			}
		}
	}
}

func (tx *txn) CreateService(s *Service) error {
	tx.checkWrite()
	if s.ID == "" {
		return emptyID("service")
	}
	if tx.st.services[s.ID] != nil {
		return exists("service", s.ID)
	}
	n := cloneService(s)
	n.Version, n.Revision = 1, tx.rev
	tx.st.services[s.ID] = n
	tx.record(ServiceObject, s.ID, nil, n, tx.deletes)
	s.Version, s.Revision = n.Version, n.Revision
	tx.noteCaller(&s.Revision)
	return nil
}

func (tx *txn) UpdateService(s *Service) error {
	tx.checkWrite()
	if s.ID == "" {
		return emptyID("service")
	}
	old := tx.st.services[s.ID]
	if old == nil {
		return notFound("service", s.ID)
	}
	if s.Revision != old.Revision {
		return conflict("service", s.ID, s.Revision, old.Revision)
	}
	inTx := old.Revision == tx.rev
	// The version moves with the net change of the transaction: against the service as it
	// was before it, and a service the transaction created stays at 1.
	base := old
	if inTx {
		base, _ = tx.original(ServiceObject, s.ID, old).(*Service)
	}
	n := cloneService(s)
	n.Revision = tx.rev
	switch {
	case base == nil:
		n.Version = 1
	case equalServiceSpec(&n.Spec, &base.Spec):
		n.Spec = base.Spec
		n.Version = base.Version
	default:
		n.Version = base.Version + 1
	}
	tx.st.services[s.ID] = n
	tx.record(ServiceObject, s.ID, old, n, inTx)
	s.Version, s.Revision = n.Version, n.Revision
	tx.noteCaller(&s.Revision)
	return nil
}

func (tx *txn) DeleteService(id string, revision uint64) error {
	tx.checkWrite()
	old := tx.st.services[id]
	if old == nil {
		return notFound("service", id)
	}
	if revision != 0 && revision != old.Revision {
		return conflict("service", id, revision, old.Revision)
	}
	delete(tx.st.services, id)
	delete(tx.st.tasks.specs, id)
	tx.record(ServiceObject, id, old, nil, old.Revision == tx.rev)
	tx.deletes = true
	return nil
}

// Tasks.

func (tx *txn) Task(id string) (Task, error) {
	tx.check()
	r := tx.st.tasks.get(id)
	if r == nil {
		return Task{}, notFound("task", id)
	}
	return tx.taskValue(r), nil
}

func (tx *txn) Tasks() iter.Seq[Task] {
	return func(yield func(Task) bool) {
		tx.check()
		for _, s := range tx.st.tasks.byID {
			if !yield(tx.taskValue(s.rec)) {
				return
			}
		}
	}
}

func (tx *txn) TasksByService(serviceID string) iter.Seq[Task] {
	return tx.tasksIn(&tx.st.tasks.byService, serviceID, func(r *taskRec) string { return r.ServiceID })
}

func (tx *txn) TasksByNode(nodeID string) iter.Seq[Task] {
	return tx.tasksIn(&tx.st.tasks.byNode, nodeID, func(r *taskRec) string { return r.NodeID })
}

// tasksIn yields the tasks of one list of an index. In an Update, writes may move slots
// in the list while it is iterated: the iteration then runs over a copy of the list, and
// skips the tasks that have left it since.
func (tx *txn) tasksIn(ix *taskIndex, key string, keyOf func(*taskRec) string) iter.Seq[Task] {
	return func(yield func(Task) bool) {
		tx.check()
		list := ix.lists[key]
		if tx.write {
			list = slices.Clone(list)
		}
		for _, s := range list {
			if tx.write && (tx.st.tasks.byID[s.rec.ID] != s || keyOf(s.rec) != key) {
				continue
			}
			if !yield(tx.taskValue(s.rec)) {
				return
			}
		}
	}
}

func (tx *txn) CreateTask(t *Task) error {
	tx.checkWrite()
	if t.ID == "" {
		return emptyID("task")
	}
	if tx.st.tasks.get(t.ID) != nil {
		return exists("task", t.ID)
	}
	r := newTaskRec(t, tx.st.tasks.sharedSpec(t), nil)
	r.Revision = tx.rev
	tx.st.tasks.set(t.ID, nil, r)
	tx.record(TaskObject, t.ID, nil, r, tx.deletes)
	t.Revision = r.Revision
	tx.noteCaller(&t.Revision)
	return nil
}

func (tx *txn) UpdateTask(t *Task) error {
	tx.checkWrite()
	if t.ID == "" {
		return emptyID("task")
	}
	old := tx.st.tasks.get(t.ID)
	if old == nil {
		return notFound("task", t.ID)
	}
	if t.Revision != old.Revision {
		return conflict("task", t.ID, t.Revision, old.Revision)
	}
	spec := old.Spec
	if !equalContainerSpec(&t.Spec, spec) {
		spec = tx.st.tasks.sharedSpec(t)
	}
	r := newTaskRec(t, spec, old.Status.Addresses)
	r.Revision = tx.rev
	tx.st.tasks.set(t.ID, old, r)
	tx.record(TaskObject, t.ID, old, r, old.Revision == tx.rev)
	t.Revision = r.Revision
	tx.noteCaller(&t.Revision)
	return nil
}

func (tx *txn) DeleteTask(id string, revision uint64) error {
	tx.checkWrite()
	old := tx.st.tasks.get(id)
	if old == nil {
		return notFound("task", id)
	}
	if revision != 0 && revision != old.Revision {
		return conflict("task", id, revision, old.Revision)
	}
	tx.st.tasks.set(id, old, nil)
	tx.record(TaskObject, id, old, nil, old.Revision == tx.rev)
	tx.deletes = true
	return nil
}

// Nodes.

func (tx *txn) Node(id string) (Node, error) {
	tx.check()
	n := tx.st.nodes[id]
	if n == nil {
		return Node{}, notFound("node", id)
	}
	return tx.nodeValue(n), nil
}

// nodeState implements nodeReader.
func (tx *txn) nodeState(id string) (dao.Availability, dao.NodeState, bool) {
	tx.check()
	n := tx.st.nodes[id]
	if n == nil {
		return "", "", false
	}
	return n.Availability, n.Status.State, true
}

func (tx *txn) Nodes() iter.Seq[Node] {
	return func(yield func(Node) bool) {
		tx.check()
		for _, n := range tx.st.nodes {
			if !yield(tx.nodeValue(n)) {
				return
			}
		}
	}
}

func (tx *txn) CreateNode(n *Node) error {
	tx.checkWrite()
	if n.ID == "" {
		return emptyID("node")
	}
	if tx.st.nodes[n.ID] != nil {
		return exists("node", n.ID)
	}
	c := cloneNode(n, nil)
	c.Revision = tx.rev
	tx.st.nodes[n.ID] = c
	tx.record(NodeObject, n.ID, nil, c, tx.deletes)
	n.Revision = c.Revision
	tx.noteCaller(&n.Revision)
	return nil
}

func (tx *txn) UpdateNode(n *Node) error {
	tx.checkWrite()
	if n.ID == "" {
		return emptyID("node")
	}
	old := tx.st.nodes[n.ID]
	if old == nil {
		return notFound("node", n.ID)
	}
	if n.Revision != old.Revision {
		return conflict("node", n.ID, n.Revision, old.Revision)
	}
	c := cloneNode(n, old)
	c.Revision = tx.rev
	tx.st.nodes[n.ID] = c
	tx.record(NodeObject, n.ID, old, c, old.Revision == tx.rev)
	n.Revision = c.Revision
	tx.noteCaller(&n.Revision)
	return nil
}

func (tx *txn) DeleteNode(id string, revision uint64) error {
	tx.checkWrite()
	old := tx.st.nodes[id]
	if old == nil {
		return notFound("node", id)
	}
	if revision != 0 && revision != old.Revision {
		return conflict("node", id, revision, old.Revision)
	}
	delete(tx.st.nodes, id)
	tx.record(NodeObject, id, old, nil, old.Revision == tx.rev)
	tx.deletes = true
	return nil
}
