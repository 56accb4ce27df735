package policy

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/opendao/dao"
)

// TestAutoscaleHugeMetricsScaleUp: ceil(ratio × current) past the range of int was
// converted to math.MinInt on amd64, so a huge metric recommended the minimum, and a huge
// pods rate limit overflowed to a limit below the current replicas.
func TestAutoscaleHugeMetricsScaleUp(t *testing.T) {
	t.Parallel()
	now := t0.Add(time.Hour)
	for _, tc := range []struct {
		name string
		p    AutoscalePolicy
		m    Metric
		cur  int
		want int
	}{
		{"huge value", AutoscalePolicy{MinReplicas: 1, MaxReplicas: 100}, Metric{Value: 1e300, Target: 1}, 4, 100},
		{"tiny target", AutoscalePolicy{MinReplicas: 1, MaxReplicas: 100}, Metric{Value: 1, Target: math.SmallestNonzeroFloat64}, 4, 100},
		{"huge percent rate", AutoscalePolicy{MinReplicas: 1, MaxReplicas: 100, ScaleUp: ScalingRules{
			Policies: []ScalingPolicy{{Type: ScalePercent, Value: math.MaxInt, Period: time.Minute}}}}, Metric{Value: 1e6, Target: 1}, 4, 100},
		{"huge pods rate", AutoscalePolicy{MinReplicas: 1, MaxReplicas: 100, ScaleUp: ScalingRules{
			Policies: []ScalingPolicy{{Type: ScalePods, Value: math.MaxInt, Period: time.Minute}}}}, Metric{Value: 1e6, Target: 1}, 4, 100},
		{"huge percent down", AutoscalePolicy{MinReplicas: 2, MaxReplicas: 100, ScaleDown: ScalingRules{
			Policies: []ScalingPolicy{{Type: ScalePercent, Value: math.MaxInt, Period: time.Minute}}}}, Metric{Value: 1, Target: 1e6}, 50, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.p.Validate(); err != nil {
				t.Fatal(err)
			}
			d := tc.p.Decide(ScaleInput{Current: tc.cur, Metrics: []Metric{tc.m}}, now)
			if d.Replicas != tc.want || d.Recommendation < 0 {
				t.Errorf("Decide = %d replicas (recommendation %d, %s), want %d", d.Replicas, d.Recommendation, d.Reason, tc.want)
			}
		})
	}
}

func TestAutoscalePolicyBounds(t *testing.T) {
	t.Parallel()
	for _, p := range []AutoscalePolicy{
		{MaxReplicas: 10, Tolerance: math.Inf(1)},
		{MaxReplicas: 10, Tolerance: math.NaN()},
		{MaxReplicas: dao.MaxReplicas + 1},
	} {
		if err := p.Validate(); !errors.Is(err, ErrInvalidPolicy) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidPolicy", p, err)
		}
	}
	if err := (AutoscalePolicy{MaxReplicas: dao.MaxReplicas}).Validate(); err != nil {
		t.Errorf("MaxReplicas = dao.MaxReplicas: %v", err)
	}
}

// TestBreakerHugeOpenForDoesNotOverflow: a failed trial doubled OpenFor; past half of
// time.Duration's range that was negative, and the breaker opened for no time at all.
func TestBreakerHugeOpenForDoesNotOverflow(t *testing.T) {
	t.Parallel()
	long := time.Duration(math.MaxInt64/2 + 1)
	b := NewBreaker(BreakerPolicy{Failures: 1, OpenFor: long, HealthyAfter: time.Second})
	b.Failure(t0)
	at := t0.Add(long)
	if ok, _ := b.Allow(at); !ok {
		t.Fatal("no trial after OpenFor")
	}
	b.Failure(at.Add(time.Millisecond))
	if ok, retry := b.Allow(at.Add(time.Second)); ok || !retry.After(at.Add(long/2)) {
		t.Errorf("after a failed trial: Allow = %t, retry at %s; want it held back for at least OpenFor", ok, retry)
	}
}
