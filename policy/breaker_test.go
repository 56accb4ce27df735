package policy

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestBreaker(t *testing.T) {
	t.Parallel()
	b := NewBreaker(BreakerPolicy{Failures: 3, Window: time.Minute, OpenFor: 10 * time.Second,
		MaxOpenFor: 25 * time.Second, HealthyAfter: 5 * time.Second})
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	type step struct {
		at      int // seconds after t0
		op      string
		ok      bool // for allow
		retryAt int  // for allow, when !ok
		state   BreakerState
	}
	steps := []step{
		{0, "fail", false, 0, BreakerClosed},
		{30, "fail", false, 0, BreakerClosed},
		{61, "fail", false, 0, BreakerClosed}, // the first failure left the window
		{62, "allow", true, 0, BreakerClosed},
		{65, "fail", false, 0, BreakerOpen}, // 3 within a minute
		{66, "allow", false, 75, BreakerOpen},
		{75, "allow", true, 0, BreakerHalfOpen}, // the trial
		{76, "allow", false, 80, BreakerHalfOpen},
		{77, "fail", false, 0, BreakerOpen}, // the trial failed: open for 20s
		{90, "allow", false, 97, BreakerOpen},
		{97, "allow", true, 0, BreakerHalfOpen},
		{99, "fail", false, 0, BreakerOpen}, // failed again: 25s, the maximum
		{123, "allow", false, 124, BreakerOpen},
		{124, "allow", true, 0, BreakerHalfOpen},
		{129, "state", false, 0, BreakerClosed}, // the trial ran for 5s
		{130, "fail", false, 0, BreakerClosed},
		{131, "fail", false, 0, BreakerClosed},
		{132, "fail", false, 0, BreakerOpen}, // open again, for the base 10s
		{141, "allow", false, 142, BreakerOpen},
	}
	for _, s := range steps {
		switch s.op {
		case "fail":
			b.Failure(at(s.at))
		case "allow":
			ok, retry := b.Allow(at(s.at))
			want := time.Time{}
			if !s.ok {
				want = at(s.retryAt)
			}
			if ok != s.ok || !retry.Equal(want) {
				t.Fatalf("t=%d Allow = %v, %v; want %v, %v", s.at, ok, retry.Sub(t0), s.ok, want.Sub(t0))
			}
		}
		if got := b.State(at(s.at)); got != s.state {
			t.Fatalf("t=%d after %s: state %v, want %v", s.at, s.op, got, s.state)
		}
	}
}

func TestBreakerReason(t *testing.T) {
	t.Parallel()
	b := NewBreaker(BreakerPolicy{})
	if got := b.Reason(t0); got != "circuit breaker closed" {
		t.Errorf("closed: %q", got)
	}
	for i := range 5 {
		b.Failure(t0.Add(time.Duration(i) * time.Second))
	}
	if got, want := b.Reason(t0.Add(10*time.Second)), "circuit breaker open for 24s: 5 failures within 1m0s"; got != want {
		t.Errorf("open: got %q, want %q", got, want)
	}
	if got, want := b.Reason(t0.Add(40*time.Second)), "circuit breaker half-open: next restart is the trial"; got != want {
		t.Errorf("half-open: got %q, want %q", got, want)
	}
	b.Allow(t0.Add(40 * time.Second))
	b.Failure(t0.Add(41 * time.Second))
	if got, want := b.Reason(t0.Add(41*time.Second)), "circuit breaker open for 1m0s: trial failed"; got != want {
		t.Errorf("reopened: got %q, want %q", got, want)
	}
	for s, want := range map[BreakerState]string{BreakerClosed: "closed", BreakerOpen: "open", BreakerHalfOpen: "half-open", 9: "BreakerState(9)"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q", int(s), s.String())
		}
	}
}

func TestBreakerPolicy(t *testing.T) {
	t.Parallel()
	got := BreakerPolicy{}.WithDefaults()
	want := BreakerPolicy{Failures: 5, Window: time.Minute, OpenFor: 30 * time.Second, MaxOpenFor: 5 * time.Minute, HealthyAfter: 10 * time.Second}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("defaults (-want +got):\n%s", d)
	}
	if got := (BreakerPolicy{OpenFor: time.Hour}).WithDefaults().MaxOpenFor; got != time.Hour {
		t.Errorf("MaxOpenFor below a long OpenFor: %v", got)
	}
	for _, p := range []BreakerPolicy{{Failures: -1}, {Window: -1}, {OpenFor: time.Minute, MaxOpenFor: time.Second}} {
		if err := p.Validate(); !errors.Is(err, ErrInvalidPolicy) {
			t.Errorf("Validate(%+v) = %v", p, err)
		}
	}
	if err := (BreakerPolicy{}).Validate(); err != nil {
		t.Errorf("zero policy: %v", err)
	}
}

func TestBreakers(t *testing.T) {
	t.Parallel()
	s := NewBreakers(BreakerPolicy{Failures: 1})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			s.For("web").Failure(t0)
			s.For("web").Allow(t0)
		})
	}
	wg.Wait()
	if s.For("web").State(t0) != BreakerOpen || s.For("db").State(t0) != BreakerClosed {
		t.Error("one service's breaker opened another's")
	}
	s.Forget("web")
	if s.For("web").State(t0) != BreakerClosed {
		t.Error("Forget kept the breaker")
	}
}
