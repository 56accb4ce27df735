package orchestrator

import (
	"strings"

	"github.com/containerd/errdefs"
	"github.com/hashicorp/go-multierror"

	"github.com/opendao/dao/internal/errclass"
)

// Errors of the orchestrator package. Match them with errors.Is: the errors returned wrap
// them with what was being done ("task web.1: revision 7, stored 9: orchestrator: revision
// conflict"). Each is of one of containerd's error classes (package
// github.com/containerd/errdefs), named below, so that errdefs.IsNotFound(err) and the
// like answer for them as for containerd's own errors. Invalid arguments, such as an
// empty ID or a bad option, wrap dao.ErrInvalid (errdefs.ErrInvalidArgument) instead.
var (
	// ErrNotFound (errdefs.ErrNotFound): no object of that type has that ID: a service, a
	// task or a node the store does not have.
	ErrNotFound = errclass.New(errdefs.ErrNotFound, "orchestrator: not found")
	// ErrExists (errdefs.ErrAlreadyExists): an object of that type already has that ID.
	ErrExists = errclass.New(errdefs.ErrAlreadyExists, "orchestrator: already exists")
	// ErrConflict (errdefs.ErrConflict): a write named a revision other than the stored
	// object's: someone changed it since it was read. Read it again, decide again, write
	// again.
	ErrConflict = errclass.New(errdefs.ErrConflict, "orchestrator: revision conflict")
	// ErrCompacted (errdefs.ErrOutOfRange): a watch asked for a revision older than the
	// store's history. List the objects again and watch from the revision of the list.
	ErrCompacted = errclass.New(errdefs.ErrOutOfRange, "orchestrator: revision compacted")
	// ErrSlowWatcher (errdefs.ErrResourceExhausted) ends a watch whose reader fell too far
	// behind the writers: its buffer (WithWatchBuffer) is used up. List the objects again
	// and watch from the revision of the list.
	ErrSlowWatcher = errclass.New(errdefs.ErrResourceExhausted, "orchestrator: watcher fell too far behind")
	// ErrCorrupt (errdefs.ErrDataLoss): a store's file is damaged: it is not a store, its
	// structure is broken (truncated, overwritten), or one of its records does not decode.
	// OpenBoltStore wraps it with the file's path and what is wrong ("page 7: element 3
	// points to page 9000, past the end of the file"); a record that does not decode is a
	// *RecordError.
	ErrCorrupt = errclass.New(errdefs.ErrDataLoss, "orchestrator: store file corrupt")
	// ErrUnavailable (errdefs.ErrUnavailable): the store could not reach its backend (an
	// EtcdStore whose etcd cluster has no quorum it can reach). Try again later; a write
	// that failed so may have been committed, and reads show it once the store is back.
	ErrUnavailable = errclass.New(errdefs.ErrUnavailable, "orchestrator: store unavailable")
	// ErrFenced (errdefs.ErrFailedPrecondition): a fenced write (EtcdStore.Fenced) was
	// refused because its fence no longer holds: the writer lost the leadership it was
	// fenced on. Nothing was written.
	ErrFenced = errclass.New(errdefs.ErrFailedPrecondition, "orchestrator: write fenced off: no longer the leader")
	// ErrTxnTooLarge (errdefs.ErrResourceExhausted): a transaction wrote more than the store
	// commits at once (EtcdStore.TxnLimit, or etcd's request size). Nothing was written;
	// write it in smaller transactions.
	ErrTxnTooLarge = errclass.New(errdefs.ErrResourceExhausted, "orchestrator: transaction too large for the store")
	// ErrNoLeader (errdefs.ErrNotFound): no control-plane replica leads now (see
	// EtcdStore.Leader).
	ErrNoLeader = errclass.New(errdefs.ErrNotFound, "orchestrator: no leader")
	// ErrClosed (errdefs.ErrFailedPrecondition): the Store was closed (Store.Close): every
	// later View, Update and Watch of it fails with it, every watch of it ends with it, and
	// so does the Run of an Orchestrator over it. It is about the store only: an
	// Orchestrator itself is not closed (its Run returns when its context is done).
	ErrClosed = errclass.New(errdefs.ErrFailedPrecondition, "orchestrator: store closed")
	// ErrAlreadyRunning (errdefs.ErrFailedPrecondition): Run was called while another Run
	// of the same Orchestrator was running.
	ErrAlreadyRunning = errclass.New(errdefs.ErrFailedPrecondition, "orchestrator: already running")
	// ErrNoPreviousSpec (errdefs.ErrFailedPrecondition): a rollback was asked of a service
	// that has no previous spec.
	ErrNoPreviousSpec = errclass.New(errdefs.ErrFailedPrecondition, "orchestrator: no previous spec to roll back to")
	// ErrUpdateFailed (errdefs.ErrAborted): the rolling update Deploy waited for paused,
	// was rolled back, or was replaced by another update before it finished. Deploy's
	// error is an *UpdateError, which says which.
	ErrUpdateFailed = errclass.New(errdefs.ErrAborted, "orchestrator: rolling update did not complete")
	// ErrRolledBack (errdefs.ErrAborted): the rolling update Deploy waited for failed and
	// was rolled back, and the rollback completed: every task runs the previous spec
	// again. It comes with ErrUpdateFailed, in an *UpdateError.
	ErrRolledBack = errclass.New(errdefs.ErrAborted, "orchestrator: rolling update rolled back")
	// ErrUpdatePaused (errdefs.ErrFailedPrecondition): the rolling update Deploy waited
	// for, or its rollback, paused: the service is left as it is for a person to look at
	// (UpdateService or RollbackService goes on from there). It comes with
	// ErrUpdateFailed, in an *UpdateError.
	ErrUpdatePaused = errclass.New(errdefs.ErrFailedPrecondition, "orchestrator: rolling update paused")
)

// joinErrors collects the errors that are not nil into one that errors.Is and errors.As
// see each of (a *multierror.Error), whose text is theirs joined with "; ". It returns
// nil when every one is nil, and the error itself when only one is not.
func joinErrors(errs ...error) error {
	var m multierror.Error
	for _, err := range errs {
		if err != nil {
			m.Errors = append(m.Errors, err)
		}
	}
	switch len(m.Errors) {
	case 0:
		return nil
	case 1:
		return m.Errors[0]
	}
	m.ErrorFormat = func(errs []error) string {
		words := make([]string, len(errs))
		for i, err := range errs {
			words[i] = err.Error()
		}
		return strings.Join(words, "; ")
	}
	return &m
}
