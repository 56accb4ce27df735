package edge

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/hashicorp/go-multierror"
	"github.com/moby/sys/signal"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/opendao/dao"
	"github.com/opendao/dao/registry/ctrd"
	"github.com/opendao/dao/registry/remote"
)

// ContainerState is the state of a container as containerd reports it.
type ContainerState string

// Container states.
const (
	// StateCreated: the container exists and has never been started, or its process was
	// created but not started.
	StateCreated ContainerState = "created"
	// StateRunning: its process runs.
	StateRunning ContainerState = "running"
	// StatePaused: its processes are frozen.
	StatePaused ContainerState = "paused"
	// StateStopped: its process exited; ExitCode says how.
	StateStopped ContainerState = "stopped"
	// StateUnknown: containerd could not tell.
	StateUnknown ContainerState = "unknown"
)

// ContainerStatus is what containerd says of one of the Runtime's containers.
type ContainerStatus struct {
	ID    string
	Image string
	State ContainerState
	// PID is the process ID of the container's main process while it runs.
	PID uint32
	// ExitCode is set when State is StateStopped: the process's exit code, or 128 plus the
	// signal that killed it.
	ExitCode int
	// OOMKilled is true when the kernel killed the container for lack of memory.
	OOMKilled bool
	// CreatedAt is when the container was created; StartedAt when its current process
	// started; FinishedAt when it exited.
	CreatedAt  time.Time
	StartedAt  time.Time
	FinishedAt time.Time
	// Addresses are the container's IP addresses on the Runtime's network.
	Addresses []string
	// SpecHash is SpecHash of the spec the container was created from.
	SpecHash string
	Labels   map[string]string
}

// Reason describes the last exit in a few words: "exited with code 1", "killed by the kernel
// for lack of memory (OOM)", "killed by signal 9".
func (s ContainerStatus) Reason() string {
	switch {
	case s.State != StateStopped:
		return string(s.State)
	case s.OOMKilled:
		return "killed by the kernel for lack of memory (OOM)"
	case s.ExitCode > 128 && s.ExitCode < 128+65:
		return fmt.Sprintf("killed by signal %d", s.ExitCode-128)
	}
	return fmt.Sprintf("exited with code %d", s.ExitCode)
}

// CreateOption adds to what Create (and Run) does. An option given a bad value makes Create
// fail with an ErrInvalidOption naming it, before anything is created.
type CreateOption func(*createOptions) error

type createOptions struct {
	labels map[string]string
}

// maxLabelSize is containerd's limit on a label's key and value together.
const maxLabelSize = 4096

// WithLabels adds labels to the container, beyond those of the spec; given more than once,
// the labels add up. Keys may use dao.LabelPrefix: this is how Dao's own packages mark what
// a container is for; the labels Create sets itself (LabelManaged, LabelSpecHash and the
// like) win over these. An empty key, or a key and value longer than containerd allows
// (4096 bytes together), is refused. The default adds none.
func WithLabels(labels map[string]string) CreateOption {
	return func(o *createOptions) error {
		for k, v := range labels {
			if k == "" {
				return optionError("WithLabels", "empty key")
			}
			if len(k)+len(v) > maxLabelSize {
				return optionError("WithLabels", "label %.40q: key and value longer than %d bytes", k, maxLabelSize)
			}
		}
		if o.labels == nil {
			o.labels = map[string]string{}
		}
		for k, v := range labels {
			o.labels[k] = v
		}
		return nil
	}
}

// Run creates the container id from spec and starts it.
func (r *Runtime) Run(ctx context.Context, id string, spec dao.ContainerSpec, opts ...CreateOption) (ContainerStatus, error) {
	if err := r.Create(ctx, id, spec, opts...); err != nil {
		return ContainerStatus{}, err
	}
	return r.Start(ctx, id)
}

