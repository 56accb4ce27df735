package orchestrator

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/clock"
	"github.com/opendao/dao/orchestrator/scheduler"
	"github.com/opendao/dao/policy"
)

// Defaults of an Orchestrator.
const (
	// DefaultHeartbeatTimeout is how long a node may stay silent before it is disconnected:
	// five heartbeats of a remote node (cluster.DefaultHeartbeatInterval is 1s), so that a
	// lossy link, whose TCP retransmits late rather than never, does not disconnect it.
	DefaultHeartbeatTimeout = 5 * time.Second
	// DefaultGrace is how long a disconnected node keeps its tasks before it is down and
	// they are replaced elsewhere. A node whose agent died (its connection closed:
	// Disconnect) is disconnected at once, so its tasks run elsewhere some 3 to 4 seconds
	// after; one that fell silent (a partition, a machine that lost power) keeps them for
	// the timeout and the grace, 8 seconds. A service that would rather not move for a
	// short partition waits longer with WithGrace; one that would rather run twice than
	// run short sets dao.DisconnectPolicy.Replace.
	DefaultGrace = 3 * time.Second
	// DefaultReplaceDelay is how long a slot whose task failed or was rejected waits before
	// it gets a new task, so that a task that cannot run anywhere does not spin.
	DefaultReplaceDelay = time.Second
	// DefaultTaskHistory is how many ended tasks the orchestrator keeps per slot.
	DefaultTaskHistory = 3
	// DefaultMassSilence is the share of the nodes that, silent at once, makes the
	// orchestrator suspect its own side and leave them as they are (WithMassSilence), as
	// Kubernetes' node controller stops evicting at --unhealthy-zone-threshold=0.55.
	DefaultMassSilence = 0.55
	// MassSilenceMinNodes is the fewest nodes a cluster needs for WithMassSilence to hold
	// anything: in a smaller one, most of the nodes dying at once is no rarer than the
	// control plane's own trouble.
	MassSilenceMinNodes = 10
)

// Option configures New.
type Option func(*options) error

type options struct {
	admission    []policy.AdmissionRule
	clock        clock.Clock
	hbTimeout    time.Duration
	grace        time.Duration
	replaceDelay time.Duration
	history      int
	massSilence  float64
	log          *slog.Logger
	sched        []scheduler.Option
}

func defaultOptions() options {
	return options{
		clock:        clock.System(),
		hbTimeout:    DefaultHeartbeatTimeout,
		grace:        DefaultGrace,
		replaceDelay: DefaultReplaceDelay,
		history:      DefaultTaskHistory,
		massSilence:  DefaultMassSilence,
		log:          slog.New(slog.DiscardHandler),
	}
}

// invalid returns the error of an option given a bad value: it names the option and the
// reason, and wraps dao.ErrInvalid.
func invalid(option, format string, args ...any) error {
	return fmt.Errorf("orchestrator: %s: %s: %w", option, fmt.Sprintf(format, args...), dao.ErrInvalid)
}

// WithAdmission adds admission rules, which every created or updated service must pass
// (policy.ValidPlacement always runs first). Violations of enforced rules refuse the
// service with a *policy.AdmissionError; those of audit rules are logged and named in the
// cause of the service's event. The default is none.
func WithAdmission(rules ...policy.AdmissionRule) Option {
	return func(o *options) error {
		for i, r := range rules {
			if r.Check == nil {
				return invalid("WithAdmission", "rule %d (%q) has no Check", i, r.Name)
			}
		}
		o.admission = append(o.admission, rules...)
		return nil
	}
}

// WithClock sets the clock of heartbeats, grace periods, update delays and monitor
// windows. The default is clock.System(); tests use clock.Manual.
func WithClock(c clock.Clock) Option {
	return func(o *options) error {
		if c == nil {
			return invalid("WithClock", "nil clock")
		}
		o.clock = c
		return nil
	}
}

// WithHeartbeatTimeout sets how long a node may go without a heartbeat (or a status
// report) before it is disconnected: its tasks are left alone, and no new ones go to it.
// The default is DefaultHeartbeatTimeout (5s); it must be positive.
func WithHeartbeatTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return invalid("WithHeartbeatTimeout", "%s: must be positive", d)
		}
		o.hbTimeout = d
		return nil
	}
}

// WithMassSilence sets the share of the nodes (of at least MassSilenceMinNodes) that, all
// silent past the heartbeat timeout at once, are held as they are: not disconnected, not
// down, their tasks not replaced, with a warning in the log, until fewer than that share
// are silent. So many nodes failing together is far likelier to be the control plane's
// own trouble (its network cut, or itself too loaded to take their heartbeats in time)
// than theirs, and replacing every task of the cluster at once would make any trouble of
// its own worse. A node that stays silent after the others came back is then judged as
// always, by how long it has been silent. The cost: a real failure of more than that share
// of the nodes replaces nothing until some come back. The default is DefaultMassSilence
// (0.55); 0 turns it off; it must be between 0 and 1.
func WithMassSilence(share float64) Option {
	return func(o *options) error {
		if !(share >= 0 && share <= 1) {
			return invalid("WithMassSilence", "%v: must be between 0 (off) and 1", share)
		}
		o.massSilence = share
		return nil
	}
}

// WithGrace sets how long a disconnected node may stay so before it is down: its tasks are
// orphaned and replaced on other nodes. The default is DefaultGrace (3s); it must not be
// negative.
func WithGrace(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return invalid("WithGrace", "%s: must not be negative", d)
		}
		o.grace = d
		return nil
	}
}

// WithReplaceDelay sets how long a slot whose task failed or was rejected waits before it
// gets a new task. Tasks of a node that went down are replaced at once. The default is
// DefaultReplaceDelay (1s); it must not be negative.
func WithReplaceDelay(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return invalid("WithReplaceDelay", "%s: must not be negative", d)
		}
		o.replaceDelay = d
		return nil
	}
}

// WithTaskHistory sets how many ended tasks are kept per slot (or per node, for a global
// service), newest first, for a program to inspect; older ones are deleted. The default is
// DefaultTaskHistory (3); it must not be negative.
func WithTaskHistory(n int) Option {
	return func(o *options) error {
		if n < 0 {
			return invalid("WithTaskHistory", "%d: must not be negative", n)
		}
		o.history = n
		return nil
	}
}

// WithLogger sets the logger of the orchestrator's own messages: warnings (a store error,
// an invalid stored object skipped, a node that refused an assignment), and at
// slog.LevelDebug every decision of the loops, in the words of the store events' causes
// (placements, refusals, update batches and waits, rollbacks, pauses, completions, nodes
// down, tasks replaced, assignments sent). The default discards them; what the loops
// decide is on the store's watch either way.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return invalid("WithLogger", "nil logger")
		}
		o.log = l
		return nil
	}
}

// WithScheduling passes options to the orchestrator's scheduler.Scheduler
// (scheduler.WithSampleSize, scheduler.WithRand), which New checks. Its clock is always
// the orchestrator's (WithClock): a scheduler.WithClock here is overridden. The default is
// none: the scheduler's defaults.
func WithScheduling(opts ...scheduler.Option) Option {
	return func(o *options) error {
		for _, opt := range opts {
			if opt == nil {
				return invalid("WithScheduling", "nil scheduler.Option")
			}
		}
		// Check them now, so that New fails rather than Run.
		if _, err := scheduler.New(opts...); err != nil {
			return fmt.Errorf("orchestrator: WithScheduling: %w", err)
		}
		o.sched = append(o.sched, opts...)
		return nil
	}
}
