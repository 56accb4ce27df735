package policy

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/opendao/dao"
)

// ScalingPolicyType says how a ScalingPolicy limits a change of replicas.
type ScalingPolicyType int

// Scaling policy types.
const (
	// ScalePods limits the change to Value replicas per Period.
	ScalePods ScalingPolicyType = iota
	// ScalePercent limits the change to Value percent of the replicas at the start of the
	// Period.
	ScalePercent
)

// ScalingPolicy is one rate limit on scaling in one direction, as in the Kubernetes
// HorizontalPodAutoscaler's behavior: at most Value replicas (or percent) per Period.
type ScalingPolicy struct {
	Type   ScalingPolicyType
	Value  int
	Period time.Duration
}

// SelectPolicy says which ScalingPolicy of a direction applies when there are several.
type SelectPolicy int

// Select policies. The zero value is SelectMax.
const (
	// SelectMax applies the policy that allows the largest change.
	SelectMax SelectPolicy = iota
	// SelectMin applies the policy that allows the smallest change.
	SelectMin
	// SelectDisabled forbids scaling in this direction.
	SelectDisabled
)

// ScalingRules govern scaling in one direction.
type ScalingRules struct {
	// StabilizationWindow: scaling follows the most cautious recommendation made within
	// it: scaling down, the highest; scaling up, the lowest. It stops flapping when the
	// metric wobbles. Zero means none.
	StabilizationWindow time.Duration
	// Policies limit the rate of change; none means no limit.
	Policies []ScalingPolicy
	// Select picks among Policies; SelectDisabled forbids the direction.
	Select SelectPolicy
}

// AutoscalePolicy is a horizontal autoscaler's policy with the semantics of the Kubernetes
// HorizontalPodAutoscaler (autoscaling/v2): for each metric, desired replicas =
// ceil(current × value / target), unchanged while value/target is within Tolerance of 1;
// the largest over the metrics wins; then the stabilization windows and rate limits of
// each direction apply, and the result is held within MinReplicas and MaxReplicas.
//
// Fields mean what they say, zero included: DefaultAutoscalePolicy returns the HPA's
// defaults.
type AutoscalePolicy struct {
	// MinReplicas and MaxReplicas bound the result; MaxReplicas must be at least 1, at
	// least MinReplicas and at most dao.MaxReplicas.
	MinReplicas, MaxReplicas int
	// Tolerance is how far value/target may stray from 1 without a change; the HPA's
	// default is 0.1.
	Tolerance float64
	// ScaleUp and ScaleDown govern each direction.
	ScaleUp, ScaleDown ScalingRules
}

// DefaultAutoscalePolicy returns the HPA's defaults between min and max replicas: a
// tolerance of 0.1; scaling up at once, by at most the larger of 100% and 4 replicas per
// 15s; scaling down after a stabilization window of 5m, by up to 100% per 15s.
func DefaultAutoscalePolicy(min, max int) AutoscalePolicy {
	return AutoscalePolicy{
		MinReplicas: min,
		MaxReplicas: max,
		Tolerance:   0.1,
		ScaleUp: ScalingRules{Policies: []ScalingPolicy{
			{Type: ScalePercent, Value: 100, Period: 15 * time.Second},
			{Type: ScalePods, Value: 4, Period: 15 * time.Second},
		}},
		ScaleDown: ScalingRules{StabilizationWindow: 5 * time.Minute, Policies: []ScalingPolicy{
			{Type: ScalePercent, Value: 100, Period: 15 * time.Second},
		}},
	}
}

// Validate returns an error wrapping ErrInvalidPolicy when the policy cannot work.
func (p AutoscalePolicy) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: autoscale: "+format, append([]any{ErrInvalidPolicy}, args...)...)
	}
	switch {
	case p.MinReplicas < 0:
		return bad("minReplicas must be >= 0, got %d", p.MinReplicas)
	case p.MaxReplicas < 1 || p.MaxReplicas < p.MinReplicas:
		return bad("maxReplicas must be >= 1 and >= minReplicas, got %d", p.MaxReplicas)
	case p.MaxReplicas > dao.MaxReplicas:
		return bad("maxReplicas %d is more than the limit of %d (dao.MaxReplicas)", p.MaxReplicas, dao.MaxReplicas)
	case !(p.Tolerance >= 0) || math.IsInf(p.Tolerance, 0):
		return bad("tolerance must be a finite number >= 0, got %g", p.Tolerance)
	}
	for _, r := range []struct {
		dir string
		ScalingRules
	}{{"scaleUp", p.ScaleUp}, {"scaleDown", p.ScaleDown}} {
		if r.StabilizationWindow < 0 {
			return bad("%s stabilization window must be >= 0", r.dir)
		}
		for i, sp := range r.Policies {
			if sp.Value <= 0 || sp.Period <= 0 || (sp.Type != ScalePods && sp.Type != ScalePercent) {
				return bad("%s policy %d must have a type, a value > 0 and a period > 0", r.dir, i)
			}
		}
	}
	return nil
}