// Create creates the container id from spec without starting it. The spec is validated first:
// an invalid spec returns its *dao.ValidationError and creates nothing. The spec's image must
// be in containerd's image store; it is unpacked into the snapshotter when needed.
func (r *Runtime) Create(ctx context.Context, id string, spec dao.ContainerSpec, opts ...CreateOption) error {
	if err := r.isClosed(); err != nil {
		return err
	}
	if err := validID(id); err != nil {
		return err
	}
	if err := spec.Validate(); err != nil {
		return err
	}
	var o createOptions
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return fmt.Errorf("edge: create %s: %w", id, err)
		}
	}
	if len(portMappings(spec.Ports)) > 0 && r.cni == nil && !spec.HostNetwork {
		return fmt.Errorf("create %s: %w", id, ErrNoNetwork)
	}
	labels, err := containerLabels(&spec, o.labels)
	if err != nil {
		return err
	}
	ctx = r.ctx(ctx)
	img, err := r.image(ctx, spec.Image)
	if err != nil {
		return err
	}
	ociOpts := specOpts(&spec, img, id)
	unlock, err := r.busy.lock(ctx, id)
	if err != nil {
		return fmt.Errorf("edge: create %s: %w", id, err)
	}
	defer unlock()
	// From here on nothing is cut off half-way: a network attached, or a snapshot made,
	// for a container that is then not made would stay behind.
	dctx, cancel := detached(ctx)
	defer cancel()
	var net *attachment
	if r.cni != nil && !spec.HostNetwork {
		// An existing container keeps its network: do not attach a second one.
		if _, err := r.client.LoadContainer(ctx, id); err == nil {
			return fmt.Errorf("edge: create %s: %w", id, ErrAlreadyExists)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("edge: create %s: %w", id, err)
		}
		if net, err = r.attach(dctx, id, &spec); err != nil {
			return err
		}
		ociOpts = append(ociOpts, net.specOpts()...)
		for k, v := range net.labels() {
			labels[k] = v
		}
	}
	if err := ctx.Err(); err != nil && net == nil {
		return fmt.Errorf("edge: create %s: %w", id, err)
	}
	_, err = r.client.NewContainer(dctx, id,
		client.WithImage(img),
		client.WithSnapshotter(r.opts.snapshotter),
		client.WithNewSnapshot(id, img),
		client.WithRuntime(r.opts.runtime, nil),
		client.WithNewSpec(ociOpts...),
		client.WithContainerLabels(labels),
	)
	if err != nil {
		if errdefs.IsAlreadyExists(err) {
			// Made by another program meanwhile (this one's creations of id take turns):
			// the snapshot and the network are that one's. The namespace is this one's.
			var undo error
			if net != nil {
				if nerr := net.netns.Remove(); nerr != nil {
					undo = fmt.Errorf("edge: create %s: undo: remove its network namespace: %w", id, nerr)
				}
			}
			return withCleanup(wrap(err, "edge: create %s", id), undo)
		}
		// containerd may have made it and gone away before it answered (it restarted):
		// then the container is there, with this snapshot and network, and is kept.
		if _, lerr := r.client.LoadContainer(dctx, id); lerr == nil {
			r.log.Warn("container made although its creation failed; keeping it", "id", id, "err", err)
			return nil
		}
		// Undo what was done for it: the snapshot and the network.
		var undo []error
		if serr := r.client.SnapshotService(r.opts.snapshotter).Remove(dctx, id); serr != nil && !errdefs.IsNotFound(serr) {
			undo = append(undo, wrap(serr, "edge: create %s: undo: remove its snapshot", id))
		}
		if net != nil {
			if derr := r.detach(dctx, id, net.labels()); derr != nil {
				undo = append(undo, fmt.Errorf("edge: create %s: undo: %w", id, derr))
			}
		}
		return withCleanup(wrap(err, "edge: create %s", id), undo...)
	}
	return nil
}

