package simnode

import (
	"math/rand/v2"
	"time"
)

// Latency draws a duration, such as the time a task takes to start, from r. A simulated
// node calls it under its own lock, with its own random source, so it needs no locking;
// it must not return a negative duration.
type Latency func(r *rand.Rand) time.Duration

// Fixed is always d.
func Fixed(d time.Duration) Latency {
	d = max(d, 0)
	return func(*rand.Rand) time.Duration { return d }
}

// Uniform is spread evenly between lo and hi.
func Uniform(lo, hi time.Duration) Latency {
	lo = max(lo, 0)
	hi = max(hi, lo)
	return func(r *rand.Rand) time.Duration {
		if hi == lo {
			return lo
		}
		return lo + time.Duration(r.Int64N(int64(hi-lo)+1))
	}
}

// Exponential has the given mean, as the time between independent failures does.
func Exponential(mean time.Duration) Latency {
	mean = max(mean, 0)
	return func(r *rand.Rand) time.Duration { return time.Duration(r.ExpFloat64() * float64(mean)) }
}

// Normal has the given mean and standard deviation, cut at zero: most starts take about
// the mean, a few take much longer.
func Normal(mean, stddev time.Duration) Latency {
	return func(r *rand.Rand) time.Duration {
		return max(0, time.Duration(r.NormFloat64()*float64(stddev)+float64(mean)))
	}
}
