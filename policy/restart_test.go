package policy

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opendao/dao"
)

// fixedSource makes rand.Float64 return (nearly) one value: 0 for fixedSource(0), just
// under 1 for fixedSource(math.MaxUint64).
type fixedSource uint64

func (s fixedSource) Uint64() uint64 { return uint64(s) }

var (
	noJitter  = rand.New(fixedSource(0))
	maxJitter = rand.New(fixedSource(math.MaxUint64))
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

// crashLoop starts and exits the container every `every` times, with code, and returns the
// decisions.
func crashLoop(tr *RestartTracker, n int, every time.Duration, code int) []RestartDecision {
	var out []RestartDecision
	now := t0
	for range n {
		tr.Started(now)
		now = now.Add(every)
		out = append(out, tr.Exited(now, code))
	}
	return out
}

func delays(ds []RestartDecision) []time.Duration {
	var out []time.Duration
	for _, d := range ds {
		out = append(out, d.Delay)
	}
	return out
}

func TestRestartBackoff(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	tests := []struct {
		name   string
		policy dao.RestartPolicy
		rnd    *rand.Rand
		want   []time.Duration
	}{
		{"defaults: immediate, then from 200ms doubling to 10s", dao.RestartPolicy{}, noJitter,
			[]time.Duration{0, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 6400 * ms, 10000 * ms, 10000 * ms}},
		{"initial delay", dao.RestartPolicy{InitialDelay: dao.Duration(time.Second), MaxDelay: dao.Duration(5 * time.Second)}, noJitter,
			[]time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}},
		{"multiplier 3", dao.RestartPolicy{Multiplier: 3}, noJitter,
			[]time.Duration{0, 300 * ms, 900 * ms, 2700 * ms, 8100 * ms, 10000 * ms}},
		{"full jitter goes up, and down at the cap", dao.RestartPolicy{Jitter: 0.5, MaxDelay: dao.Duration(time.Second)}, maxJitter,
			[]time.Duration{0, 300 * ms, 600 * ms, 500 * ms, 500 * ms}},
		{"default jitter of 10%", dao.RestartPolicy{}, maxJitter,
			[]time.Duration{0, 220 * ms, 440 * ms, 880 * ms, 1760 * ms, 3520 * ms, 7040 * ms, 9000 * ms}},
		{"huge max delay does not overflow", dao.RestartPolicy{MaxDelay: dao.Duration(math.MaxInt64), Multiplier: 1e6}, noJitter,
			[]time.Duration{0, 100000 * time.Second, math.MaxInt64, math.MaxInt64, math.MaxInt64}},
	}
	for _, tt := range tests {
		tr := NewRestartTracker(tt.policy, tt.rnd)
		got := delays(crashLoop(tr, len(tt.want), 10*ms, 1))
		for i := range got {
			// Float arithmetic may be off by a few nanoseconds.
			if diff := got[i] - tt.want[i]; diff > 1000 || diff < -1000 {
				t.Errorf("%s:\ngot  %v\nwant %v", tt.name, got, tt.want)
				break
			}
		}
	}
}

func TestRestartJitterIsDeterministicAndBounded(t *testing.T) {
	t.Parallel()
	p := dao.RestartPolicy{Jitter: 0.3}
	a := delays(crashLoop(NewRestartTracker(p, rand.New(rand.NewPCG(1, 2))), 12, time.Millisecond, 1))
	b := delays(crashLoop(NewRestartTracker(p, rand.New(rand.NewPCG(1, 2))), 12, time.Millisecond, 1))
	if d := cmp.Diff(a, b); d != "" {
		t.Errorf("same seed, different delays (-want +got):\n%s", d)
	}
	base := delays(crashLoop(NewRestartTracker(p, noJitter), 12, time.Millisecond, 1))
	for i := range a {
		lo, hi := base[i]-time.Duration(float64(base[i])*0.3), base[i]+time.Duration(float64(base[i])*0.3)
		if a[i] < lo || a[i] > hi || a[i] > 10*time.Second {
			t.Errorf("restart %d: delay %v outside [%v, %v] or above the 10s cap", i+1, a[i], lo, hi)
		}
	}
	// At the cap, jitter still spreads the restarts of different containers.
	c := delays(crashLoop(NewRestartTracker(p, rand.New(rand.NewPCG(3, 4))), 12, time.Millisecond, 1))
	if a[11] == c[11] {
		t.Errorf("two containers at the cap restart in lockstep: %v", a[11])
	}
}