// withCleanup returns err, the error of a step that failed, together with the errors of the
// cleanups after it that failed too, if any: errors.Is and errors.As see each of them (a
// *multierror.Error). With no failed cleanup it returns err as it is.
func withCleanup(err error, cleanups ...error) error {
	var errs *multierror.Error
	for _, c := range cleanups {
		if c != nil {
			errs = multierror.Append(errs, c)
		}
	}
	if errs == nil {
		return err
	}
	return multierror.Append(err, errs.Errors...)
}

// imageCache remembers images found unpacked, so that starting many containers of one image
// reads the image store once.
type imageCache struct {
	mu       sync.Mutex
	unpacked map[string]string // image name -> target digest known to be unpacked
}

// image finds ref in the image store (as written, or in its normalised form such as
// docker.io/library/busybox:latest) and makes sure it is unpacked.
func (r *Runtime) image(ctx context.Context, ref string) (client.Image, error) {
	img, err := r.client.GetImage(ctx, ref)
	if errdefs.IsNotFound(err) {
		if named, perr := reference.ParseNormalizedNamed(ref); perr == nil {
			if n := reference.TagNameOnly(named).String(); n != ref {
				img, err = r.client.GetImage(ctx, n)
			}
		}
	}
	if errdefs.IsNotFound(err) && r.opts.puller != nil {
		if img, err = r.pull(ctx, ref); err != nil {
			return nil, err
		}
	}
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("%w: %s (pull or import it first)", ErrImageNotFound, ref)
		}
		return nil, fmt.Errorf("edge: image %s: %w", ref, err)
	}
	target := img.Target().Digest.String()
	r.images.mu.Lock()
	known := r.images.unpacked[img.Name()] == target
	r.images.mu.Unlock()
	if known {
		return img, nil
	}
	ok, err := img.IsUnpacked(ctx, r.opts.snapshotter)
	if err != nil {
		return nil, fmt.Errorf("edge: image %s: %w", ref, err)
	}
	if !ok {
		if err := img.Unpack(ctx, r.opts.snapshotter); err != nil {
			return nil, fmt.Errorf("edge: unpack image %s: %w", ref, err)
		}
	}
	r.images.mu.Lock()
	if r.images.unpacked == nil {
		r.images.unpacked = map[string]string{}
	}
	r.images.unpacked[img.Name()] = target
	r.images.mu.Unlock()
	return img, nil
}

// setLabels sets labels of the container, keeping its others.
func (r *Runtime) setLabels(ctx context.Context, id string, labels map[string]string) error {
	ctx = r.ctx(ctx)
	c, err := r.load(ctx, id)
	if err != nil {
		return err
	}
	_, err = c.SetLabels(ctx, labels)
	return wrap(err, "edge: set labels of %s", id)
}

// pull fetches ref with the Runtime's puller. An image the registry does not have is
// ErrImageNotFound; other failures (an unreachable registry) are returned as they are, and
// a caller may try again.
func (r *Runtime) pull(ctx context.Context, ref string) (client.Image, error) {
	r.log.Info("pulling image", "ref", ref)
	rec, err := r.opts.puller.Pull(ctx, r.client, ref, ctrd.WithUnpack(r.opts.snapshotter))
	if err != nil {
		if up := remote.Upstream(err); errors.Is(up, remote.ErrNotFound) || errors.Is(up, remote.ErrManifestUnknown) {
			return nil, fmt.Errorf("%w: %s: %w", ErrImageNotFound, ref, err)
		}
		return nil, fmt.Errorf("edge: pull %s: %w", ref, err)
	}
	return client.NewImage(r.client, rec), nil
}

