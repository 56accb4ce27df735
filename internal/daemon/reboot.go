package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
)

// runcRoot is where the runc shim keeps runc's state, one directory per namespace: under
// /run, which a reboot empties, and shared by every daemon of the machine.
const runcRoot = "/run/containerd/runc"

// PowerOff does to the daemon what a machine's loss of power does, for tests and benchmarks
// of what survives a reboot: every container process of the namespaces nss (listed through
// cl) and every shim of the daemon are killed with SIGKILL, then the daemon; then the
// daemon's --state directory (a tmpfs on a real machine) is unmounted and emptied, and so is
// runc's state of nss under /run. The root directory (images, snapshots, container records)
// stays, as a disk does. Start brings the daemon back, empty of tasks.
func (c *Containerd) PowerOff(cl *client.Client, nss ...string) error {
	for _, ns := range nss {
		ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), ns), 10*time.Second)
		cs, err := cl.Containers(ctx)
		for _, ctr := range cs {
			if task, err := ctr.Task(ctx, nil); err == nil && task.Pid() != 0 {
				_ = syscall.Kill(int(task.Pid()), syscall.SIGKILL)
			}
		}
		cancel()
		if err != nil {
			return fmt.Errorf("daemon: power off: list containers of %s: %w", ns, err)
		}
	}
	for _, pid := range shimsOf(c.Address) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	c.Kill()
	state := filepath.Join(c.Dir, "state")
	unmountUnder(state)
	if err := os.RemoveAll(state); err != nil {
		return fmt.Errorf("daemon: power off: %w", err)
	}
	if err := os.MkdirAll(state, 0o711); err != nil {
		return fmt.Errorf("daemon: power off: %w", err)
	}
	for _, ns := range nss {
		if err := os.RemoveAll(filepath.Join(runcRoot, ns)); err != nil {
			return fmt.Errorf("daemon: power off: %w", err)
		}
	}
	return nil
}

// shimsOf returns the process IDs of the shims serving the daemon at address.
func shimsOf(address string) []int {
	var out []int
	files, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) == 0 || !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") || !slices.Contains(args, address) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(f))); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// RunningTasks returns the process ID of every running task of ctx's containerd namespace,
// by container ID, as containerd reports them: what tests and benchmarks check a node
// against, rather than the node's own bookkeeping.
func RunningTasks(ctx context.Context, cl *client.Client) (map[string]uint32, error) {
	cs, err := cl.Containers(ctx)
	if err != nil {
		return nil, fmt.Errorf("daemon: list containers: %w", err)
	}
	out := map[string]uint32{}
	for _, c := range cs {
		task, err := c.Task(ctx, nil)
		if err != nil {
			continue
		}
		if st, err := task.Status(ctx); err == nil && st.Status == client.Running {
			out[c.ID()] = task.Pid()
		}
	}
	return out, nil
}
