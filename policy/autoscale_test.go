package policy

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAutoscaleDecide(t *testing.T) {
	t.Parallel()
	now := t0.Add(time.Hour)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	hpa := DefaultAutoscalePolicy(1, 10)
	noWindow := DefaultAutoscalePolicy(2, 10)
	noWindow.ScaleDown.StabilizationWindow = 0
	cpu := func(v float64) []Metric { return []Metric{{Name: "cpu", Value: v, Target: 50}} }
	pick := func(sel SelectPolicy) AutoscalePolicy {
		p := DefaultAutoscalePolicy(1, 100)
		p.ScaleUp.Select = sel
		return p
	}
	podsDown := AutoscalePolicy{MinReplicas: 1, MaxReplicas: 20, ScaleDown: ScalingRules{
		Policies: []ScalingPolicy{{Type: ScalePods, Value: 3, Period: time.Minute}}}}
	percentDown := AutoscalePolicy{MinReplicas: 1, MaxReplicas: 20, ScaleDown: ScalingRules{
		Policies: []ScalingPolicy{{Type: ScalePercent, Value: 50, Period: time.Minute}}}}
	unlimited := AutoscalePolicy{MinReplicas: 0, MaxReplicas: 1000}

	tests := []struct {
		name    string
		p       AutoscalePolicy
		in      ScaleInput
		want    int
		rec     int
		limited bool
		reason  string
	}{
		{"scale up: ceil(4 * 80/50)", hpa, ScaleInput{Current: 4, Metrics: cpu(80)}, 7, 7, false, "cpu 80/50: 7"},
		{"within tolerance", hpa, ScaleInput{Current: 4, Metrics: cpu(54)}, 4, 4, false, "cpu 54/50: 4 (within tolerance)"},
		{"just outside tolerance", hpa, ScaleInput{Current: 4, Metrics: cpu(56)}, 5, 5, false, "cpu 56/50: 5"},
		{"zero tolerance", unlimited, ScaleInput{Current: 10, Metrics: cpu(51)}, 11, 11, false, "cpu 51/50: 11"},
		{"scale down held by the 5m window", hpa, ScaleInput{Current: 10, Metrics: cpu(20),
			Recommendations: []Recommendation{{ago(10 * time.Minute), 10}, {ago(4 * time.Minute), 8}, {ago(2 * time.Minute), 6}}},
			8, 4, true, "cpu 20/50: 4; stabilized at 8: recommendations of the last 5m0s went up to 8"},
		{"scale down once the window has passed", hpa, ScaleInput{Current: 10, Metrics: cpu(20),
			Recommendations: []Recommendation{{ago(6 * time.Minute), 10}}}, 4, 4, false, "cpu 20/50: 4"},
		{"scale up rate: max(100%, 4 pods) per 15s", hpa, ScaleInput{Current: 2, Metrics: cpu(500)},
			6, 20, true, "cpu 500/50: 20; scale up limited to 6 by its rate"},
		{"scale up rate counts recent changes", hpa, ScaleInput{Current: 6, Metrics: cpu(500),
			Events: []ScaleEvent{{ago(10 * time.Second), 2, 6}}}, 6, 60, true, "cpu 500/50: 60; scale up limited to 6 by its rate"},
		{"scale up rate after the period", hpa, ScaleInput{Current: 6, Metrics: cpu(500),
			Events: []ScaleEvent{{ago(20 * time.Second), 2, 6}}}, 10, 60, true, "cpu 500/50: 60; held at the maximum 10"},
		{"held at the minimum", noWindow, ScaleInput{Current: 3, Metrics: cpu(1)}, 2, 1, true, "cpu 1/50: 1; held at the minimum 2"},
		{"scaled to zero stays", hpa, ScaleInput{Current: 0, Metrics: cpu(500)}, 0, 0, false,
			"scaled to zero: autoscaling is off until replicas are set"},
		{"above the maximum", hpa, ScaleInput{Current: 12, Metrics: cpu(50)}, 10, 10, true, "current 12 above the maximum 10"},
		{"below the minimum", noWindow, ScaleInput{Current: 1, Metrics: cpu(50)}, 2, 2, true, "current 1 below the minimum 2"},
		{"largest metric wins", hpa, ScaleInput{Current: 4, Metrics: []Metric{{"cpu", 60, 50}, {"rps", 300, 100}, {"mem", 10, 50}}},
			8, 12, true, "rps 300/100: 12; scale up limited to 8 by its rate"},
		{"unusable metrics are skipped", hpa, ScaleInput{Current: 4, Metrics: []Metric{{"a", 1, 0}, {"b", math.NaN(), 1},
			{"c", math.Inf(1), 1}, {"", 100, 50}}}, 8, 8, false, "metric 100/50: 8"},
		{"no usable metric", hpa, ScaleInput{Current: 4}, 4, 4, false, "no usable metric"},
		{"select min", pick(SelectMin), ScaleInput{Current: 10, Metrics: cpu(500)}, 14, 100, true, "cpu 500/50: 100; scale up limited to 14 by its rate"},
		{"select max", pick(SelectMax), ScaleInput{Current: 10, Metrics: cpu(500)}, 20, 100, true, "cpu 500/50: 100; scale up limited to 20 by its rate"},
		{"scale up disabled", pick(SelectDisabled), ScaleInput{Current: 10, Metrics: cpu(500)}, 10, 100, true, "cpu 500/50: 100; scale up limited to 10 by its rate"},
		{"scale down by pods", podsDown, ScaleInput{Current: 10, Metrics: cpu(10)}, 7, 2, true, "cpu 10/50: 2; scale down limited to 7 by its rate"},
		{"scale down by pods, after a change", podsDown, ScaleInput{Current: 8, Metrics: cpu(10),
			Events: []ScaleEvent{{ago(30 * time.Second), 10, 8}}}, 7, 2, true, "cpu 10/50: 2; scale down limited to 7 by its rate"},
		{"scale down by percent", percentDown, ScaleInput{Current: 9, Metrics: cpu(10)}, 4, 2, true, "cpu 10/50: 2; scale down limited to 4 by its rate"},
		{"up window holds back a spike", AutoscalePolicy{MinReplicas: 1, MaxReplicas: 20, ScaleUp: ScalingRules{StabilizationWindow: time.Minute}},
			ScaleInput{Current: 4, Metrics: cpu(100), Recommendations: []Recommendation{{ago(30 * time.Second), 5}}},
			5, 8, true, "cpu 100/50: 8; stabilized at 5: recommendations of the last 1m0s went down to 5"},
	}
	for _, tt := range tests {
		if err := tt.p.Validate(); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		d := tt.p.Decide(tt.in, now)
		if d.Replicas != tt.want || d.Recommendation != tt.rec || d.Limited != tt.limited || d.Reason != tt.reason {
			t.Errorf("%s:\ngot  %d (rec %d, limited %v) %q\nwant %d (rec %d, limited %v) %q",
				tt.name, d.Replicas, d.Recommendation, d.Limited, d.Reason, tt.want, tt.rec, tt.limited, tt.reason)
		}
	}
}

