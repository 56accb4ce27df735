package simnode

import (
	"github.com/containerd/errdefs"

	"github.com/opendao/dao/internal/errclass"
)

// Errors of the simnode package, each of one of containerd's error classes (package
// github.com/containerd/errdefs), named below. Invalid arguments and options wrap
// dao.ErrInvalid (errdefs.ErrInvalidArgument).
var (
	// ErrStaleRevision (errdefs.ErrConflict): an assignment older than the one the node
	// has was refused.
	ErrStaleRevision = errclass.New(errdefs.ErrConflict, "simnode: stale assignment revision")
	// ErrUnreachable (errdefs.ErrUnavailable): the node is down or disconnected, so the
	// control plane cannot reach it; it may come back (Node.Up).
	ErrUnreachable = errclass.New(errdefs.ErrUnavailable, "simnode: node unreachable")
	// ErrUnknownTask (errdefs.ErrNotFound): the node has no running task with that ID.
	ErrUnknownTask = errclass.New(errdefs.ErrNotFound, "simnode: no such running task")
	// ErrClosed (errdefs.ErrFailedPrecondition): the Node was closed (Node.Close, or the
	// Cluster's Close): it takes no more assignments.
	ErrClosed = errclass.New(errdefs.ErrFailedPrecondition, "simnode: node closed")
)