// Start starts the container's process, writing its output to its log file. A container
// whose process exited is started again on the same root filesystem, like `docker start`.
// Starting a running container does nothing. If containerd goes away in the middle (it
// restarts), Start finds out what became of the process once containerd is back, and
// finishes the start or reports the process that runs; a task bundle a killed containerd
// left behind with no shim in it (see bundle.go) is removed first.
func (r *Runtime) Start(ctx context.Context, id string) (ContainerStatus, error) {
	if err := r.isClosed(); err != nil {
		return ContainerStatus{}, err
	}
	if err := validID(id); err != nil {
		return ContainerStatus{}, err
	}
	unlock, err := r.busy.lock(ctx, id)
	if err != nil {
		return ContainerStatus{}, fmt.Errorf("edge: start %s: %w", id, err)
	}
	defer unlock()
	ctx = r.ctx(ctx)
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		st, err := r.start(ctx, id)
		if err == nil || !errdefs.IsUnavailable(err) || attempt == 5 {
			return st, err
		}
		r.log.Warn("containerd went away while starting a container; trying again", "id", id, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return st, err
		}
		wait *= 2
	}
}

// start starts the container once. The caller holds the container's lock. It looks with
// ctx, and once it acts (deletes an exited process, creates or starts the task) it goes on
// to the end whatever becomes of ctx (see detached): what it returns is then what is so.
func (r *Runtime) start(ctx context.Context, id string) (ContainerStatus, error) {
	c, err := r.load(ctx, id)
	if err != nil {
		return ContainerStatus{}, err
	}
	// A restart is on this path: it asks containerd as little as it can, once for the task's
	// status and once to delete its exited process.
	st, _, err := r.taskStatus(ctx, id)
	if err == nil || errdefs.IsNotFound(err) {
		if cerr := ctx.Err(); cerr != nil {
			return ContainerStatus{}, fmt.Errorf("edge: start %s: %w", id, cerr)
		}
	}
	outer := ctx
	ctx, cancel := detached(ctx)
	defer cancel()
	switch {
	case err == nil:
		switch st.Status {
		case client.Running, client.Paused, client.Pausing:
			return r.Status(outer, id)
		case client.Created:
			task, err := c.Task(ctx, nil)
			if err != nil {
				return ContainerStatus{}, wrap(err, "edge: start %s", id)
			}
			return r.startTask(ctx, c, task)
		}
		// Stopped (or its shim gone): the task service deletes it as Task.Delete would,
		// without asking for its status again first.
		_, err := r.client.TaskService().Delete(ctx, &tasksapi.DeleteTaskRequest{ContainerID: id})
		if err := native(err); err != nil && !errdefs.IsNotFound(err) {
			return ContainerStatus{}, wrap(err, "edge: start %s: delete exited process", id)
		}
	case !errdefs.IsNotFound(err):
		return ContainerStatus{}, wrap(err, "edge: start %s", id)
	}
	if err := outer.Err(); err != nil {
		// No process now: a place to stop at that leaves nothing half-done.
		return ContainerStatus{}, fmt.Errorf("edge: start %s: %w", id, err)
	}
	r.clearOOM(ctx, c)
	task, err := r.newTask(ctx, c)
	if errdefs.IsAlreadyExists(err) {
		// containerd restarted while the task was being created: its runtime holds a task
		// that the task service cannot load. Delete that husk and create the task again.
		r.log.Warn("deleting a half-created task left by a containerd restart", "id", id)
		_, _ = r.client.TaskService().Delete(ctx, &tasksapi.DeleteTaskRequest{ContainerID: id})
		task, err = r.newTask(ctx, c)
	}
	if bundle := staleBundle(err, r.opts.namespace, id); bundle != "" {
		// containerd went down while it made the task's bundle, and could not clean it up
		// when it came back: every new task of the container fails on it, until the next
		// restart of containerd, which fails the same way. Remove it, if no shim uses it.
		if rerr := removeStaleBundle(bundle); rerr != nil {
			r.log.Warn("a stale task bundle blocks the container", "id", id, "bundle", bundle, "err", rerr)
		} else {
			r.log.Warn("removed a stale task bundle left by a containerd restart", "id", id, "bundle", bundle)
			task, err = r.newTask(ctx, c)
		}
	}
	if err != nil {
		return ContainerStatus{}, wrap(err, "edge: start %s", id)
	}
	return r.startTask(ctx, c, task)
}

