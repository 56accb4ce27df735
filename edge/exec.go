package edge

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/pkg/cio"

	"github.com/opendao/dao"
)

// ExecResult is the outcome of a command run in a container.
type ExecResult struct {
	ExitCode int
	// Output is the command's stdout and stderr, cut to its last 4 KiB.
	Output []byte
	// TimedOut is true when the command was killed for running past its timeout.
	TimedOut bool
}

// Exec runs args in the running container, with the container's environment, user and
// working directory, and waits up to timeout for it to exit (then kills it). Health checks
// use it.
func (r *Runtime) Exec(ctx context.Context, id string, args []string, timeout time.Duration) (ExecResult, error) {
	if len(args) == 0 {
		return ExecResult{}, fmt.Errorf("edge: exec in %s: no command: %w", id, dao.ErrInvalid)
	}
	if timeout <= 0 {
		return ExecResult{}, fmt.Errorf("edge: exec in %s: timeout %s: must be positive: %w", id, timeout, dao.ErrInvalid)
	}
	ctx = r.ctx(ctx)
	c, err := r.load(ctx, id)
	if err != nil {
		return ExecResult{}, err
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return ExecResult{}, wrap(err, "edge: exec in %s", id)
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		return ExecResult{}, wrap(err, "edge: exec in %s", id)
	}
	pspec := *spec.Process
	pspec.Args = args
	pspec.Terminal = false
	out := &tailBuffer{max: 4 << 10}
	// Random, so that no two Runtimes (of this program or another) pick the same one for a
	// container: 26 base-32 characters, which containerd's identifiers allow.
	execID := "exec-" + rand.Text()
	// Once the process is asked for, it is seen through to its deletion even when ctx ends
	// meanwhile (a health check stopped as its container is being stopped): a start or a
	// delete cut off half-way leaves a process in the shim that the container's own stop
	// and delete then wait on. execCleanup bounds that.
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout+execCleanup)
	defer cancel()
	proc, err := task.Exec(octx, execID, &pspec, cio.NewCreator(cio.WithStreams(nil, out, out)))
	if err != nil {
		return ExecResult{}, wrap(err, "edge: exec in %s", id)
	}
	exitCh, err := proc.Wait(octx)
	if err != nil {
		_, _ = proc.Delete(octx)
		return ExecResult{}, wrap(err, "edge: exec in %s", id)
	}
	defer func() { _, _ = proc.Delete(octx) }()
	if err := proc.Start(octx); err != nil {
		return ExecResult{}, wrap(err, "edge: exec in %s", id)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var res ExecResult
	select {
	case st := <-exitCh:
		res.ExitCode = int(st.ExitCode())
	case <-timer.C:
		res.TimedOut = true
		_ = proc.Kill(octx, syscall.SIGKILL)
		st := <-exitCh
		res.ExitCode = int(st.ExitCode())
	case <-ctx.Done():
		_ = proc.Kill(octx, syscall.SIGKILL)
		<-exitCh // the deferred delete needs it stopped
		return ExecResult{}, ctx.Err()
	}
	if io := proc.IO(); io != nil {
		io.Wait()
	}
	res.Output = out.Bytes()
	return res, nil
}

// execCleanup is how long an exec's start, kill and delete may take beyond its timeout.
const execCleanup = 10 * time.Second

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf.Bytes()...)
}
