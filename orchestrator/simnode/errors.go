package simnode

import "errors"

// Errors of the simnode package.
var (
	// ErrStaleRevision: an assignment older than the one the node has was refused.
	ErrStaleRevision = errors.New("simnode: stale assignment revision")
	// ErrUnreachable: the node is down or disconnected, so the control plane cannot reach it.
	ErrUnreachable = errors.New("simnode: node unreachable")
	// ErrUnknownTask: the node has no running task with that ID.
	ErrUnknownTask = errors.New("simnode: no such running task")
	// ErrClosed: the node was closed.
	ErrClosed = errors.New("simnode: node closed")
)
