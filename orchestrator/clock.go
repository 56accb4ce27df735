package orchestrator

import "time"

// Clock is the time the orchestrator lives in: heartbeat timeouts, grace periods, delays
// between update batches and monitor windows are all read from it and waited for with it.
// SystemClock is the real one; simnode.ManualClock (the same interface) lets tests and
// benchmarks move time themselves, so that a run is fast and repeatable.
type Clock interface {
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

// SystemClock returns the real clock: time.Now and time.AfterFunc.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
