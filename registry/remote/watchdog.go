package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// SpeedLimit is the slowest a response body may arrive, as curl's --speed-limit and
// --speed-time say it: a body that brings fewer than BytesPerSecond bytes a second, on
// average over Period, or nothing at all for Period, is cut. Only the time the client spends
// waiting for the body counts, not the time its reader spends elsewhere (writing into
// containerd, say). A cut body is asked for again where it stopped (a blob) or whole (a
// manifest, an index, a list), as the retry policy allows, and then from the next mirror;
// a cut counts as an attempt that made no progress, however many bytes it brought.
type SpeedLimit struct {
	// BytesPerSecond is the least average speed; 0 cuts only a body that brings nothing
	// for Period.
	BytesPerSecond int64
	// Period is the time over which the speed is measured; 0 turns the limit off, leaving
	// a stuck body to the caller's context.
	Period time.Duration
}

// DefaultSpeedLimit returns the limit NewClient uses: 1 KiB/s over 30 seconds, which only a
// stuck or hopeless connection fails (a 100 MiB layer at that speed takes more than a day).
func DefaultSpeedLimit() SpeedLimit {
	return SpeedLimit{BytesPerSecond: 1 << 10, Period: 30 * time.Second}
}

func (l SpeedLimit) check() error {
	if l.BytesPerSecond < 0 || l.Period < 0 {
		return fmt.Errorf("%w: speed limit %d bytes/s over %v: want neither negative", ErrInvalidOption, l.BytesPerSecond, l.Period)
	}
	return nil
}

// least is the fewest bytes a period must bring: at least one.
func (l SpeedLimit) least() int64 {
	return max(1, int64(float64(l.BytesPerSecond)*l.Period.Seconds()))
}

// WithSpeedLimit sets how slow a response body may be before the client cuts it and tries
// again (see SpeedLimit). It applies to every body the client reads: manifests, indexes,
// configs, blobs, tokens, tag lists and referrers. The default is DefaultSpeedLimit().
func WithSpeedLimit(l SpeedLimit) Option {
	return func(o *clientOptions) error {
		if err := l.check(); err != nil {
			return fmt.Errorf("WithSpeedLimit: %w", err)
		}
		o.speed = l
		return nil
	}
}

// errTooSlow is the error of a body that the watchdog cut. It is not permanent: the request
// may go better on a new connection, or from another mirror.
type errTooSlow struct {
	limit SpeedLimit
	got   int64 // bytes in the period that ended the body
}

func (e *errTooSlow) Error() string {
	if e.got == 0 {
		return fmt.Sprintf("no byte for %v", e.limit.Period)
	}
	return fmt.Sprintf("%d bytes in %v, less than the %d bytes/s allowed", e.got, e.limit.Period, e.limit.BytesPerSecond)
}

// tooSlow reports whether err is a watchdog's cut.
func tooSlow(err error) bool {
	var e *errTooSlow
	return errors.As(err, &e)
}

// watchedBody is a response body under a watchdog: when the time spent in Read over a
// period reaches the limit's Period with fewer bytes than the limit asks, it cancels the
// request (which ends a Read blocked on the connection) and fails every Read after.
type watchedBody struct {
	io.ReadCloser
	limit  SpeedLimit
	cancel context.CancelFunc

	mu        sync.Mutex
	bytes     int64         // bytes of the current period
	used      time.Duration // time in Read of the current period, before the Read under way
	readStart time.Time     // start of the Read under way; zero if none
	timer     *time.Timer
	cut       error
}

// watch puts body under the limit's watchdog; cancel cancels the request. A zero Period
// leaves the body as it is.
func watch(body io.ReadCloser, limit SpeedLimit, cancel context.CancelFunc) io.ReadCloser {
	if limit.Period <= 0 {
		return body
	}
	return &watchedBody{ReadCloser: body, limit: limit, cancel: cancel}
}

func (b *watchedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.cut != nil {
		b.mu.Unlock()
		return 0, b.cut
	}
	b.readStart = time.Now()
	left := b.limit.Period - b.used
	if b.timer == nil {
		b.timer = time.AfterFunc(left, b.expire)
	} else {
		b.timer.Reset(left)
	}
	b.mu.Unlock()

	n, err := b.ReadCloser.Read(p)

	b.mu.Lock()
	defer b.mu.Unlock()
	b.timer.Stop()
	if b.cut != nil { // expired during the Read: what it returns is the cancellation's
		return 0, b.cut
	}
	b.used += time.Since(b.readStart)
	b.readStart = time.Time{}
	b.bytes += int64(n)
	if b.used >= b.limit.Period {
		if b.bytes < b.limit.least() && err == nil {
			b.cutLocked()
			return n, nil // the next Read fails
		}
		b.used, b.bytes = 0, 0
	}
	return n, err
}

// expire ends a period that ran out during a Read.
func (b *watchedBody) expire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.readStart.IsZero() || b.cut != nil {
		return
	}
	used := b.used + time.Since(b.readStart)
	if used < b.limit.Period { // a Reset raced this call
		return
	}
	if b.bytes < b.limit.least() {
		b.cutLocked()
		return
	}
	// The period brought enough; the Read under way starts the next one.
	b.used, b.bytes, b.readStart = 0, 0, time.Now()
	b.timer.Reset(b.limit.Period)
}

func (b *watchedBody) cutLocked() {
	b.cut = &errTooSlow{limit: b.limit, got: b.bytes}
	b.cancel()
}

func (b *watchedBody) Close() error {
	b.mu.Lock()
	if b.timer != nil {
		b.timer.Stop()
	}
	b.mu.Unlock()
	return b.ReadCloser.Close()
}