// Metric is one observed metric of a service against its target: Value is the current
// average per replica (such as CPU use in millicores, or requests per second), Target what
// one replica should carry.
type Metric struct {
	Name   string
	Value  float64
	Target float64
}

// Recommendation is a raw recommendation made at At, kept for stabilization.
type Recommendation struct {
	At       time.Time
	Replicas int
}

// ScaleEvent is a change of replicas made at At, kept for rate limits.
type ScaleEvent struct {
	At       time.Time
	From, To int
}

// ScaleInput is what one autoscaling decision looks at.
type ScaleInput struct {
	// Current is the number of replicas now.
	Current int
	// Metrics are the current observations; the largest recommendation among them wins.
	Metrics []Metric
	// Recommendations are earlier raw recommendations (ScaleDecision.Recommendation with
	// its time), for the stabilization windows. Older ones than the longest window are
	// ignored.
	Recommendations []Recommendation
	// Events are earlier changes of replicas, for the rate limits. Older ones than the
	// longest period are ignored.
	Events []ScaleEvent
}

// ScaleDecision is the result of AutoscalePolicy.Decide.
type ScaleDecision struct {
	// Replicas is the number of replicas to have.
	Replicas int
	// Recommendation is the raw recommendation of the metrics, before stabilization, rate
	// limits and bounds: record it with the time of the decision for the next ones.
	Recommendation int
	// Limited is true when a stabilization window, a rate limit or a bound held the result
	// back from the recommendation.
	Limited bool
	// Reason says why, in a few words.
	Reason string
}

// Decide returns the replicas the service should have at now. It is a pure function of
// the policy, in and now; Autoscaler keeps the history for it.
func (p AutoscalePolicy) Decide(in ScaleInput, now time.Time) ScaleDecision {
	cur := in.Current
	switch {
	case cur == 0 && p.MinReplicas != 0:
		// As with the HPA, a service scaled to zero by hand stays there.
		return ScaleDecision{Replicas: 0, Recommendation: 0, Reason: "scaled to zero: autoscaling is off until replicas are set"}
	case cur > p.MaxReplicas:
		return ScaleDecision{Replicas: p.MaxReplicas, Recommendation: p.MaxReplicas, Limited: true,
			Reason: "current " + strconv.Itoa(cur) + " above the maximum " + strconv.Itoa(p.MaxReplicas)}
	case cur < p.MinReplicas:
		return ScaleDecision{Replicas: p.MinReplicas, Recommendation: p.MinReplicas, Limited: true,
			Reason: "current " + strconv.Itoa(cur) + " below the minimum " + strconv.Itoa(p.MinReplicas)}
	}

	rec, reason := cur, "no usable metric"
	found := false
	for _, m := range in.Metrics {
		if !(m.Target > 0) || math.IsNaN(m.Value) || math.IsInf(m.Value, 0) || math.IsInf(m.Target, 0) {
			continue
		}
		ratio := m.Value / m.Target
		r := cur
		if math.Abs(ratio-1) > p.Tolerance {
			r = toInt(math.Ceil(ratio * float64(cur)))
		}
		if !found || r > rec {
			found = true
			rec = r
			reason = fmt.Sprintf("%s %g/%g: %d", metricName(m), m.Value, m.Target, r)
			if r == cur {
				reason += " (within tolerance)"
			}
		}
	}
	d := ScaleDecision{Recommendation: rec, Reason: reason}

	// Stabilize: follow the lowest recommendation of the up window and the highest of the
	// down window, the current one included.
	up, down := rec, rec
	upFrom, downFrom := now.Add(-p.ScaleUp.StabilizationWindow), now.Add(-p.ScaleDown.StabilizationWindow)
	for _, r := range in.Recommendations {
		if r.At.After(upFrom) && !r.At.After(now) {
			up = min(up, r.Replicas)
		}
		if r.At.After(downFrom) && !r.At.After(now) {
			down = max(down, r.Replicas)
		}
	}
	desired := max(cur, up)
	desired = min(desired, down)
	if desired != rec {
		d.Limited = true
		if desired < rec {
			d.Reason += fmt.Sprintf("; stabilized at %d: recommendations of the last %s went down to %d",
				desired, p.ScaleUp.StabilizationWindow, up)
		} else {
			d.Reason += fmt.Sprintf("; stabilized at %d: recommendations of the last %s went up to %d",
				desired, p.ScaleDown.StabilizationWindow, down)
		}
	}

	// Rate limits and bounds.
	switch {
	case desired > cur:
		limit := scaleUpLimit(cur, in.Events, p.ScaleUp, now)
		limit = max(limit, cur)
		if hi := min(p.MaxReplicas, limit); desired > hi {
			desired = hi
			d.Limited = true
			if limit < p.MaxReplicas {
				d.Reason += "; scale up limited to " + strconv.Itoa(hi) + " by its rate"
			} else {
				d.Reason += "; held at the maximum " + strconv.Itoa(hi)
			}
		}
	case desired < cur:
		limit := scaleDownLimit(cur, in.Events, p.ScaleDown, now)
		limit = min(limit, cur)
		if lo := max(p.MinReplicas, limit); desired < lo {
			desired = lo
			d.Limited = true
			if limit > p.MinReplicas {
				d.Reason += "; scale down limited to " + strconv.Itoa(lo) + " by its rate"
			} else {
				d.Reason += "; held at the minimum " + strconv.Itoa(lo)
			}
		}
	}
	d.Replicas = desired
	return d
}

