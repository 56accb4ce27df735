package orchestrator

import "errors"

// Errors of the orchestrator package. Match them with errors.Is: the errors returned wrap
// them with what was being done ("task web.1: revision 7, stored 9: orchestrator: revision
// conflict"). Invalid arguments, such as an empty ID, wrap dao.ErrInvalid instead.
var (
	// ErrNotFound: no object of that type has that ID.
	ErrNotFound = errors.New("orchestrator: not found")
	// ErrExists: an object of that type already has that ID.
	ErrExists = errors.New("orchestrator: already exists")
	// ErrConflict: a write named a revision other than the stored object's: someone changed
	// it since it was read. Read it again, decide again, write again.
	ErrConflict = errors.New("orchestrator: revision conflict")
	// ErrCompacted: a watch asked for a revision older than the store's history. List the
	// objects again and watch from the revision of the list.
	ErrCompacted = errors.New("orchestrator: revision compacted")
	// ErrSlowWatcher ends a watch whose reader fell too far behind the writers. List the
	// objects again and watch from the revision of the list.
	ErrSlowWatcher = errors.New("orchestrator: watcher fell too far behind")
	// ErrCorrupt: a store's file is damaged: it is not a store, its structure is broken
	// (truncated, overwritten), or one of its records does not decode. OpenBoltStore
	// wraps it with the file's path and what is wrong ("page 7: element 3 points to page
	// 9000, past the end of the file"); a record that does not decode is a *RecordError.
	ErrCorrupt = errors.New("orchestrator: store file corrupt")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("orchestrator: store closed")
	// ErrRunning: Run was called while another Run of the same Orchestrator was running.
	ErrRunning = errors.New("orchestrator: already running")
	// ErrNoPreviousSpec: a rollback was asked of a service that has no previous spec.
	ErrNoPreviousSpec = errors.New("orchestrator: no previous spec to roll back to")
	// ErrUpdateFailed: the rolling update Deploy waited for paused, was rolled back, or was
	// replaced by another update before it finished. Deploy's error is an *UpdateError,
	// which says which.
	ErrUpdateFailed = errors.New("orchestrator: rolling update did not complete")
	// ErrRolledBack: the rolling update Deploy waited for failed and was rolled back, and
	// the rollback completed: every task runs the previous spec again. It comes with
	// ErrUpdateFailed, in an *UpdateError.
	ErrRolledBack = errors.New("orchestrator: rolling update rolled back")
	// ErrUpdatePaused: the rolling update Deploy waited for, or its rollback, paused: the
	// service is left as it is for a person to look at. It comes with ErrUpdateFailed, in
	// an *UpdateError.
	ErrUpdatePaused = errors.New("orchestrator: rolling update paused")
)
