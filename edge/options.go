package edge

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"

	"github.com/opendao/dao/registry/ctrd"
)

// Defaults of a Runtime.
const (
	// DefaultNamespace is the containerd namespace a Runtime works in.
	DefaultNamespace = "dao"
	// DefaultSnapshotter unpacks images and holds container root filesystems.
	DefaultSnapshotter = "overlayfs"
	// DefaultLogDir holds the containers' log files.
	DefaultLogDir = "/var/log/dao/containers"
	// DefaultLogMaxSize is the size at which a container's log file is rotated.
	DefaultLogMaxSize = 10 << 20
	// DefaultRuntimeName is the containerd runtime (shim) that runs containers.
	DefaultRuntimeName = "io.containerd.runc.v2"
	// DefaultSubscribeBuffer is the number of events a subscriber may leave unreceived
	// before it is dropped (see Runtime.Subscribe).
	DefaultSubscribeBuffer = 1024
)

// Option configures a Runtime.
type Option func(*options) error

type options struct {
	namespace    string
	snapshotter  string
	logDir       string
	loggerBinary string
	logMaxSize   int64
	logCheck     time.Duration
	logger       *slog.Logger
	runtime      string
	network      *Network
	puller       ImagePuller
	subBuffer    int
}

func defaultOptions() options {
	return options{
		namespace:   DefaultNamespace,
		snapshotter: DefaultSnapshotter,
		logDir:      DefaultLogDir,
		logMaxSize:  DefaultLogMaxSize,
		logCheck:    time.Second,
		logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		runtime:     DefaultRuntimeName,
		subBuffer:   DefaultSubscribeBuffer,
	}
}

// WithNamespace sets the containerd namespace the Runtime creates and lists containers in.
// The default is DefaultNamespace ("dao").
func WithNamespace(ns string) Option {
	return func(o *options) error {
		if ns == "" || strings.ContainsAny(ns, "/ \t\n") {
			return optionError(fmt.Sprintf("WithNamespace(%q)", ns), "must be a non-empty name without '/' or spaces")
		}
		o.namespace = ns
		return nil
	}
}

// WithSnapshotter sets the containerd snapshotter. The default is DefaultSnapshotter
// ("overlayfs").
func WithSnapshotter(name string) Option {
	return func(o *options) error {
		if name == "" {
			return optionError(`WithSnapshotter("")`, "must not be empty")
		}
		o.snapshotter = name
		return nil
	}
}

// WithLogDir sets the directory of the containers' log files, created if missing. The
// default is DefaultLogDir (/var/log/dao/containers).
func WithLogDir(dir string) Option {
	return func(o *options) error {
		if !filepath.IsAbs(dir) {
			return optionError(fmt.Sprintf("WithLogDir(%q)", dir), "must be an absolute path")
		}
		o.logDir = filepath.Clean(dir)
		return nil
	}
}

// WithLoggerBinary sets the logger program that containerd's shim starts for each container
// to append its output to its log file: dao-shim-logger (go install
// github.com/opendao/dao/edge/cmd/dao-shim-logger), or a program that imports package edge.
// The path must be absolute, name an executable file, and be the same for containerd as for
// this process. By default the Runtime uses dao-shim-logger when it is beside the program's
// executable or on PATH, else the program's own executable if it is statically linked, else
// (and when the shim cannot start the one found) a shell script in the log directory: see
// "Logs" in the package documentation.
func WithLoggerBinary(path string) Option {
	return func(o *options) error {
		if !filepath.IsAbs(path) {
			return optionError(fmt.Sprintf("WithLoggerBinary(%q)", path), "must be an absolute path")
		}
		o.loggerBinary = filepath.Clean(path)
		return nil
	}
}

// WithLogMaxSize sets the size in bytes at which a container's log is rotated; one rotated
// file is kept, so a container's logs take about twice this on disk, and more only while a
// reader of this Runtime (Logs) is behind: rotation never discards what a reader has still
// to read. The default is DefaultLogMaxSize (10 MiB); the least is 4 KiB.
func WithLogMaxSize(bytes int64) Option {
	return func(o *options) error {
		if bytes < 4<<10 {
			return optionError(fmt.Sprintf("WithLogMaxSize(%d)", bytes), "must be at least 4096 bytes")
		}
		o.logMaxSize = bytes
		return nil
	}
}

// WithLogCheckInterval sets how often log sizes are checked against the maximum. The default
// is one second.
func WithLogCheckInterval(d time.Duration) Option {
	return func(o *options) error {
		if d < 10*time.Millisecond {
			return optionError(fmt.Sprintf("WithLogCheckInterval(%s)", d), "must be at least 10ms")
		}
		o.logCheck = d
		return nil
	}
}

// WithLogger sets the logger of the Runtime's own messages. The default discards them.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return optionError("WithLogger(nil)", "must not be nil")
		}
		o.logger = l
		return nil
	}
}

// WithRuntimeName sets the containerd runtime (shim) name. The default is
// DefaultRuntimeName ("io.containerd.runc.v2").
func WithRuntimeName(name string) Option {
	return func(o *options) error {
		if name == "" {
			return optionError(`WithRuntimeName("")`, "must not be empty")
		}
		o.runtime = name
		return nil
	}
}

// WithSubscribeBuffer sets how many events each subscriber of the Runtime (Subscribe) may
// leave unreceived: one that lets more wait is dropped with ErrSlowSubscriber, so that the
// Runtime never waits for a reader. The default is DefaultSubscribeBuffer (1024); the least
// is 1.
func WithSubscribeBuffer(events int) Option {
	return func(o *options) error {
		if events < 1 {
			return optionError(fmt.Sprintf("WithSubscribeBuffer(%d)", events), "must be at least 1")
		}
		o.subBuffer = events
		return nil
	}
}

// ImagePuller fetches an image from a registry into a containerd and unpacks it:
// *registry.Client satisfies it.
type ImagePuller interface {
	Pull(ctx context.Context, cc *client.Client, ref string, opts ...ctrd.Option) (images.Image, error)
}

// WithPuller has the Runtime pull the image of a container it is asked to create when its
// containerd does not have it, with p (a *registry.Client, with its hosts, mirrors and
// credentials), unpacking it into the Runtime's snapshotter. Containers of one image created
// at once share one pull. The default is no pulling: Create fails with ErrImageNotFound.
func WithPuller(p ImagePuller) Option {
	return func(o *options) error {
		if p == nil {
			return optionError("WithPuller(nil)", "must not be nil")
		}
		o.puller = p
		return nil
	}
}