func metricName(m Metric) string {
	if m.Name == "" {
		return "metric"
	}
	return m.Name
}

// changed returns the replicas added (up) or removed (down) by the events within period
// before now.
func changed(events []ScaleEvent, period time.Duration, now time.Time, up bool) int {
	from := now.Add(-period)
	n := 0
	for _, e := range events {
		if !e.At.After(from) || e.At.After(now) {
			continue
		}
		if up && e.To > e.From {
			n += e.To - e.From
		} else if !up && e.To < e.From {
			n += e.From - e.To
		}
	}
	return n
}

// scaleUpLimit returns the most replicas the rules allow now.
func scaleUpLimit(cur int, events []ScaleEvent, r ScalingRules, now time.Time) int {
	if r.Select == SelectDisabled {
		return cur
	}
	if len(r.Policies) == 0 {
		return math.MaxInt
	}
	result := math.MinInt
	if r.Select == SelectMin {
		result = math.MaxInt
	}
	for _, p := range r.Policies {
		start := cur - changed(events, p.Period, now, true)
		var proposed int
		if p.Type == ScalePercent {
			proposed = toInt(math.Ceil(float64(start) * (1 + float64(p.Value)/100)))
		} else if p.Value > math.MaxInt-start {
			proposed = math.MaxInt
		} else {
			proposed = start + p.Value
		}
		if r.Select == SelectMin {
			result = min(result, proposed)
		} else {
			result = max(result, proposed)
		}
	}
	return result
}

// scaleDownLimit returns the fewest replicas the rules allow now.
func scaleDownLimit(cur int, events []ScaleEvent, r ScalingRules, now time.Time) int {
	if r.Select == SelectDisabled {
		return cur
	}
	if len(r.Policies) == 0 {
		return math.MinInt
	}
	result := math.MaxInt
	if r.Select == SelectMin {
		result = math.MinInt
	}
	for _, p := range r.Policies {
		start := cur + changed(events, p.Period, now, false)
		var proposed int
		if p.Type == ScalePercent {
			proposed = toInt(float64(start) * (1 - float64(p.Value)/100))
		} else {
			proposed = start - p.Value
		}
		if r.Select == SelectMin {
			result = max(result, proposed)
		} else {
			result = min(result, proposed)
		}
	}
	return result
}

// toInt converts f to an int, stopping at ±2^62 where the conversion would overflow (Go
// leaves the result of an out-of-range conversion to the machine: on amd64 a huge metric
// became math.MinInt, a recommendation to scale to the minimum), and 0 for NaN.
func toInt(f float64) int {
	const limit = 1 << 62
	switch {
	case math.IsNaN(f):
		return 0
	case f >= limit:
		return limit
	case f <= -limit:
		return -limit
	}
	return int(f)
}

// Autoscaler applies an AutoscalePolicy over time: it keeps the recommendations and the
// changes that Decide needs, dropping them once no window or period reaches them. It is
// deterministic (time is passed in) and not safe for concurrent use.
type Autoscaler struct {
	policy  AutoscalePolicy
	recs    []Recommendation
	events  []ScaleEvent
	horizon time.Duration
}

// NewAutoscaler returns an autoscaler for p, or an error wrapping ErrInvalidPolicy.
func NewAutoscaler(p AutoscalePolicy) (*Autoscaler, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	h := max(p.ScaleUp.StabilizationWindow, p.ScaleDown.StabilizationWindow)
	for _, sp := range slices.Concat(p.ScaleUp.Policies, p.ScaleDown.Policies) {
		h = max(h, sp.Period)
	}
	return &Autoscaler{policy: p, horizon: h}, nil
}

// Decide decides at now for current replicas and metrics, and remembers the
// recommendation. When the decision changes the replicas, the autoscaler takes it as done:
// call it again only once the change is applied (or after a failed one, with the
// replicas that are really there).
func (a *Autoscaler) Decide(now time.Time, current int, metrics ...Metric) ScaleDecision {
	cut := now.Add(-a.horizon)
	a.recs = dropBefore(a.recs, cut, func(r Recommendation) time.Time { return r.At })
	a.events = dropBefore(a.events, cut, func(e ScaleEvent) time.Time { return e.At })
	d := a.policy.Decide(ScaleInput{Current: current, Metrics: metrics, Recommendations: a.recs, Events: a.events}, now)
	a.recs = append(a.recs, Recommendation{At: now, Replicas: d.Recommendation})
	if d.Replicas != current {
		a.events = append(a.events, ScaleEvent{At: now, From: current, To: d.Replicas})
	}
	return d
}

func dropBefore[T any](s []T, cut time.Time, at func(T) time.Time) []T {
	keep := s[:0]
	for _, v := range s {
		if at(v).After(cut) {
			keep = append(keep, v)
		}
	}
	return keep
}
