package simnode

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/clock"
	"github.com/opendao/dao/orchestrator"
)

// Option configures a Node.
type Option func(*options) error

type options struct {
	clock         clock.Clock
	startLatency  Latency
	stopLatency   Latency
	crashP        float64
	crashAfter    Latency
	rejectP       float64
	capacityCheck bool
	validate      bool
	onStatus      func(orchestrator.TaskUpdate)
	heartbeat     time.Duration
	onHeartbeat   func(time.Time)
	seed          *[2]uint64
}

// invalid returns the error of an option given a bad value: it names the option and the
// reason, and wraps dao.ErrInvalid.
func invalid(option, format string, args ...any) error {
	return fmt.Errorf("simnode: %s: %s: %w", option, fmt.Sprintf(format, args...), dao.ErrInvalid)
}

func defaultOptions() options {
	return options{
		clock:         clock.System(),
		startLatency:  Fixed(0),
		stopLatency:   Fixed(0),
		crashAfter:    Fixed(0),
		capacityCheck: true,
		validate:      true,
	}
}

// WithClock sets the clock the node lives in. The default is clock.System(); tests and
// benchmarks use a clock.Manual.
func WithClock(c clock.Clock) Option {
	return func(o *options) error {
		if c == nil {
			return invalid("WithClock", "nil clock")
		}
		o.clock = c
		return nil
	}
}

// WithStartLatency sets how long a task takes from being accepted (preparing) to running,
// and a restarted one from its restart to running. The default is Fixed(0).
func WithStartLatency(l Latency) Option {
	return func(o *options) error {
		if l == nil {
			return invalid("WithStartLatency", "nil latency")
		}
		o.startLatency = l
		return nil
	}
}

// WithStopLatency sets how long a task takes to stop once it is no longer wanted. The
// default is Fixed(0).
func WithStopLatency(l Latency) Option {
	return func(o *options) error {
		if l == nil {
			return invalid("WithStopLatency", "nil latency")
		}
		o.stopLatency = l
		return nil
	}
}

// WithCrashes makes each start of a task crash, with the given probability, after a run
// time drawn from after, with exit code 1; the task's restart policy then decides, as on a
// real node. The default is no crashes. The probability must be between 0 and 1.
func WithCrashes(probability float64, after Latency) Option {
	return func(o *options) error {
		if probability < 0 || probability > 1 {
			return invalid("WithCrashes", "probability %g: must be between 0 and 1", probability)
		}
		if after == nil {
			return invalid("WithCrashes", "nil latency")
		}
		o.crashP, o.crashAfter = probability, after
		return nil
	}
}

// WithRejections makes the node reject each new task with the given probability, as a
// node does that cannot pull the image. The default is none. The probability must be
// between 0 and 1.
func WithRejections(probability float64) Option {
	return func(o *options) error {
		if probability < 0 || probability > 1 {
			return invalid("WithRejections", "probability %g: must be between 0 and 1", probability)
		}
		o.rejectP = probability
		return nil
	}
}

// WithCapacityCheck says whether the node rejects a task whose resources do not fit in what
// its allocatable resources leave (a zero field of Allocatable does not limit), so that a
// scheduler that overcommits a node is caught. The default is true.
func WithCapacityCheck(on bool) Option {
	return func(o *options) error {
		o.capacityCheck = on
		return nil
	}
}

// WithValidation says whether Assign validates each task it has not seen before with
// dao.Task.Validate, as edge.Agent does (about 2µs a task). IDs, duplicates and desired
// states are always checked. The default is true.
func WithValidation(on bool) Option {
	return func(o *options) error {
		o.validate = on
		return nil
	}
}

// WithStatusFunc sets the function told of every status change of the node's tasks, as
// edge.WithStatusFunc does: for one node, one call at a time, in order; different nodes may
// call it at the same time (with clock.System). It must not call the node's Close. The
// default does nothing.
func WithStatusFunc(f func(orchestrator.TaskUpdate)) Option {
	return func(o *options) error {
		if f == nil {
			return invalid("WithStatusFunc", "nil func")
		}
		o.onStatus = f
		return nil
	}
}

// WithHeartbeat makes the node call f every interval while it is up and connected, with
// the clock's time, in the same order as its status updates. The default is no heartbeat.
// The interval must be positive.
func WithHeartbeat(every time.Duration, f func(at time.Time)) Option {
	return func(o *options) error {
		if every <= 0 {
			return invalid("WithHeartbeat", "interval %s: must be positive", every)
		}
		if f == nil {
			return invalid("WithHeartbeat", "nil func")
		}
		o.heartbeat, o.onHeartbeat = every, f
		return nil
	}
}

// WithSeed seeds the node's random source (latencies, crashes, rejections, restart
// jitter), so that a simulation repeats exactly. The default is a random seed. Every seed
// is valid.
func WithSeed(seed1, seed2 uint64) Option {
	return func(o *options) error {
		o.seed = &[2]uint64{seed1, seed2}
		return nil
	}
}

func (o *options) rand() *rand.Rand {
	if o.seed != nil {
		return rand.New(rand.NewPCG(o.seed[0], o.seed[1]))
	}
	return rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
}
