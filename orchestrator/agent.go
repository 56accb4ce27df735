package orchestrator

import "github.com/opendao/dao"

// Assignment and TaskUpdate are the root package's, which edge uses too: the full set of
// tasks for one node at a revision, and a change of a task's status a node observed.
type (
	Assignment = dao.Assignment
	TaskUpdate = dao.TaskUpdate
)

// NodeAgent is what the orchestrator needs from a node: to be given its assignment. The
// node converges to it on its own (it starts what is missing, stops what is no longer
// assigned, restarts what exits as each task's restart policy says) and reports the
// status of its tasks through a function it was given when it was made, one TaskUpdate at
// a time, in order.
//
// Assign must not block for long and must not call back into the caller: the node works
// after it returns. It refuses an assignment with a lower revision than the one it has
// with an error, and takes the same revision with the same tasks again as a no-op, so
// that re-sending an assignment is harmless. It keeps no reference to a.Tasks.
//
// simnode.Node and edge.Agent implement it.
type NodeAgent interface {
	Assign(a Assignment) error
}

// AssignFunc adapts a function to a NodeAgent.
type AssignFunc func(Assignment) error

// Assign calls f(a).
func (f AssignFunc) Assign(a Assignment) error { return f(a) }
