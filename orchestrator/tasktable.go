package orchestrator

import (
	"slices"
	"time"

	"github.com/opendao/dao"
)

// The tasks of a store in memory: compact immutable records, and a table that finds them
// by ID, by service and by node. A store may hold millions of tasks, so both are built for
// size and for writes that cost the same however many there are.

// taskRec is a task as the store keeps it: the fields of a Task, with the container spec
// behind a pointer, so that the tasks of a service version share one spec, and a record
// takes 384 bytes instead of 704. Records are never changed once stored: a write stores a
// new one, and events and watchers hold on to old ones without locks.
//
// copy_test.go checks that a Task survives newTaskRec and value whole, so that a field
// added to dao.Task without its line here fails it.
type taskRec struct {
	ID             string
	ServiceID      string
	ServiceVersion uint64
	Slot           int
	NodeID         string
	Spec           *dao.ContainerSpec
	Restart        dao.RestartPolicy
	DesiredState   dao.TaskState
	Status         dao.TaskStatus
	CreatedAt      time.Time
	Revision       uint64
}

// newTaskRec copies t into a record with spec, which is t's spec or an equal stored one.
// The status's addresses are copied, or shared with likeAddrs, a stored list, when equal.
func newTaskRec(t *Task, spec *dao.ContainerSpec, likeAddrs []string) *taskRec {
	r := &taskRec{
		ID:             t.ID,
		ServiceID:      t.ServiceID,
		ServiceVersion: t.ServiceVersion,
		Slot:           t.Slot,
		NodeID:         t.NodeID,
		Spec:           spec,
		Restart:        t.Restart,
		DesiredState:   t.DesiredState,
		Status:         t.Status,
		CreatedAt:      t.CreatedAt,
		Revision:       t.Revision,
	}
	if likeAddrs != nil && slices.Equal(t.Status.Addresses, likeAddrs) {
		r.Status.Addresses = likeAddrs
	} else {
		r.Status.Addresses = cloneSlice(t.Status.Addresses)
	}
	return r
}

// value returns a deep copy of the task, for a reader.
func (r *taskRec) value() Task {
	t := r.shallow()
	t.Spec = cloneContainerSpec(r.Spec)
	t.Status.Addresses = cloneSlice(r.Status.Addresses)
	return t
}

// shallow returns the task with the record's slices, maps and pointers: only for the
// store's own reading, such as encoding it.
func (r *taskRec) shallow() Task {
	return Task{Task: dao.Task{
		ID:             r.ID,
		ServiceID:      r.ServiceID,
		ServiceVersion: r.ServiceVersion,
		Slot:           r.Slot,
		NodeID:         r.NodeID,
		Spec:           *r.Spec,
		Restart:        r.Restart,
		DesiredState:   r.DesiredState,
		Status:         r.Status,
		CreatedAt:      r.CreatedAt,
	}, Revision: r.Revision}
}

// taskSlot is a task's place in the table: its current record, and its positions in the
// index lists. Slots change (only under the store's write lock); records do not.
type taskSlot struct {
	rec             *taskRec
	svcPos, nodePos int32
}

// taskIndex lists the slots of the tasks that have each value of a key (a service ID, a
// node ID), in no order; a slot knows its position, so it leaves its list in constant
// time.
type taskIndex struct {
	lists map[string][]*taskSlot
	pos   func(*taskSlot) *int32
}

func (ix *taskIndex) add(key string, s *taskSlot) {
	l := ix.lists[key]
	*ix.pos(s) = int32(len(l))
	ix.lists[key] = append(l, s)
}

func (ix *taskIndex) remove(key string, s *taskSlot) {
	l := ix.lists[key]
	i, last := *ix.pos(s), len(l)-1
	if int(i) != last {
		l[i] = l[last]
		*ix.pos(l[i]) = i
	}
	l[last] = nil
	if last == 0 {
		delete(ix.lists, key)
		return
	}
	ix.lists[key] = l[:last]
}

// taskTable holds the tasks of a store by ID, by service and by node ("" holds the tasks
// on no node).
type taskTable struct {
	byID      map[string]*taskSlot
	byService taskIndex
	byNode    taskIndex
	// specs holds the latest stored spec of each service's tasks, which new tasks of the
	// service share when theirs is equal.
	specs map[string]*dao.ContainerSpec
}

// maxSpecs bounds taskTable.specs, which tasks of services the store does not know could
// grow.
const maxSpecs = 100_000

func newTaskTable() taskTable {
	return taskTable{
		byID:      map[string]*taskSlot{},
		byService: taskIndex{lists: map[string][]*taskSlot{}, pos: func(s *taskSlot) *int32 { return &s.svcPos }},
		byNode:    taskIndex{lists: map[string][]*taskSlot{}, pos: func(s *taskSlot) *int32 { return &s.nodePos }},
		specs:     map[string]*dao.ContainerSpec{},
	}
}

func (tt *taskTable) get(id string) *taskRec {
	if s := tt.byID[id]; s != nil {
		return s.rec
	}
	return nil
}

// sharedSpec returns the spec a new record of t may use: an equal stored one, or a copy
// of t's, which new tasks of its service then share.
func (tt *taskTable) sharedSpec(t *Task) *dao.ContainerSpec {
	if cur := tt.specs[t.ServiceID]; cur != nil && equalContainerSpec(cur, &t.Spec) {
		return cur
	}
	spec := cloneContainerSpec(&t.Spec)
	if len(tt.specs) >= maxSpecs {
		clear(tt.specs)
	}
	tt.specs[t.ServiceID] = &spec
	return &spec
}

// set replaces the task's record old (nil: none) with r (nil: none).
func (tt *taskTable) set(id string, old, r *taskRec) {
	switch {
	case old == nil && r == nil:
	case old == nil:
		s := &taskSlot{rec: r}
		tt.byID[id] = s
		tt.byService.add(r.ServiceID, s)
		tt.byNode.add(r.NodeID, s)
	case r == nil:
		s := tt.byID[id]
		delete(tt.byID, id)
		tt.byService.remove(old.ServiceID, s)
		tt.byNode.remove(old.NodeID, s)
	default:
		s := tt.byID[id]
		s.rec = r
		if old.ServiceID != r.ServiceID {
			tt.byService.remove(old.ServiceID, s)
			tt.byService.add(r.ServiceID, s)
		}
		if old.NodeID != r.NodeID {
			tt.byNode.remove(old.NodeID, s)
			tt.byNode.add(r.NodeID, s)
		}
	}
}
