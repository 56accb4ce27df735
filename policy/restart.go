package policy

import (
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/opendao/dao"
)

// baseDelay is the first non-zero wait when a restart policy sets no InitialDelay.
const baseDelay = 100 * time.Millisecond

// RestartDecision is what a RestartTracker decided about one exit.
type RestartDecision struct {
	// Restart is true when the container should be started again after Delay.
	Restart bool
	// Delay is the wait before the restart.
	Delay time.Duration
	// Reason says why, in a few words: "restart in 400ms", "exit code 0 with restart
	// condition on-failure", "gave up after 5 restarts within 1m0s".
	Reason string
	// Attempt is the number of this restart, from 1, when Restart is true.
	Attempt int
}

// RestartTracker decides when one container restarts, following a dao.RestartPolicy: fast
// first retry, exponential backoff with jitter, reset after the container ran for ResetAfter,
// and a limit of MaxAttempts within Window. Time is passed in, so it is deterministic under a
// test clock and a seeded random source. It is not safe for concurrent use.
//
// The edge agent keeps one per task: it calls Started each time the container starts and
// Exited each time it exits, and restarts it after the decision's Delay. To stop a service
// whose containers crash everywhere at once, put a Breaker in front of the restarts.
type RestartTracker struct {
	policy   dao.RestartPolicy
	rnd      *rand.Rand
	started  time.Time
	streak   int         // consecutive restarts without a healthy run of ResetAfter
	restarts []time.Time // restart times within the window
	total    int
}

// NewRestartTracker returns a tracker for p (zero fields take their defaults). rnd supplies
// the jitter; nil means a randomly seeded source.
func NewRestartTracker(p dao.RestartPolicy, rnd *rand.Rand) *RestartTracker {
	if rnd == nil {
		rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return &RestartTracker{policy: p.WithDefaults(), rnd: rnd}
}

// Started records that the container started at now. The run that ends at the next Exited
// is measured from it.
func (t *RestartTracker) Started(now time.Time) { t.started = now }

// Restarts returns the number of restarts decided so far.
func (t *RestartTracker) Restarts() int { return t.total }

// Exited records that the container exited at now with exitCode and decides whether and
// when it restarts. A decision to restart counts as an attempt.
func (t *RestartTracker) Exited(now time.Time, exitCode int) RestartDecision {
	p := t.policy
	// A run is measured from its own start: an exit without a Started since the last
	// exit (the container failed to start again) is not a healthy run.
	started := t.started
	t.started = time.Time{}
	switch {
	case p.Condition == dao.RestartNever:
		return RestartDecision{Reason: "restart condition is never"}
	case p.Condition == dao.RestartOnFailure && exitCode == 0:
		return RestartDecision{Reason: "exit code 0 with restart condition on-failure"}
	}
	if !started.IsZero() && now.Sub(started) >= p.ResetAfter.Std() {
		t.streak = 0
	}
	if p.Window > 0 {
		keep := t.restarts[:0]
		for _, at := range t.restarts {
			if now.Sub(at) < p.Window.Std() {
				keep = append(keep, at)
			}
		}
		t.restarts = keep
	}
	if p.MaxAttempts > 0 && len(t.restarts) >= p.MaxAttempts {
		reason := "gave up after " + strconv.Itoa(len(t.restarts)) + " restarts"
		if p.Window > 0 {
			reason += " within " + p.Window.String()
		}
		return RestartDecision{Reason: reason}
	}
	d := t.delay(t.streak)
	t.streak++
	t.total++
	if p.MaxAttempts > 0 {
		// Only a limit needs the times; without one, the list would grow forever.
		t.restarts = append(t.restarts, now)
	}
	return RestartDecision{Restart: true, Delay: d, Attempt: t.total, Reason: "restart in " + d.String()}
}

// delay returns the wait before restart number streak+1 of a run of quick exits: 0 or
// InitialDelay first, then max(InitialDelay, 100ms) times Multiplier per restart, capped at
// MaxDelay, spread up by up to Jitter of itself. A wait that the spread would take past
// MaxDelay is spread down from MaxDelay instead, by up to Jitter of it, so that containers
// that all reached the cap (after an outage, say) do not restart in lockstep.
func (t *RestartTracker) delay(streak int) time.Duration {
	p := t.policy
	ceiling := max(p.MaxDelay.Std(), p.InitialDelay.Std())
	d := p.InitialDelay.Std()
	if streak > 0 {
		base := max(d, baseDelay)
		f := float64(base) * math.Pow(p.Multiplier, float64(streak))
		if f >= float64(ceiling) || math.IsNaN(f) {
			d = ceiling
		} else {
			d = time.Duration(f)
		}
	}
	d = min(d, ceiling)
	if d > 0 && p.Jitter > 0 {
		r := t.rnd.Float64()
		if spread := time.Duration(float64(d) * p.Jitter * r); d <= ceiling-spread {
			d += spread
		} else {
			d = ceiling - time.Duration(float64(ceiling)*p.Jitter*r)
		}
	}
	return d
}
