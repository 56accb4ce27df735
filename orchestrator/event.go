package orchestrator

import (
	"fmt"
	"slices"
)

// EventKind says what happened to an object.
type EventKind uint8

// Event kinds. The zero value is no kind: the event that ends a watch with an error.
const (
	EventCreated EventKind = iota + 1
	EventUpdated
	EventDeleted
)

var eventKindNames = [...]string{"", "created", "updated", "deleted"}

func (k EventKind) String() string {
	if int(k) < len(eventKindNames) && k != 0 {
		return eventKindNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// ObjectType names a type of object in the store.
type ObjectType uint8

// Object types.
const (
	ServiceObject ObjectType = iota + 1
	TaskObject
	NodeObject
)

var objectTypeNames = [...]string{"", "service", "task", "node"}

func (t ObjectType) String() string {
	if int(t) < len(objectTypeNames) && t != 0 {
		return objectTypeNames[t]
	}
	return fmt.Sprintf("ObjectType(%d)", int(t))
}

// Event is one change of one object, as a watch delivers it.
//
// A transaction changes the store at one revision, and each object it wrote gives one
// event with that revision: the net change of the transaction (a task created and then
// updated in one transaction gives one created event with its final state; created and
// deleted gives none). The events of a transaction come in the order the transaction
// first wrote each object; revisions never go down along a watch.
//
// The objects in an event are the watcher's own copies.
type Event struct {
	// Revision is the revision of the transaction that made the change.
	Revision uint64
	Kind     EventKind
	Type     ObjectType
	// Cause is what the writer gave Update: which loop or policy made the change, and why.
	Cause string

	// By Type, one of Service, Task and Node is set: the object after the change, or as it
	// was when it was deleted. Its Revision is that of its last write, which for a deleted
	// object is older than the event's. For an update, the matching Prev field holds the
	// object as it was before the transaction; it is nil otherwise.
	Service, PrevService *Service
	Task, PrevTask       *Task
	Node, PrevNode       *Node

	// Err is set, and nothing else is, on the last event of a watch that the store ended:
	// ErrSlowWatcher when the reader fell behind, ErrClosed when the store was closed. The
	// channel is closed after it. A watch ended by its context gets no such event.
	Err error
}

// ID returns the ID of the event's object, or "" for an error event.
func (e *Event) ID() string {
	switch {
	case e.Service != nil:
		return e.Service.ID
	case e.Task != nil:
		return e.Task.ID
	case e.Node != nil:
		return e.Node.ID
	}
	return ""
}

// WatchFilter selects the events a watch delivers. Build filters with WatchTypes, WatchKinds,
// WatchService, WatchNode and WatchFunc; a watch given several delivers the events that
// pass every one. The zero WatchFilter passes every event.
type WatchFilter struct {
	// raw runs on the store's own event, before it is copied for the watcher. Only the
	// package's filters set it, and they do not modify the event.
	raw func(*logEvent) bool
	// user runs on the watcher's copy.
	user func(Event) bool
	// internal, set only by the orchestrator on its own watch (watchInternal): the events
	// share the store's immutable objects' specs, labels and lists instead of copying them,
	// and the watch is never ended for falling behind.
	internal bool
}

// watchInternal is the filter of the orchestrator's own watch of its store. Its reader
// only reads the events, so they need not be deep copies (a million tasks starting make
// millions of events, and each copy of a task copies its spec). And it must not be ended
// for falling behind: it would list the whole store again, which costs far more than the
// events it missed, and falls further behind while it does. What it has not read stays in
// memory until it does.
func watchInternal() WatchFilter { return WatchFilter{internal: true} }

// WatchTypes passes the events of objects of the given types.
func WatchTypes(types ...ObjectType) WatchFilter {
	types = slices.Clone(types)
	return WatchFilter{raw: func(e *logEvent) bool { return slices.Contains(types, e.typ) }}
}

// WatchKinds passes the events of the given kinds.
func WatchKinds(kinds ...EventKind) WatchFilter {
	kinds = slices.Clone(kinds)
	return WatchFilter{raw: func(e *logEvent) bool { return slices.Contains(kinds, e.kind) }}
}

// WatchService passes the events of the service with this ID and of its tasks: tasks whose
// ServiceID is id after the change or was before it.
func WatchService(id string) WatchFilter {
	return WatchFilter{raw: func(e *logEvent) bool {
		switch e.typ {
		case ServiceObject:
			return e.obj.(*Service).ID == id
		case TaskObject:
			if e.obj.(*taskRec).ServiceID == id {
				return true
			}
			prev, _ := e.prev.(*taskRec)
			return prev != nil && prev.ServiceID == id
		}
		return false
	}}
}

// WatchNode passes the events of the node with this ID and of the tasks on it: tasks whose
// NodeID is id after the change or was before it, so that a task moved off the node is
// seen. WatchNode("") passes the events of tasks that are on no node, or were, such as
// tasks waiting to be scheduled.
func WatchNode(id string) WatchFilter {
	return WatchFilter{raw: func(e *logEvent) bool {
		switch e.typ {
		case NodeObject:
			return e.obj.(*Node).ID == id
		case TaskObject:
			if e.obj.(*taskRec).NodeID == id {
				return true
			}
			prev, _ := e.prev.(*taskRec)
			return prev != nil && prev.NodeID == id
		}
		return false
	}}
}

// WatchFunc passes the events for which f returns true. f runs on the watch's goroutine,
// with the watcher's own copy of the event; it must not block for long, as the watch waits
// for it. A nil f passes every event.
func WatchFunc(f func(Event) bool) WatchFilter {
	return WatchFilter{user: f}
}
