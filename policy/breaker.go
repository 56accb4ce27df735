package policy

import (
	"fmt"
	"strconv"
	"sync"
	"time"
)

// BreakerState is the state of a Breaker.
type BreakerState int

// Breaker states.
const (
	// BreakerClosed lets restarts through: the service is healthy, or failing now and then.
	BreakerClosed BreakerState = iota
	// BreakerOpen holds every restart back: the service failed too often.
	BreakerOpen
	// BreakerHalfOpen lets one trial restart through, and closes when it stays up.
	BreakerHalfOpen
)

func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half-open"
	}
	return "BreakerState(" + strconv.Itoa(int(s)) + ")"
}

// BreakerPolicy says when a Breaker opens and how it closes again. Zero fields take their
// defaults (see WithDefaults).
type BreakerPolicy struct {
	// Failures is the number of failures within Window that opens the breaker; default 5.
	Failures int
	// Window is the span Failures counts over; default 1m.
	Window time.Duration
	// OpenFor is how long the breaker stays open before it lets one trial restart through;
	// default 30s. Each failed trial doubles it, up to MaxOpenFor.
	OpenFor time.Duration
	// MaxOpenFor caps OpenFor; default 5m.
	MaxOpenFor time.Duration
	// HealthyAfter is how long the trial must run without a failure of the service to
	// close the breaker; default 10s, like dao.RestartPolicy's ResetAfter.
	HealthyAfter time.Duration
}

// Defaults of BreakerPolicy.
const (
	DefaultBreakerFailures     = 5
	DefaultBreakerWindow       = time.Minute
	DefaultBreakerOpenFor      = 30 * time.Second
	DefaultBreakerMaxOpenFor   = 5 * time.Minute
	DefaultBreakerHealthyAfter = 10 * time.Second
)

// WithDefaults returns p with its zero fields set to their defaults.
func (p BreakerPolicy) WithDefaults() BreakerPolicy {
	if p.Failures == 0 {
		p.Failures = DefaultBreakerFailures
	}
	if p.Window == 0 {
		p.Window = DefaultBreakerWindow
	}
	if p.OpenFor == 0 {
		p.OpenFor = DefaultBreakerOpenFor
	}
	if p.MaxOpenFor == 0 {
		p.MaxOpenFor = max(DefaultBreakerMaxOpenFor, p.OpenFor)
	}
	if p.HealthyAfter == 0 {
		p.HealthyAfter = DefaultBreakerHealthyAfter
	}
	return p
}

// Validate returns an error wrapping ErrInvalidPolicy when a field is negative, or
// MaxOpenFor is set below OpenFor.
func (p BreakerPolicy) Validate() error {
	switch {
	case p.Failures < 0:
		return fmt.Errorf("%w: breaker failures must be >= 0, got %d", ErrInvalidPolicy, p.Failures)
	case p.Window < 0 || p.OpenFor < 0 || p.MaxOpenFor < 0 || p.HealthyAfter < 0:
		return fmt.Errorf("%w: breaker durations must be >= 0", ErrInvalidPolicy)
	case p.MaxOpenFor > 0 && p.MaxOpenFor < p.OpenFor:
		return fmt.Errorf("%w: breaker maxOpenFor %s must not be below openFor %s", ErrInvalidPolicy, p.MaxOpenFor, p.OpenFor)
	}
	return nil
}

// Breaker is a circuit breaker for the restarts of one service's containers on a node: when
// the service fails Failures times within Window, wherever its containers are, it opens
// and holds every restart back for OpenFor; then it lets one trial restart through, and
// closes when the trial runs for HealthyAfter, or opens again for twice as long when it
// fails. It keeps a crash-looping service from burning a node's CPU and disk and from
// flooding the control plane with status, while each container's own RestartTracker
// handles the backoff of ordinary failures.
//
// Time is passed in; a Breaker is deterministic. It is safe for concurrent use, as the
// containers of a service are watched by several goroutines.
type Breaker struct {
	mu        sync.Mutex
	policy    BreakerPolicy
	state     BreakerState
	failures  []time.Time // within the window, while closed
	openUntil time.Time
	openFor   time.Duration
	trialAt   time.Time // when the trial of the half-open breaker was let through
	why       string    // why it opened
}