func (r *Runtime) startTask(ctx context.Context, c client.Container, task client.Task) (ContainerStatus, error) {
	if err := task.Start(ctx); err != nil {
		if !errdefs.IsUnavailable(err) {
			_, _ = task.Delete(ctx, client.WithProcessKill)
		} // else the process may run: Start looks again once containerd is back
		return ContainerStatus{}, wrap(err, "edge: start %s", c.ID())
	}
	st := ContainerStatus{
		ID:        c.ID(),
		State:     StateRunning,
		PID:       task.Pid(),
		StartedAt: processStart(task.Pid()),
	}
	// The metadata LoadContainer fetched: no further call to containerd.
	if info, err := c.Info(ctx, client.WithoutRefreshedMetadata); err == nil {
		st.Image, st.CreatedAt, st.Labels, st.SpecHash = info.Image, info.CreatedAt, info.Labels, info.Labels[LabelSpecHash]
		if a := info.Labels[LabelAddresses]; a != "" {
			st.Addresses = strings.Split(a, ",")
		}
	}
	return st, nil
}

// StopOption changes how Stop stops a container. An option given a bad value makes Stop fail
// with an ErrInvalidOption naming it, before the container is signalled.
type StopOption func(*stopOptions) error

type stopOptions struct {
	grace  time.Duration
	signal string
}

// WithGracePeriod sets how long Stop waits after the stop signal before it kills the
// container with SIGKILL; 0 kills it at once. A negative period is refused. The default is
// the spec's (dao.ContainerSpec.StopGracePeriod, or dao.DefaultStopGracePeriod).
func WithGracePeriod(d time.Duration) StopOption {
	return func(o *stopOptions) error {
		if d < 0 {
			return optionError(fmt.Sprintf("WithGracePeriod(%s)", d), "must not be negative")
		}
		o.grace = d
		return nil
	}
}

// WithStopSignal sets the signal Stop sends first, by name ("SIGTERM", "TERM", "SIGINT") or
// number ("15"). An empty or unknown signal is refused. The default is the spec's
// (dao.ContainerSpec.StopSignal), or SIGTERM.
func WithStopSignal(sig string) StopOption {
	return func(o *stopOptions) error {
		if _, err := signal.ParseSignal(sig); err != nil || sig == "" {
			return optionError(fmt.Sprintf("WithStopSignal(%q)", sig), "not a signal")
		}
		o.signal = sig
		return nil
	}
}

