package remote

import (
	"context"
	"fmt"
)

// resumer is the one policy by which both fetch engines (a download's chunks and a
// BlobStream) resume a blob after an answer broke or the watchdog cut it as too slow: an
// answer that brought bytes (and was not too slow) is resumed at once; one that brought
// none is resumed after the retry policy's backoff, and after MaxAttempts of those in a
// row on one endpoint, that endpoint is given up. The caller checks first that the error
// is not permanent (permanent), which resuming cannot fix.
type resumer struct {
	c        *Client
	failures int // answers in a row that broke without progress
}

// broke records an answer of host that broke with err at byte at, having brought bytes if
// progressed. It returns errGiveUp's wrapping of err when the endpoint is to be given up,
// the context's error if it ended during the backoff, and nil when the caller is to resume.
func (r *resumer) broke(ctx context.Context, host string, at int64, progressed bool, err error) error {
	if progressed && !tooSlow(err) {
		r.failures = 0
		return nil
	}
	r.failures++
	if r.failures >= r.c.opts.retry.MaxAttempts {
		return &givenUp{fmt.Errorf("connection to %s broke %d times in a row at byte %d: %w", host, r.failures, at, err)}
	}
	return r.c.sleep(ctx, r.failures, 0)
}

// reset starts counting again, for a new endpoint.
func (r *resumer) reset() { r.failures = 0 }

// givenUp is resumer.broke's error for an endpoint given up.
type givenUp struct{ err error }

func (e *givenUp) Error() string { return e.err.Error() }
func (e *givenUp) Unwrap() error { return e.err }
