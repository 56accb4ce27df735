package orchestrator

import (
	"context"
	"iter"
)

// Store keeps the services, tasks and nodes of a cluster, at revisions, and tells watchers
// of every change. It is the orchestrator's only shared state: its loops read it, write it
// in transactions and react to its events.
//
// # Revisions
//
// The store has a revision, a number that starts at 0 and goes up by one with each
// transaction that writes; it never goes down, not even across a restart of a store that
// keeps its data. Every object carries the revision of its last write (its Revision
// field), and every write of an existing object names the revision it read: a write
// against a newer object fails with ErrConflict (optimistic concurrency). The usual loop
// is read, decide, write, and on ErrConflict read again.
//
// # Copies
//
// Values cross the store's boundary as deep copies, in both directions: a write copies
// what it is given (slices, maps and pointers included) and later changes to the caller's
// value do not reach the store; a read, an iteration and an event give the caller its own
// copy, which it may change freely (unless the context is from SharedReads: then tasks
// and nodes share the stored objects' slices and maps, only to be read). Write methods take pointers only to set the fields
// the store owns (Revision, and a service's Version) on the caller's value. Empty slices
// and maps are stored, and read back, as nil.
//
// Inside the store, objects are immutable and share what they can (a task's container
// spec with the other tasks of its service version), so memory stays low however many
// copies are made on the way out.
//
// # List, then watch
//
// To follow the store without missing or repeating a change, list in a View, note
// tx.Revision(), and watch from the next revision:
//
//	var rev uint64
//	err := s.View(ctx, func(tx orchestrator.ReadTx) error {
//		rev = tx.Revision()
//		for t := range tx.Tasks() {
//			// ...
//		}
//		return nil
//	})
//	events, err := s.Watch(ctx, rev+1)
//
// When the watch ends with ErrSlowWatcher, or Watch fails with ErrCompacted, do it again.
//
// Implementations are safe for simultaneous use. The memory store and the bbolt store of
// this package satisfy it, and the conformance tests of package storetest hold any other
// implementation to the same contract.
type Store interface {
	// View calls fn with a read-only transaction that sees one consistent state of the
	// store, and returns fn's error. Writers wait while fn runs, so keep it short. fn must
	// not call View or Update of the same store, nor keep tx, or anything it iterates,
	// after it returns. ctx is checked before fn is called; fn is not interrupted.
	View(ctx context.Context, fn func(tx ReadTx) error) error

	// Update calls fn with a read-write transaction, exactly once, and commits what it
	// wrote if it returns nil: all the writes, at one new revision, or none of them. If fn
	// returns an error (or panics), nothing it wrote is kept and Update returns the error
	// (or panics again). A transaction that writes nothing leaves the revision as it was.
	//
	// cause says which loop or policy writes, and why ("scheduler", "reconciler: scale web
	// to 5"); every event of the transaction carries it.
	//
	// Transactions run one at a time, so fn reads a state that no one else changes while it
	// runs, and sees its own writes. It must not call View or Update of the same store, nor
	// keep tx after it returns. ctx bounds the wait for the turn to write; neither fn nor
	// the commit is interrupted by it.
	Update(ctx context.Context, cause string, fn func(tx Tx) error) error

	// Watch returns a channel of the events of every change at fromRevision and after, in
	// revision order, that pass all the filters. fromRevision 0 means from now on: changes
	// committed after Watch returns.
	//
	// A watch from a past revision first replays the changes from there, from the store's
	// history; if they are no longer all in it, Watch fails with ErrCompacted. Then it goes
	// on with live changes. A fromRevision beyond the current revision waits for it.
	//
	// Writers never wait for watchers: each watch buffers the events its reader has not
	// taken yet. A reader that falls too far behind (see WithWatchBuffer) gets a last event
	// with Err set to ErrSlowWatcher, and the channel is closed; so does every watch, with
	// ErrClosed, when the store is closed. When ctx is done the channel is closed with no
	// such event. Each watch runs one goroutine, which ends when its channel is closed.
	Watch(ctx context.Context, fromRevision uint64, filters ...WatchFilter) (<-chan Event, error)

	// ID names the store's data, for dao.Assignment's Epoch: it stays the same across
	// reopenings of a store that keeps its data (so its revisions keep going up) and differs
	// between stores whose revisions start over.
	ID() string

	// Close ends every watch, waits for a running Update to finish, and releases what the
	// store holds. Every later call fails with ErrClosed. Close may be called more than
	// once.
	Close() error
}