// Stop asks the container to stop with its stop signal (SIGTERM unless the spec said
// otherwise) and kills it with SIGKILL when it is still running after its grace period. It
// returns the container's status after the exit. Stopping a stopped container does nothing.
func (r *Runtime) Stop(ctx context.Context, id string, opts ...StopOption) (ContainerStatus, error) {
	if err := r.isClosed(); err != nil {
		return ContainerStatus{}, err
	}
	if err := validID(id); err != nil {
		return ContainerStatus{}, err
	}
	unlock, err := r.busy.lock(ctx, id)
	if err != nil {
		return ContainerStatus{}, fmt.Errorf("edge: stop %s: %w", id, err)
	}
	defer unlock()
	ctx = r.ctx(ctx)
	c, err := r.load(ctx, id)
	if err != nil {
		return ContainerStatus{}, err
	}
	labels, err := c.Labels(ctx)
	if err != nil {
		return ContainerStatus{}, wrap(err, "edge: stop %s", id)
	}
	var o stopOptions
	o.signal, o.grace = stopSettings(labels)
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return ContainerStatus{}, fmt.Errorf("edge: stop %s: %w", id, err)
		}
	}
	sig, err := signal.ParseSignal(o.signal)
	if err != nil {
		return ContainerStatus{}, fmt.Errorf("edge: stop %s: signal %q: %w", id, o.signal, err)
	}
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return r.Status(ctx, id)
	}
	if err != nil {
		return ContainerStatus{}, wrap(err, "edge: stop %s", id)
	}
	exited := r.exitSignal(id)
	st, err := task.Status(ctx)
	if err != nil {
		return ContainerStatus{}, wrap(err, "edge: stop %s", id)
	}
	if st.Status == client.Stopped {
		return r.Status(ctx, id)
	}
	if st.Status == client.Created {
		// Never started: nothing to signal.
		dctx, cancel := detached(ctx)
		defer cancel()
		if _, err := task.Delete(dctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return ContainerStatus{}, wrap(err, "edge: stop %s", id)
		}
		return r.Status(ctx, id)
	}
	if err := task.Kill(ctx, sig); err != nil && !errdefs.IsNotFound(err) {
		return ContainerStatus{}, wrap(err, "edge: stop %s: signal %s", id, o.signal)
	}
	if !r.waitExit(ctx, task, exited, o.grace) {
		exited = r.exitSignal(id)
		if err := task.Kill(ctx, syscall.SIGKILL, client.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
			return ContainerStatus{}, wrap(err, "edge: stop %s: SIGKILL", id)
		}
		if !r.waitExit(ctx, task, exited, 30*time.Second) {
			return ContainerStatus{}, fmt.Errorf("edge: stop %s: still running 30s after SIGKILL: %w", id, context.DeadlineExceeded)
		}
	}
	return r.Status(ctx, id)
}

// waitExit waits up to d for the task to stop, woken by the exit event. The status is read
// again on every wake-up, since a resync or a missed event wakes it too.
func (r *Runtime) waitExit(ctx context.Context, task client.Task, exited <-chan struct{}, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		if st, err := task.Status(ctx); err != nil && errdefs.IsNotFound(err) || err == nil && st.Status == client.Stopped {
			return true
		}
		select {
		case <-exited:
			exited = r.exitSignal(task.ID())
		case <-timer.C:
			st, err := task.Status(ctx)
			return err == nil && st.Status == client.Stopped
		case <-ctx.Done():
			return false
		}
	}
}

// Remove deletes a container that does not run, with everything it had: its task (a process
// created and never started is killed, and waited for), its network namespace and address,
// its root filesystem snapshot and its log files. A running container is not removed: Stop
// it first (ErrRunning). A Start, Create or Stop of the container under way in this Runtime
// finishes first, so that Remove sees the task it made; and once begun, Remove is not cut
// off half-way by ctx, since containerd cannot reach a task whose container is gone (its shim
// would run on, with its mounts and cgroups).
func (r *Runtime) Remove(ctx context.Context, id string) error {
	if err := r.isClosed(); err != nil {
		return err
	}
	if err := validID(id); err != nil {
		return err
	}
	unlock, err := r.busy.lock(ctx, id)
	if err != nil {
		return fmt.Errorf("edge: remove %s: %w", id, err)
	}
	defer unlock()
	ctx = r.ctx(ctx)
	c, err := r.load(ctx, id)
	if err != nil {
		return err
	}
	ctx, cancel := detached(ctx)
	defer cancel()
	if err := r.deleteTask(ctx, c); err != nil {
		return err
	}
	labels, err := c.Labels(ctx)
	if err != nil && !errdefs.IsNotFound(err) {
		return wrap(err, "edge: remove %s", id)
	}
	if err := r.detach(ctx, id, labels); err != nil {
		return err
	}
	if err := c.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return wrap(err, "edge: remove %s", id)
	}
	r.mu.Lock()
	delete(r.oom, id)
	delete(r.noOOM, id)
	waiters := r.waiters[id]
	delete(r.waiters, id)
	r.mu.Unlock()
	for _, w := range waiters {
		close(w) // a Wait or Stop of the container looks again, and finds it gone
	}
	r.removeLogs(id)
	return nil
}

