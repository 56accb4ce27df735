package clock

import (
	"context"
	"time"
)

// Clock tells the time and calls functions later. Every Dao type whose behaviour depends on
// time (heartbeat timeouts, backoff, retries, token lifetimes, monitor windows, timestamps)
// reads it from a Clock, so that a test or a simulation can move time itself.
// Implementations must be safe for simultaneous use.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f, once, on a goroutine of the clock's choosing, after d. f must not
	// block for long.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a call that AfterFunc arranged.
type Timer interface {
	// Stop cancels the call, and reports whether it did: false when the call has been made
	// or stopped already.
	Stop() bool
}

// System returns the real clock: time.Now and time.AfterFunc, which calls f on a goroutine
// of its own.
func System() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Sleep waits on c for d, or until ctx ends, when it returns ctx's error. A d of 0 or less
// returns at once, with ctx's error if it has ended.
func Sleep(ctx context.Context, c Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	done := make(chan struct{})
	t := c.AfterFunc(d, func() { close(done) })
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	}
}