// TxnLimiter is implemented by a store that commits at most TxnLimit objects in one
// transaction (EtcdStore: etcd bounds a request). Update with more fails with
// ErrTxnTooLarge and writes nothing, as does one whose objects are too big together; a
// writer with more to write writes it in several transactions. The memory and bbolt
// stores have no limit.
type TxnLimiter interface {
	TxnLimit() int
}

// txnLimit returns the most objects a transaction of s writes, or 0 for no limit.
func txnLimit(s Store) int {
	if l, ok := s.(TxnLimiter); ok {
		return max(1, l.TxnLimit())
	}
	return 0
}

// batches returns the bounds [lo, hi) of the transactions that write n objects, at most
// limit (0: no limit) in each.
func batches(n, limit int) [][2]int {
	if limit <= 0 || n <= limit {
		return [][2]int{{0, n}}
	}
	var out [][2]int
	for lo := 0; lo < n; lo += limit {
		out = append(out, [2]int{lo, min(n, lo+limit)})
	}
	return out
}

// ReadTx reads one consistent state of a store. Reads return deep copies (see Store), and
// fail with ErrNotFound when no object has the ID.
//
// The iterators yield each matching object once, in no particular order, without
// building a list: listing a million tasks costs a copy of one task at a time, and
// listing the tasks of a node or a service costs only theirs. In an Update, they see the
// transaction's earlier writes; writes made during the iteration may or may not be seen
// by it, as with a Go map. An implementation whose reads can fail ends the iteration
// early and makes View or Update return the error.
//
// A ReadTx is only valid inside the function it was given to, and only on that goroutine.
type ReadTx interface {
	// Revision returns the revision of the state the transaction reads: the store's
	// revision in a View, and the revision before the transaction's own writes in an
	// Update (they get Revision()+1).
	Revision() uint64

	Service(id string) (Service, error)
	Services() iter.Seq[Service]

	Task(id string) (Task, error)
	Tasks() iter.Seq[Task]
	// TasksByService yields the tasks whose ServiceID is serviceID.
	TasksByService(serviceID string) iter.Seq[Task]
	// TasksByNode yields the tasks whose NodeID is nodeID. TasksByNode("") yields the
	// tasks on no node, such as those waiting to be scheduled.
	TasksByNode(nodeID string) iter.Seq[Task]

	Node(id string) (Node, error)
	Nodes() iter.Seq[Node]
}

// Tx reads and writes a store in an Update. Every write of a transaction gets the
// revision Revision()+1, which the write methods set on the caller's value when they
// succeed.
//
// The store checks IDs (an empty one wraps dao.ErrInvalid), existence and revisions; it
// does not validate specs, which is the job of the code that admits them (see
// Service.Validate and dao.Task.Validate).
//
// A failed write changes nothing, and the transaction may go on: the function given to
// Update decides whether the error ends it.
type Tx interface {
	ReadTx

	// CreateService adds a service, with Version 1. It fails with ErrExists when a service
	// has the ID. The Revision and Version the caller set are ignored, and replaced.
	CreateService(s *Service) error
	// UpdateService replaces the service that has s.ID. It fails with ErrNotFound when there
	// is none, and with ErrConflict when s.Revision is not that of the stored service. The
	// store sets Version: one more than the stored one when Spec changed (compared with
	// the state before the transaction), the same otherwise.
	UpdateService(s *Service) error
	// DeleteService removes the service with this ID. When revision is not 0, it must be
	// that of the stored service, or the delete fails with ErrConflict. It fails with
	// ErrNotFound when there is none. The service's tasks are not deleted.
	DeleteService(id string, revision uint64) error

	// CreateTask adds a task. It fails with ErrExists when a task has the ID.
	CreateTask(t *Task) error
	// UpdateTask replaces the task that has t.ID, as UpdateService does.
	UpdateTask(t *Task) error
	// DeleteTask removes the task with this ID, as DeleteService does.
	DeleteTask(id string, revision uint64) error

	// CreateNode adds a node. It fails with ErrExists when a node has the ID.
	CreateNode(n *Node) error
	// UpdateNode replaces the node that has n.ID, as UpdateService does.
	UpdateNode(n *Node) error
	// DeleteNode removes the node with this ID, as DeleteService does. Its tasks are not
	// deleted.
	DeleteNode(id string, revision uint64) error
}
