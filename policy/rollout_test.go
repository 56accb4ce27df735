package policy

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opendao/dao"
)

func TestMonitorWindow(t *testing.T) {
	t.Parallel()
	sec := func(n int) dao.Duration { return dao.Duration(time.Duration(n) * time.Second) }
	tests := []struct {
		name string
		u    dao.UpdatePolicy
		hc   *dao.HealthCheck
		want time.Duration
	}{
		{"default", dao.UpdatePolicy{}, nil, 5 * time.Second},
		{"set", dao.UpdatePolicy{Monitor: sec(30)}, nil, 30 * time.Second},
		{"health check defaults need 3 x (30s + 30s)", dao.UpdatePolicy{Monitor: sec(30)},
			&dao.HealthCheck{Command: []string{"true"}}, 3 * time.Minute},
		{"fast health check", dao.UpdatePolicy{}, &dao.HealthCheck{Command: []string{"true"},
			Interval: sec(1), Timeout: sec(1), Retries: 2, StartPeriod: sec(3)}, 7 * time.Second},
		{"monitor longer than the health check needs", dao.UpdatePolicy{Monitor: sec(60)}, &dao.HealthCheck{Command: []string{"true"},
			Interval: sec(1), Timeout: sec(1), Retries: 2}, time.Minute},
	}
	for _, tt := range tests {
		if got := MonitorWindow(tt.u, tt.hc); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
		if got := NewRollout(tt.u, tt.hc).Monitor(); got != tt.want {
			t.Errorf("%s: Rollout.Monitor() %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestRolloutDecide(t *testing.T) {
	t.Parallel()
	now := t0.Add(time.Hour)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	running := func(d time.Duration) UpdatedTask { return UpdatedTask{Started: ago(d)} }
	starting := UpdatedTask{}
	failedAfter := func(ranFor, ago_ time.Duration) UpdatedTask {
		return UpdatedTask{Started: ago(ago_ + ranFor), Failed: ago(ago_)}
	}
	rejected := UpdatedTask{Failed: ago(time.Second)}
	healthy := running(time.Minute) // past the 10s monitor window

	u := dao.UpdatePolicy{Parallelism: 2, Monitor: dao.Duration(10 * time.Second), Delay: dao.Duration(5 * time.Second)}
	rollback := u
	rollback.FailureAction = dao.ActionRollback
	tolerant := u
	tolerant.MaxFailureRatio = 0.25
	keepGoing := u
	keepGoing.FailureAction = dao.ActionContinue
	slowDelay := u // a delay longer than the monitor window
	slowDelay.Monitor = dao.Duration(time.Second)

	type want struct {
		Action                       RolloutAction
		Batch                        int
		Failed, Monitoring, Starting int
		RecheckAt                    time.Time
		Reason                       string
	}
	tests := []struct {
		name string
		u    dao.UpdatePolicy
		s    RolloutStatus
		want want
	}{
		{"start", u, RolloutStatus{Total: 5}, want{Action: RolloutContinue, Batch: 2, Reason: "update 2 more of 5 remaining"}},
		{"batch starting", u, RolloutStatus{Total: 5, Updated: []UpdatedTask{running(time.Second), starting}},
			want{Action: RolloutWait, Monitoring: 1, Starting: 1, Reason: "1 tasks of the last batch still starting"}},
		{"delay between batches", slowDelay, RolloutStatus{Total: 5, Updated: []UpdatedTask{running(3 * time.Second), running(2 * time.Second)}},
			want{Action: RolloutWait, RecheckAt: ago(2 * time.Second).Add(5 * time.Second), Reason: "delay of 5s between batches"}},
		// The monitor window is the gate between batches: past the delay, the last batch is
		// still watched, and the next one waits for the end of its window.
		{"no next batch while the last is monitored", u, RolloutStatus{Total: 5, Updated: []UpdatedTask{healthy, healthy, running(6 * time.Second), running(7 * time.Second)}},
			want{Action: RolloutWait, Monitoring: 2, RecheckAt: ago(7 * time.Second).Add(10 * time.Second),
				Reason: "2 tasks of the last batch in their monitor window of 10s"}},
		{"next batch once the last is through its window", u, RolloutStatus{Total: 5, Updated: []UpdatedTask{healthy, healthy, running(10 * time.Second), running(11 * time.Second)}},
			want{Action: RolloutContinue, Batch: 1, Reason: "update 1 more of 1 remaining"}},
		{"no delay, monitored", dao.UpdatePolicy{Parallelism: 1, Monitor: dao.Duration(10 * time.Second)},
			RolloutStatus{Total: 3, Updated: []UpdatedTask{running(time.Second)}},
			want{Action: RolloutWait, Monitoring: 1, RecheckAt: ago(time.Second).Add(10 * time.Second),
				Reason: "1 tasks of the last batch in their monitor window of 10s"}},
		{"a slot still stopping is starting", u, RolloutStatus{Total: 5, Updated: []UpdatedTask{healthy, {}}},
			want{Action: RolloutWait, Starting: 1, Reason: "1 tasks of the last batch still starting"}},
		{"all started, monitoring", u, RolloutStatus{Total: 2, Updated: []UpdatedTask{healthy, running(4 * time.Second)}},
			want{Action: RolloutWait, Monitoring: 1, RecheckAt: ago(4 * time.Second).Add(10 * time.Second),
				Reason: "all tasks started; 0 starting, 1 in their monitor window"}},
		{"complete", u, RolloutStatus{Total: 2, Updated: []UpdatedTask{healthy, healthy}},
			want{Action: RolloutComplete, Reason: "all 2 tasks updated"}},
		{"nothing to update", u, RolloutStatus{}, want{Action: RolloutComplete, Reason: "all 0 tasks updated"}},
		{"one failure pauses by default", u, RolloutStatus{Total: 4, Updated: []UpdatedTask{healthy, failedAfter(3*time.Second, time.Second)}},
			want{Action: RolloutPause, Failed: 1, Reason: "1 of 4 tasks failed within 10s, more than the max failure ratio 0"}},
		{"a rejected task counts", u, RolloutStatus{Total: 4, Updated: []UpdatedTask{rejected}},
			want{Action: RolloutPause, Failed: 1, Reason: "1 of 4 tasks failed within 10s, more than the max failure ratio 0"}},
		{"a failure after the window does not count", u, RolloutStatus{Total: 4, Updated: []UpdatedTask{healthy, failedAfter(20*time.Second, time.Second)}},
			want{Action: RolloutContinue, Batch: 2, Reason: "update 2 more of 2 remaining"}},
		{"rollback", rollback, RolloutStatus{Total: 4, Updated: []UpdatedTask{rejected}},
			want{Action: RolloutRollback, Failed: 1, Reason: "1 of 4 tasks failed within 10s, more than the max failure ratio 0"}},
		{"a failing rollback pauses", rollback, RolloutStatus{Total: 4, Updated: []UpdatedTask{rejected}, RollingBack: true},
			want{Action: RolloutPause, Failed: 1, Reason: "1 of 4 tasks failed within 10s, more than the max failure ratio 0; a failing rollback pauses"}},
		{"within the ratio", tolerant, RolloutStatus{Total: 4, Updated: []UpdatedTask{healthy, rejected}},
			want{Action: RolloutContinue, Batch: 2, Failed: 1, Reason: "update 2 more of 2 remaining"}},
		{"above the ratio", tolerant, RolloutStatus{Total: 4, Updated: []UpdatedTask{rejected, rejected}},
			want{Action: RolloutPause, Failed: 2, Reason: "2 of 4 tasks failed within 10s, more than the max failure ratio 0.25"}},
		{"failure action continue", keepGoing, RolloutStatus{Total: 3, Updated: []UpdatedTask{rejected}},
			want{Action: RolloutContinue, Batch: 2, Failed: 1,
				Reason: "1 of 3 tasks failed within 10s, more than the max failure ratio 0; failure action continue: update 2 more of 2 remaining"}},
		{"parallelism 0 is 1", dao.UpdatePolicy{}, RolloutStatus{Total: 3}, want{Action: RolloutContinue, Batch: 1, Reason: "update 1 more of 3 remaining"}},
	}
	for _, tt := range tests {
		d := NewRollout(tt.u, nil).Decide(tt.s, now)
		got := want{d.Action, d.Batch, d.Failed, d.Monitoring, d.Starting, d.RecheckAt, d.Reason}
		if df := cmp.Diff(tt.want, got); df != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, df)
		}
	}
	for a, s := range map[RolloutAction]string{RolloutContinue: "continue", RolloutWait: "wait", RolloutPause: "pause",
		RolloutRollback: "rollback", RolloutComplete: "complete", 42: "RolloutAction(42)"} {
		if a.String() != s {
			t.Errorf("%d.String() = %q", int(a), a.String())
		}
	}
}

// TestRolloutHealthCheckWindow shows why the window follows the health check: a task that
// the default health check finds unhealthy after 2 minutes still counts as a failure of
// the update, though the policy asked for a 5s monitor.
func TestRolloutHealthCheckWindow(t *testing.T) {
	t.Parallel()
	r := NewRollout(dao.UpdatePolicy{}, &dao.HealthCheck{Command: []string{"check"}})
	s := RolloutStatus{Total: 2, Updated: []UpdatedTask{{Started: t0, Failed: t0.Add(2 * time.Minute)}}}
	if d := r.Decide(s, t0.Add(2*time.Minute)); d.Action != RolloutPause {
		t.Errorf("got %v (%s), want pause", d.Action, d.Reason)
	}
}

// TestRolloutDegeneratePolicies: a policy that no validation would pass (as a store may
// hold one) gives sane decisions, and no panic: parallelism 0 or negative is 1, a
// negative monitor or delay is the default or none, a NaN ratio tolerates nothing.
func TestRolloutDegeneratePolicies(t *testing.T) {
	t.Parallel()
	now := t0.Add(time.Hour)
	for _, u := range []dao.UpdatePolicy{
		{Parallelism: -5, Delay: -1, Monitor: -1, MaxFailureRatio: math.NaN()},
		{Parallelism: 0, MaxFailureRatio: -1, FailureAction: "sideways"},
		{Parallelism: math.MaxInt, MaxFailureRatio: math.Inf(1)},
	} {
		r := NewRollout(u, nil)
		if r.Monitor() <= 0 {
			t.Errorf("%+v: monitor %s", u, r.Monitor())
		}
		for _, s := range []RolloutStatus{{}, {Total: 3}, {Total: 3, Updated: []UpdatedTask{{Failed: now}}},
			{Total: 0, Updated: []UpdatedTask{{Started: now}}}} {
			d := r.Decide(s, now)
			if d.Action == RolloutContinue && (d.Batch < 1 || d.Batch > s.Total) {
				t.Errorf("%+v, %+v: batch %d", u, s, d.Batch)
			}
			if u.FailureAction == "sideways" && d.Failed > 0 && d.Action != RolloutPause {
				t.Errorf("%+v, %+v: %s, want an unknown failure action to pause", u, s, d.Action)
			}
		}
	}
}