func TestAutoscalePolicyValidate(t *testing.T) {
	t.Parallel()
	bad := []AutoscalePolicy{
		{MinReplicas: -1, MaxReplicas: 1},
		{MinReplicas: 0, MaxReplicas: 0},
		{MinReplicas: 5, MaxReplicas: 4},
		{MaxReplicas: 1, Tolerance: -0.1},
		{MaxReplicas: 1, Tolerance: math.NaN()},
		{MaxReplicas: 1, ScaleDown: ScalingRules{StabilizationWindow: -time.Second}},
		{MaxReplicas: 1, ScaleUp: ScalingRules{Policies: []ScalingPolicy{{Type: ScalePods, Value: 0, Period: time.Second}}}},
		{MaxReplicas: 1, ScaleUp: ScalingRules{Policies: []ScalingPolicy{{Type: ScalePods, Value: 1}}}},
		{MaxReplicas: 1, ScaleUp: ScalingRules{Policies: []ScalingPolicy{{Type: 7, Value: 1, Period: time.Second}}}},
	}
	for _, p := range bad {
		if err := p.Validate(); !errors.Is(err, ErrInvalidPolicy) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidPolicy", p, err)
		}
		if _, err := NewAutoscaler(p); err == nil {
			t.Errorf("NewAutoscaler(%+v) accepted it", p)
		}
	}
	if err := DefaultAutoscalePolicy(1, 10).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// TestAutoscalerOverTime drives an Autoscaler through a load spike and its end: it scales
// up at once, and down only when the load has stayed low for the 5m window.
func TestAutoscalerOverTime(t *testing.T) {
	t.Parallel()
	a, err := NewAutoscaler(DefaultAutoscalePolicy(2, 20))
	if err != nil {
		t.Fatal(err)
	}
	load := func(minute int) float64 { // total CPU the service needs, in units of the target
		switch {
		case minute < 2:
			return 4
		case minute < 6:
			return 12
		default:
			return 3
		}
	}
	replicas := 4
	var got []int
	for m := range 15 {
		now := t0.Add(time.Duration(m) * time.Minute)
		perReplica := load(m) / float64(replicas) * 50
		d := a.Decide(now, replicas, Metric{Name: "cpu", Value: perReplica, Target: 50})
		replicas = d.Replicas
		got = append(got, replicas)
	}
	// Up at minute 2, to 8 only (the rate allows doubling per 15s), 12 a minute later; down
	// to 3 at minute 10, when the last high recommendation (minute 5) leaves the 5m window.
	want := []int{4, 4, 8, 12, 12, 12, 12, 12, 12, 12, 3, 3, 3, 3, 3}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("replicas per minute (-want +got):\n%s", d)
	}
	if len(a.recs) > 6 {
		t.Errorf("the autoscaler keeps %d recommendations; older than 5m should go", len(a.recs))
	}
}
