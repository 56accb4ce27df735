package pipeline

import (
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/clock"
)

// Defaults of a Runner.
const (
	// DefaultParallelism is how many steps a Runner runs at once.
	DefaultParallelism = 4
	// DefaultCacheDir keeps step caches between runs.
	DefaultCacheDir = "/var/cache/dao/pipeline"
	// DefaultStopGrace is how long a step's container has to exit after SIGTERM when it timed
	// out or its run was cancelled, before SIGKILL.
	DefaultStopGrace = 2 * time.Second
	// DefaultLogLimit is how many log lines a step's record keeps: the last ones.
	DefaultLogLimit = 10_000
)

// Option configures a Runner. An Option given a value it does not accept makes NewRunner
// return an error that names it and wraps ErrInvalidOption (so dao.ErrInvalid).
type Option func(*options) error

type options struct {
	parallelism int
	cacheDir    string
	pusher      Pusher
	deployer    Deployer
	stopGrace   time.Duration
	logLimit    int
	scratchDir  string
	now         func() time.Time
}

func defaultOptions() options {
	return options{
		parallelism: DefaultParallelism,
		cacheDir:    DefaultCacheDir,
		stopGrace:   DefaultStopGrace,
		logLimit:    DefaultLogLimit,
		now:         time.Now,
	}
}

// WithParallelism sets how many steps run at once, across all runs of the Runner; at least 1.
// The default is DefaultParallelism (4).
func WithParallelism(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("%w: WithParallelism(%d): must be at least 1", ErrInvalidOption, n)
		}
		o.parallelism = n
		return nil
	}
}

// WithCacheDir sets the directory that keeps step caches between runs, created when first
// needed. The default is DefaultCacheDir (/var/cache/dao/pipeline).
func WithCacheDir(dir string) Option {
	return func(o *options) error {
		if !filepath.IsAbs(dir) {
			return fmt.Errorf("%w: WithCacheDir(%s): must be an absolute path", ErrInvalidOption, dao.Quote(dir))
		}
		o.cacheDir = filepath.Clean(dir)
		return nil
	}
}

// WithPusher sets what build steps push their images with, such as a *registry.Client. The
// default imports them into the Runtime's containerd namespace (ContainerdPusher), where
// later steps can run them.
func WithPusher(p Pusher) Option {
	return func(o *options) error {
		if p == nil {
			return fmt.Errorf("%w: WithPusher(nil): must not be nil", ErrInvalidOption)
		}
		o.pusher = p
		return nil
	}
}

// WithDeployer sets what deploy steps hand their images to. There is no default: a pipeline
// with a deploy step is refused without one.
func WithDeployer(d Deployer) Option {
	return func(o *options) error {
		if d == nil {
			return fmt.Errorf("%w: WithDeployer(nil): must not be nil", ErrInvalidOption)
		}
		o.deployer = d
		return nil
	}
}

// WithStopGrace sets how long a step's container has to exit after SIGTERM, when its attempt
// timed out or its run was cancelled, before it is killed with SIGKILL. The default is
// DefaultStopGrace (2s).
func WithStopGrace(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("%w: WithStopGrace(%s): must be >= 0", ErrInvalidOption, d)
		}
		o.stopGrace = d
		return nil
	}
}

// WithLogLimit sets how many log lines each step's record keeps (the last ones); the live log
// function sees them all. The default is DefaultLogLimit (10,000).
func WithLogLimit(lines int) Option {
	return func(o *options) error {
		if lines < 1 {
			return fmt.Errorf("%w: WithLogLimit(%d): must be at least 1", ErrInvalidOption, lines)
		}
		o.logLimit = lines
		return nil
	}
}

// WithScratchDir sets the directory under which each run keeps its scratch files (the files
// steps write their outputs to, and the workspace when Run is given none); they are removed
// when the run ends. The default is the system's temporary directory.
func WithScratchDir(dir string) Option {
	return func(o *options) error {
		if !filepath.IsAbs(dir) {
			return fmt.Errorf("%w: WithScratchDir(%s): must be an absolute path", ErrInvalidOption, dao.Quote(dir))
		}
		o.scratchDir = filepath.Clean(dir)
		return nil
	}
}

// WithClock sets the clock of the run record's and the log lines' times. The default is
// clock.System(). Timeouts use the real clock.
func WithClock(c clock.Clock) Option {
	return func(o *options) error {
		if c == nil {
			return fmt.Errorf("%w: WithClock(nil): must not be nil", ErrInvalidOption)
		}
		o.now = c.Now
		return nil
	}
}

// RunOption configures one run. A RunOption given a value it does not accept makes Run
// return an error that names it and wraps ErrInvalidOption (so dao.ErrInvalid), and no record.
type RunOption func(*runOptions) error

type runOptions struct {
	workspace   string
	secrets     map[string]string
	logf        func(LogLine)
	runID       string
	artifactDir string
}

// WithArtifactDir keeps the run's artifacts (Step.Upload) in dir, which must exist: one
// directory per artifact, named by it, holding its files at their workspace paths; the
// record's ArtifactRecord.Dir says where. The run leaves them there. The default is to keep
// them only while the run goes on.
func WithArtifactDir(dir string) RunOption {
	return func(o *runOptions) error {
		if !filepath.IsAbs(dir) {
			return fmt.Errorf("%w: WithArtifactDir(%s): must be an absolute path", ErrInvalidOption, dao.Quote(dir))
		}
		o.artifactDir = filepath.Clean(dir)
		return nil
	}
}

// WithWorkspace runs the pipeline in an existing directory, such as a checked-out
// repository, mounted at Workspace in every container step. The run leaves it in place. The
// default is a new empty directory, removed when the run ends.
func WithWorkspace(dir string) RunOption {
	return func(o *runOptions) error {
		if !filepath.IsAbs(dir) {
			return fmt.Errorf("%w: WithWorkspace(%s): must be an absolute path", ErrInvalidOption, dao.Quote(dir))
		}
		o.workspace = filepath.Clean(dir)
		return nil
	}
}

// WithSecrets gives the run its secrets, by name. Steps and services that list a name in
// their Secrets get it in their environment, and every value is masked wherever the run
// would show it: log lines, outputs, reasons and errors. Secrets never come from the
// pipeline's definition. The default is none.
func WithSecrets(secrets map[string]string) RunOption {
	return func(o *runOptions) error {
		for k := range secrets {
			if !envNamePattern.MatchString(k) {
				return fmt.Errorf("%w: WithSecrets: secret name %s: must be a variable name", ErrInvalidOption, dao.Quote(k))
			}
		}
		o.secrets = maps.Clone(secrets)
		return nil
	}
}

// WithLogFunc sets a function that receives every log line of every step as it is read, for
// live display. Calls are never concurrent, and come in order for each step; f must not
// block for long, since it holds up the logs of every step. The default, or a nil f, is none.
func WithLogFunc(f func(LogLine)) RunOption {
	return func(o *runOptions) error {
		o.logf = f
		return nil
	}
}

var runIDPattern = regexp.MustCompile(`^[a-z0-9]{1,16}$`)

// WithRunID sets the run's identifier, which starts the ID of every container of the run:
// 1-16 lowercase letters and digits, unique among the runs that share a containerd
// namespace. The default is 10 random hex digits.
func WithRunID(id string) RunOption {
	return func(o *runOptions) error {
		if !runIDPattern.MatchString(id) {
			return fmt.Errorf("%w: WithRunID(%s): must be 1-16 lowercase letters and digits", ErrInvalidOption, dao.Quote(id))
		}
		o.runID = id
		return nil
	}
}
