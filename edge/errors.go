package edge

import (
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"google.golang.org/grpc/status"

	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/errclass"
)

// Errors of the edge package. Each is of one of containerd's error classes (package
// github.com/containerd/errdefs), named beside it, so that errdefs.IsNotFound(err) and the
// like answer for edge's errors as for containerd's; errors.Is matches the sentinel itself.
// Errors from containerd keep their errdefs class as well, so errdefs.IsNotFound and
// errdefs.IsUnavailable also work on what a Runtime passes on from containerd.
var (
	// ErrNotFound (errdefs.ErrNotFound): no container of ours has that ID.
	ErrNotFound = errclass.New(errdefs.ErrNotFound, "edge: container not found")
	// ErrAlreadyExists (errdefs.ErrAlreadyExists): a container with that ID exists.
	ErrAlreadyExists = errclass.New(errdefs.ErrAlreadyExists, "edge: container already exists")
	// ErrImageNotFound (errdefs.ErrNotFound): the spec's image is not in containerd's image
	// store, nor in the registry of the Runtime's puller.
	ErrImageNotFound = errclass.New(errdefs.ErrNotFound, "edge: image not found")
	// ErrRunning (errdefs.ErrFailedPrecondition): the operation needs a stopped container.
	ErrRunning = errclass.New(errdefs.ErrFailedPrecondition, "edge: container is running")
	// ErrNotOwned (errdefs.ErrPermissionDenied): the container exists but Dao did not create
	// it, so Dao leaves it alone.
	ErrNotOwned = errclass.New(errdefs.ErrPermissionDenied, "edge: container not managed by dao")
	// ErrClosed (errdefs.ErrFailedPrecondition): the Runtime or Agent was closed. It is not
	// of class Unavailable, which says that trying again may succeed: a closed Runtime or
	// Agent stays closed.
	ErrClosed = errclass.New(errdefs.ErrFailedPrecondition, "edge: closed")
	// ErrStaleRevision (errdefs.ErrConflict): an assignment older than the one the agent
	// has was refused.
	ErrStaleRevision = errclass.New(errdefs.ErrConflict, "edge: stale assignment revision")
	// ErrNoNetwork (errdefs.ErrFailedPrecondition): the spec publishes ports but the Runtime
	// has no network to publish them on.
	ErrNoNetwork = errclass.New(errdefs.ErrFailedPrecondition, "edge: publishing ports needs a Runtime with a network (edge.WithNetwork)")
	// ErrSlowSubscriber (errdefs.ErrResourceExhausted): a subscriber of the Runtime's events
	// fell too far behind (see Subscribe and WithSubscribeBuffer); its subscription ended.
	ErrSlowSubscriber = errclass.New(errdefs.ErrResourceExhausted, "edge: event subscriber fell too far behind")
	// ErrInvalidOption (dao.ErrInvalid, so errdefs.ErrInvalidArgument): an option was given
	// a bad value. The error names the option and says why.
	ErrInvalidOption = errclass.New(dao.ErrInvalid, "edge: invalid option")
)

// errInvalidID is returned for container IDs containerd would refuse; it is of class
// dao.ErrInvalid.
var errInvalidID = errclass.New(dao.ErrInvalid, "edge: invalid container id")

// errAgentRunning: Run was called while another Run of the same Agent was active.
var errAgentRunning = errclass.New(errdefs.ErrFailedPrecondition, "edge: agent is already running")

// optionError returns the error of option given a bad value: it names the option, says why,
// and is ErrInvalidOption (so dao.ErrInvalid, so errdefs.ErrInvalidArgument).
func optionError(option, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidOption, option, fmt.Sprintf(format, args...))
}

// wrap classifies a containerd error: not-found and already-exists become this package's
// sentinels, everything else is wrapped with what was being done. The containerd error stays in
// the chain (a gRPC status is made one of errdefs' classes first), so its errdefs class is
// visible too.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	err = native(err)
	what := fmt.Sprintf(format, args...)
	switch {
	case errdefs.IsNotFound(err):
		return fmt.Errorf("%s: %w: %w", what, ErrNotFound, err)
	case errdefs.IsAlreadyExists(err):
		return fmt.Errorf("%s: %w: %w", what, ErrAlreadyExists, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// native returns a gRPC status error, as containerd's raw services (TaskService) return
// them, as the errdefs class of its code; any other error as it is.
func native(err error) error {
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return errgrpc.ToNative(err)
	}
	return err
}

// IsUnavailable reports whether err means containerd could not be reached, so the operation
// may succeed when it is retried.
func IsUnavailable(err error) bool {
	return errdefs.IsUnavailable(err)
}