// deleteTask deletes the container's task, if it has one that does not run: a stopped one,
// one created and never started (killed first, and waited for), or one whose shim is gone.
// A running or paused task is ErrRunning.
func (r *Runtime) deleteTask(ctx context.Context, c client.Container) error {
	id := c.ID()
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return wrap(err, "edge: remove %s", id)
	}
	st, err := task.Status(ctx)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return wrap(err, "edge: remove %s", id)
	}
	switch st.Status {
	case client.Running, client.Paused, client.Pausing:
		return fmt.Errorf("edge: remove %s: %w; stop it first", id, ErrRunning)
	}
	_, err = task.Delete(ctx, client.WithProcessKill)
	if err != nil && !errdefs.IsNotFound(err) {
		// A task in an unknown state (its shim died) may still be deleted by the task
		// service, which cleans up after the shim.
		r.log.Warn("delete task; asking the task service", "id", id, "status", st.Status, "err", err)
		_, err = r.client.TaskService().Delete(ctx, &tasksapi.DeleteTaskRequest{ContainerID: id})
		if err != nil && status.Code(err) != codes.NotFound {
			return fmt.Errorf("edge: remove %s: delete its task: %w", id, native(err))
		}
	}
	// The container goes only once it has no task: containerd could not reach one after.
	if _, err := c.Task(ctx, nil); err == nil {
		return fmt.Errorf("edge: remove %s: its task is still there after its deletion", id)
	}
	return nil
}

// taskStatus asks containerd's task service for the status and PID of the container's task,
// in one call (Container.Task and then Task.Status make two). A container without a task is
// errdefs.ErrNotFound.
func (r *Runtime) taskStatus(ctx context.Context, id string) (client.Status, uint32, error) {
	resp, err := r.client.TaskService().Get(ctx, &tasksapi.GetRequest{ContainerID: id})
	if err != nil {
		return client.Status{}, 0, native(err)
	}
	p := resp.Process
	return client.Status{
		Status:     client.ProcessStatus(strings.ToLower(p.GetStatus().String())),
		ExitStatus: p.GetExitStatus(),
		ExitTime:   p.GetExitedAt().AsTime(),
	}, p.GetPid(), nil
}

// Status returns the container's status.
func (r *Runtime) Status(ctx context.Context, id string) (ContainerStatus, error) {
	ctx = r.ctx(ctx)
	c, err := r.load(ctx, id)
	if err != nil {
		return ContainerStatus{}, err
	}
	return r.status(ctx, c)
}

