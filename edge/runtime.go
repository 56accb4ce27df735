package edge

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	gocni "github.com/containerd/go-cni"
	"google.golang.org/grpc"
)

// Runtime runs one node's containers on containerd: it creates them from dao.ContainerSpec
// values, starts, stops and removes them, reports their status, exits and OOM kills from
// containerd's event stream, keeps their logs in size-capped files and reads their metrics.
//
// Containers outlive the Runtime: they run under containerd's shims, write their logs
// themselves and are found again by a new Runtime on the same namespace (see List). Closing a
// Runtime stops none of them; Close waits for every goroutine the Runtime started.
//
// A Runtime is safe for simultaneous use.
type Runtime struct {
	client    *client.Client
	ownClient bool
	opts      options
	log       *slog.Logger

	images   imageCache
	cni      gocni.CNI    // nil without a network
	loggers  []shimLogger // the loggers to start containers with, preferred first (see logger.go)
	loggerAt atomic.Int32 // index of the one in use
	readers  logReaders
	punch    punchCache

	// busy serialises what changes one container (Create, Start, Stop, Remove), so that a
	// start under way when a removal begins has finished, its task visible to the removal,
	// before the removal looks.
	busy idLocks

	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	waiters map[string][]chan struct{}
	oom     map[string]oomMark // containers the kernel OOM-killed, by ID, until restarted
	// noOOM holds, by container ID, the exit time of the last exit that the event loop
	// found was no OOM kill in the cgroup: status need not ask the cgroup again.
	noOOM  map[string]time.Time
	closed bool

	// bg is the context of the Runtime's background work, ended by Close (stop); wg counts
	// every goroutine the Runtime started (see background), which Close waits for.
	bg   context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// New connects to the containerd at address (a unix socket path) and returns a Runtime over
// it. Close closes the connection. containerd must answer now; once it has, a restart of
// containerd is routine: calls made while it is down wait for it to come back (up to their
// context's deadline) instead of failing, and Wait and the event stream carry on.
func New(address string, opts ...Option) (*Runtime, error) {
	c, err := client.New(address, client.WithTimeout(10*time.Second),
		client.WithCallOpts([]grpc.CallOption{grpc.WaitForReady(true)}))
	if err != nil {
		return nil, fmt.Errorf("edge: connect to containerd at %s: %w", address, err)
	}
	r, err := NewFromClient(c, opts...)
	if err != nil {
		c.Close()
		return nil, err
	}
	r.ownClient = true
	return r, nil
}

// NewFromClient returns a Runtime over an existing containerd client, which the caller keeps
// and closes. For calls that ride out a restart of containerd as New's do, make the client
// with client.WithCallOpts([]grpc.CallOption{grpc.WaitForReady(true)}); Wait does in any case.
func NewFromClient(c *client.Client, opts ...Option) (*Runtime, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(o.logDir, 0o750); err != nil {
		return nil, fmt.Errorf("edge: log dir: %w", err)
	}
	loggers, err := chooseLoggers(o)
	if err != nil {
		return nil, err
	}
	var cni gocni.CNI
	if o.network != nil {
		var err error
		if cni, err = newCNI(o.network); err != nil {
			return nil, err
		}
	}
	bg, cancel := context.WithCancel(context.Background())
	r := &Runtime{
		loggers: loggers,
		cni:     cni,
		client:  c,
		opts:    o,
		log:     o.logger,
		subs:    map[*subscriber]struct{}{},
		waiters: map[string][]chan struct{}{},
		oom:     map[string]oomMark{},
		noOOM:   map[string]time.Time{},
		bg:      bg,
		stop:    cancel,
	}
	ready := make(chan struct{})
	r.background(func(ctx context.Context) { r.eventLoop(ctx, ready) })
	r.background(r.logLoop)
	// Wait until the first subscription is in place (or failed), so that no exit of a container
	// started right after New is missed.
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
	}
	return r, nil
}

// Client returns the containerd client the Runtime uses.
func (r *Runtime) Client() *client.Client { return r.client }

// Namespace returns the containerd namespace the Runtime works in.
func (r *Runtime) Namespace() string { return r.opts.namespace }

// LogDir returns the directory of the containers' log files.
func (r *Runtime) LogDir() string { return r.opts.logDir }

// Close stops the Runtime's background work (the event stream, log rotation, the recording
// of OOM kills) and waits for every goroutine the Runtime started to end; it ends every
// subscription, each with a last EventError of ErrClosed (see Subscribe), and, if New opened
// the connection to containerd, closes it. Calls that change containers fail with ErrClosed
// afterwards; those under way are not waited for. Containers keep running. Close may be
// called more than once: later calls do nothing and return nil.
func (r *Runtime) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	subs := r.subs
	r.subs = map[*subscriber]struct{}{}
	r.mu.Unlock()
	r.stop()
	for s := range subs {
		r.stopWatching(s)
	}
	r.wg.Wait()
	for s := range subs {
		s.end(ErrClosed)
	}
	if r.ownClient {
		if err := r.client.Close(); err != nil {
			return fmt.Errorf("edge: close the connection to containerd: %w", err)
		}
	}
	return nil
}

// background runs f in a goroutine of the Runtime's, which Close waits for, with a context
// that Close ends. It reports false, and runs nothing, once the Runtime is closed.
func (r *Runtime) background(f func(ctx context.Context)) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		f(r.bg)
	}()
	return true
}

// ctx adds the Runtime's namespace to ctx.
func (r *Runtime) ctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.opts.namespace)
}

func (r *Runtime) isClosed() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	return nil
}

// idPattern is containerd's rule for identifiers.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$`)

func validID(id string) error {
	if len(id) > 76 || !idPattern.MatchString(id) {
		return fmt.Errorf("%w %q: 1-76 letters and digits, single '.', '_' or '-' between them", errInvalidID, id)
	}
	return nil
}

// idLocks are mutual exclusion locks by container ID, taken while waiting up to a context.
// The zero value is ready for use.
type idLocks struct {
	mu    sync.Mutex
	locks map[string]*idLock
}

type idLock struct {
	ch      chan struct{} // holds a token while the lock is held
	waiters int           // holders and those waiting, so that the last one frees the entry
}

// lock takes the lock of id, waiting until it is free or ctx is done (then it returns ctx's
// error). The returned function releases it.
func (l *idLocks) lock(ctx context.Context, id string) (unlock func(), err error) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*idLock{}
	}
	k := l.locks[id]
	if k == nil {
		k = &idLock{ch: make(chan struct{}, 1)}
		l.locks[id] = k
	}
	k.waiters++
	l.mu.Unlock()
	release := func() {
		l.mu.Lock()
		if k.waiters--; k.waiters == 0 {
			delete(l.locks, id)
		}
		l.mu.Unlock()
	}
	select {
	case k.ch <- struct{}{}:
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
	return func() {
		<-k.ch
		release()
	}, nil
}

// taskOpTimeout bounds the containerd calls that create, start and delete a task, which are
// never cut off by their caller's context (see detached).
const taskOpTimeout = 30 * time.Second

// detached returns a context with ctx's values (the namespace) that ctx's end does not
// cancel, ended after taskOpTimeout. containerd 1.6 does not undo a task creation cut off
// half-way: its shim keeps running with no task to reach it by, and a start or delete cut
// off half-way leaves a task that the next step does not expect. Once such a call is made,
// it is seen through.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), taskOpTimeout)
}