func TestRestartResetAfterHealthyRun(t *testing.T) {
	t.Parallel()
	tr := NewRestartTracker(dao.RestartPolicy{}, noJitter)
	crashLoop(tr, 4, time.Second, 1) // four quick crashes: next delay would be 1.6s
	tr.Started(t0.Add(time.Minute))
	d := tr.Exited(t0.Add(time.Minute+10*time.Second), 1) // ran for ResetAfter
	if !d.Restart || d.Delay != 0 || d.Attempt != 5 {
		t.Errorf("after a healthy run: got %+v, want an immediate restart, attempt 5", d)
	}
	if tr.Restarts() != 5 {
		t.Errorf("Restarts() = %d, want 5", tr.Restarts())
	}
}

func TestRestartExitWithoutStartIsNotHealthy(t *testing.T) {
	t.Parallel()
	tr := NewRestartTracker(dao.RestartPolicy{}, noJitter)
	tr.Started(t0)
	tr.Exited(t0.Add(time.Second), 1) // restart 1: immediate
	// The restart failed: no Started. Much later the node reports another exit. The old
	// start must not pass for a healthy run of 30s.
	d := tr.Exited(t0.Add(30*time.Second), 1)
	if d.Delay != 200*time.Millisecond {
		t.Errorf("got %+v, want the backoff to go on (200ms)", d)
	}
}

func TestRestartConditions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cond    dao.RestartCondition
		code    int
		restart bool
		reason  string
	}{
		{"", 0, true, "restart in 0s"},
		{dao.RestartAlways, 0, true, "restart in 0s"},
		{dao.RestartAlways, 137, true, "restart in 0s"},
		{dao.RestartOnFailure, 1, true, "restart in 0s"},
		{dao.RestartOnFailure, 0, false, "exit code 0 with restart condition on-failure"},
		{dao.RestartNever, 1, false, "restart condition is never"},
	}
	for _, tt := range tests {
		tr := NewRestartTracker(dao.RestartPolicy{Condition: tt.cond}, nil)
		tr.Started(t0)
		d := tr.Exited(t0.Add(time.Second), tt.code)
		if d.Restart != tt.restart || d.Reason != tt.reason {
			t.Errorf("condition %q, exit %d: got %+v, want restart %v %q", tt.cond, tt.code, d, tt.restart, tt.reason)
		}
	}
}

func TestRestartMaxAttempts(t *testing.T) {
	t.Parallel()
	p := dao.RestartPolicy{MaxAttempts: 3, Window: dao.Duration(time.Minute)}
	tr := NewRestartTracker(p, noJitter)
	got := crashLoop(tr, 4, time.Second, 1)
	if !got[2].Restart || got[3].Restart {
		t.Fatalf("decisions %v: want 3 restarts, then none", lines(got))
	}
	if want := "gave up after 3 restarts within 1m0s"; got[3].Reason != want {
		t.Errorf("reason %q, want %q", got[3].Reason, want)
	}
	// Once the window has passed the earlier restarts, the tracker restarts again.
	d := tr.Exited(t0.Add(2*time.Minute), 1)
	if !d.Restart || d.Attempt != 4 {
		t.Errorf("after the window: got %+v, want restart attempt 4", d)
	}

	forever := NewRestartTracker(dao.RestartPolicy{MaxAttempts: 2}, noJitter)
	crashLoop(forever, 2, time.Second, 1)
	if d := forever.Exited(t0.Add(24*time.Hour), 1); d.Restart || d.Reason != "gave up after 2 restarts" {
		t.Errorf("no window: got %+v", d)
	}
}

func TestRestartUnlimitedKeepsNoHistory(t *testing.T) {
	t.Parallel()
	tr := NewRestartTracker(dao.RestartPolicy{Window: dao.Duration(time.Hour)}, noJitter)
	crashLoop(tr, 1000, time.Millisecond, 1)
	if len(tr.restarts) != 0 || tr.Restarts() != 1000 {
		t.Errorf("without MaxAttempts: %d restart times kept, %d restarts; want 0 kept, 1000", len(tr.restarts), tr.Restarts())
	}
}