// List returns the status of every container the Runtime's namespace holds that Dao created.
func (r *Runtime) List(ctx context.Context) ([]ContainerStatus, error) {
	ctx = r.ctx(ctx)
	cs, err := r.client.Containers(ctx, fmt.Sprintf("labels.%q==true", LabelManaged))
	if err != nil {
		return nil, wrap(err, "edge: list containers")
	}
	out := make([]ContainerStatus, 0, len(cs))
	for _, c := range cs {
		st, err := r.status(ctx, c)
		if errdefs.IsNotFound(err) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// load finds a container of ours.
func (r *Runtime) load(ctx context.Context, id string) (client.Container, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return nil, wrap(err, "edge: container %s", id)
	}
	return c, nil
}

func (r *Runtime) status(ctx context.Context, c client.Container) (ContainerStatus, error) {
	info, err := c.Info(ctx, client.WithoutRefreshedMetadata)
	if err != nil {
		return ContainerStatus{}, wrap(err, "edge: container %s", c.ID())
	}
	if info.Labels[LabelManaged] != "true" {
		return ContainerStatus{}, fmt.Errorf("edge: container %s: %w", c.ID(), ErrNotOwned)
	}
	s := ContainerStatus{
		ID:        c.ID(),
		Image:     info.Image,
		State:     StateCreated,
		CreatedAt: info.CreatedAt,
		SpecHash:  info.Labels[LabelSpecHash],
		Labels:    info.Labels,
	}
	if a := info.Labels[LabelAddresses]; a != "" {
		s.Addresses = strings.Split(a, ",")
	}
	st, pid, err := r.taskStatus(ctx, c.ID())
	if errdefs.IsNotFound(err) {
		return s, nil
	}
	if err != nil {
		return ContainerStatus{}, wrap(err, "edge: container %s", c.ID())
	}
	switch st.Status {
	case client.Running:
		s.State = StateRunning
		s.PID = pid
		s.StartedAt = processStart(s.PID)
	case client.Paused, client.Pausing:
		s.State = StatePaused
		s.PID = pid
		s.StartedAt = processStart(s.PID)
	case client.Created:
		s.State = StateCreated
	case client.Stopped:
		s.State = StateStopped
		s.ExitCode = int(st.ExitStatus)
		s.FinishedAt = st.ExitTime
		r.mu.Lock()
		_, s.OOMKilled = r.oom[c.ID()]
		r.mu.Unlock()
		if info.Labels[LabelOOMKilled] != "" {
			s.OOMKilled = true
		}
		if !s.OOMKilled && s.ExitCode == sigkillExit && !r.checkedNoOOM(c.ID(), st.ExitTime) {
			if oom, _ := r.cgroupOOMKilled(ctx, c.ID()); oom {
				s.OOMKilled = true
				r.markOOM(c.ID(), true)
			}
		}
	default:
		s.State = StateUnknown
	}
	return s, nil
}

var bootTime = sync.OnceValue(func() time.Time {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			if sec, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				return time.Unix(sec, 0)
			}
		}
	}
	return time.Time{}
})

// clockTicks is USER_HZ, 100 on every Linux that Dao runs on.
const clockTicks = 100

// processStart reads when a process started from /proc, to 10ms. containerd runs on this
// machine, so the container's PID is one of ours to read; the zero time when it cannot be.
func processStart(pid uint32) time.Time {
	if pid == 0 {
		return time.Time{}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return time.Time{}
	}
	// The command name in parentheses may hold spaces; fields count from after it.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return time.Time{}
	}
	f := strings.Fields(s[i+1:])
	const startTimeField = 19 // field 22 of stat, counted from field 3 (state)
	if len(f) <= startTimeField {
		return time.Time{}
	}
	ticks, err := strconv.ParseInt(f[startTimeField], 10, 64)
	if err != nil || bootTime().IsZero() {
		return time.Time{}
	}
	return bootTime().Add(time.Duration(ticks) * time.Second / clockTicks)
}

// Wait blocks until the container's process has exited (or ctx is done) and returns its
// status. It is woken by containerd's exit event, not by polling; it then lets the logger
// finish (a few ms, see settleLog) so that Logs has the last lines. It rides out a restart
// of containerd: the container runs on under its shim, and an exit while containerd was
// down is found when it is back.
func (r *Runtime) Wait(ctx context.Context, id string) (ContainerStatus, error) {
	outage := 50 * time.Millisecond
	for {
		exited := r.exitSignal(id)
		st, err := r.Status(ctx, id)
		if errdefs.IsUnavailable(err) && ctx.Err() == nil {
			// containerd is restarting: the container lives on under its shim. Ask again
			// when the event stream is back (a resync) or after a while.
			select {
			case <-exited:
			case <-time.After(outage):
				outage = min(2*outage, time.Second)
			case <-ctx.Done():
				return ContainerStatus{}, ctx.Err()
			}
			continue
		}
		if err != nil {
			return ContainerStatus{}, err
		}
		if st.State == StateStopped {
			r.settleLog(ctx, id)
			return st, nil
		}
		select {
		case <-exited:
		case <-ctx.Done():
			return st, ctx.Err()
		}
	}
}
