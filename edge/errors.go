package edge

import (
	"errors"
	"fmt"

	"github.com/containerd/errdefs"
)

// Errors of the edge package. Errors from containerd keep their errdefs class as well, so
// errdefs.IsNotFound and errdefs.IsUnavailable also work on what Runtime returns.
var (
	// ErrNotFound: no container of ours has that ID.
	ErrNotFound = errors.New("edge: container not found")
	// ErrAlreadyExists: a container with that ID exists.
	ErrAlreadyExists = errors.New("edge: container already exists")
	// ErrImageNotFound: the spec's image is not in containerd's image store.
	ErrImageNotFound = errors.New("edge: image not found")
	// ErrRunning: the operation needs a stopped container.
	ErrRunning = errors.New("edge: container is running")
	// ErrNotOwned: the container exists but Dao did not create it, so Dao leaves it alone.
	ErrNotOwned = errors.New("edge: container not managed by dao")
	// ErrClosed: the Runtime or Agent was closed.
	ErrClosed = errors.New("edge: closed")
	// ErrStaleRevision: an assignment older than the one the agent has was refused.
	ErrStaleRevision = errors.New("edge: stale assignment revision")
)

// wrap classifies a containerd error: not-found and already-exists become this package's
// sentinels, everything else is wrapped with what was being done. The containerd error stays in
// the chain.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	what := fmt.Sprintf(format, args...)
	switch {
	case errdefs.IsNotFound(err):
		return fmt.Errorf("%s: %w: %w", what, ErrNotFound, err)
	case errdefs.IsAlreadyExists(err):
		return fmt.Errorf("%s: %w: %w", what, ErrAlreadyExists, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// IsUnavailable reports whether err means containerd could not be reached, so the operation
// may succeed when it is retried.
func IsUnavailable(err error) bool {
	return errdefs.IsUnavailable(err)
}