// NewBreaker returns a closed breaker following p (zero fields take their defaults).
func NewBreaker(p BreakerPolicy) *Breaker {
	p = p.WithDefaults()
	return &Breaker{policy: p, openFor: p.OpenFor}
}

// State returns the state of the breaker at now.
func (b *Breaker) State(now time.Time) BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(now)
	return b.state
}

// Allow reports whether a container of the service may restart at now. When it may not,
// retryAt says when to ask again. In the half-open state, the first call is let through
// as the trial, and the caller must restart then.
func (b *Breaker) Allow(now time.Time) (ok bool, retryAt time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(now)
	switch b.state {
	case BreakerOpen:
		return false, b.openUntil
	case BreakerHalfOpen:
		if b.trialAt.IsZero() {
			b.trialAt = now
			return true, time.Time{}
		}
		return false, b.trialAt.Add(b.policy.HealthyAfter)
	}
	return true, time.Time{}
}

// Failure records that a container of the service failed at now: it exited when it should
// have kept running, or was found unhealthy.
func (b *Breaker) Failure(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(now)
	switch b.state {
	case BreakerClosed:
		keep := b.failures[:0]
		for _, at := range b.failures {
			if now.Sub(at) < b.policy.Window {
				keep = append(keep, at)
			}
		}
		b.failures = append(keep, now)
		if len(b.failures) >= b.policy.Failures {
			b.open(now, b.policy.OpenFor, strconv.Itoa(len(b.failures))+" failures within "+b.policy.Window.String())
		}
	case BreakerHalfOpen:
		// Doubled without overflow: an OpenFor above half of time.Duration's range
		// doubled to a negative wait, and the breaker let every restart through.
		b.open(now, min(max(2*b.openFor, b.openFor), b.policy.MaxOpenFor), "trial failed")
	}
}

// Reason says in a few words why the breaker is in its state at now, for status messages:
// "circuit breaker open for 25s: 5 failures within 1m0s".
func (b *Breaker) Reason(now time.Time) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(now)
	switch b.state {
	case BreakerOpen:
		return "circuit breaker open for " + b.openUntil.Sub(now).String() + ": " + b.why
	case BreakerHalfOpen:
		if b.trialAt.IsZero() {
			return "circuit breaker half-open: next restart is the trial"
		}
		return "circuit breaker half-open: trial must run for " + b.policy.HealthyAfter.String()
	}
	return "circuit breaker closed"
}

func (b *Breaker) open(now time.Time, d time.Duration, why string) {
	b.state = BreakerOpen
	b.why = why
	b.openFor = d
	b.openUntil = now.Add(d)
	b.failures = b.failures[:0]
	b.trialAt = time.Time{}
}

// advance moves the breaker along with time: open to half-open when OpenFor has passed,
// half-open to closed when the trial has run for HealthyAfter.
func (b *Breaker) advance(now time.Time) {
	if b.state == BreakerOpen && !now.Before(b.openUntil) {
		b.state = BreakerHalfOpen
		b.trialAt = time.Time{}
	}
	if b.state == BreakerHalfOpen && !b.trialAt.IsZero() && now.Sub(b.trialAt) >= b.policy.HealthyAfter {
		b.state = BreakerClosed
		b.openFor = b.policy.OpenFor
		b.trialAt = time.Time{}
	}
}

// Breakers holds one Breaker per service, made on first use. It is safe for concurrent use.
type Breakers struct {
	mu     sync.Mutex
	policy BreakerPolicy
	m      map[string]*Breaker
}

// NewBreakers returns breakers that each follow p.
func NewBreakers(p BreakerPolicy) *Breakers {
	return &Breakers{policy: p, m: map[string]*Breaker{}}
}

// For returns the breaker of the service, a closed one the first time.
func (s *Breakers) For(serviceID string) *Breaker {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.m[serviceID]
	if b == nil {
		b = NewBreaker(s.policy)
		s.m[serviceID] = b
	}
	return b
}

// Forget drops the breaker of the service, as when the service is removed from the node.
func (s *Breakers) Forget(serviceID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, serviceID)
}
