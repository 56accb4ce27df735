package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
)

// Containerd is a private containerd daemon with its own root, state, socket, config and log
// under Dir.
type Containerd struct {
	// Dir holds root/, state/, config.toml, the socket and the log.
	Dir string
	// Address is the daemon's socket.
	Address string
	// LogPath is the daemon's log file.
	LogPath string

	cmd    *exec.Cmd
	exited chan struct{}
}

// StartContainerd starts a containerd under a new temporary directory (short, since a unix
// socket path holds at most 108 bytes) and waits until it answers.
func StartContainerd() (*Containerd, error) {
	if _, err := exec.LookPath("containerd"); err != nil {
		return nil, fmt.Errorf("daemon: containerd is not installed (Debian package containerd): %w", err)
	}
	reapStale()
	dir, err := os.MkdirTemp("", containerdPrefix)
	if err != nil {
		return nil, err
	}
	if err := writeOwner(dir); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c := &Containerd{
		Dir:     dir,
		Address: filepath.Join(dir, "containerd.sock"),
		LogPath: filepath.Join(dir, "containerd.log"),
	}
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(c.config()), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := c.Start(); err != nil {
		log := c.Log()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%w\n%s", err, log)
	}
	return c, nil
}

// config points CNI at Debian's plugins and keeps everything under c.Dir.
func (c *Containerd) config() string {
	return fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q

[grpc]
  address = %[3]q

[plugins."io.containerd.grpc.v1.cri"]
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[4]q
`, filepath.Join(c.Dir, "root"), filepath.Join(c.Dir, "state"), c.Address, filepath.Join(c.Dir, "cni"))
}

// Start starts the daemon (again) and waits up to 20s until it answers.
func (c *Containerd) Start() error {
	if c.cmd != nil {
		return errors.New("daemon: containerd is already running")
	}
	logf, err := os.OpenFile(c.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command("containerd", "--config", filepath.Join(c.Dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a Ctrl-C meant for the program does not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("daemon: start containerd: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for c.ping() != nil {
		select {
		case <-exited:
			return errors.New("daemon: containerd exited while starting")
		case <-time.After(25 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return errors.New("daemon: containerd did not answer within 20s")
		}
	}
	c.cmd, c.exited = cmd, exited
	return nil
}

func (c *Containerd) ping() error {
	if _, err := os.Stat(c.Address); err != nil {
		return err
	}
	cl, err := client.New(c.Address, client.WithTimeout(2*time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ok, err := cl.IsServing(ctx)
	if err == nil && !ok {
		err = errors.New("not serving")
	}
	return err
}

// Stop stops the daemon with SIGTERM (SIGKILL after 10s). Containers keep running under their
// shims, as after a crash or an upgrade of containerd.
func (c *Containerd) Stop() {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		c.cmd = nil
	case <-time.After(10 * time.Second):
		c.Kill()
	}
}

// Restart stops the daemon and starts it again on the same directories.
func (c *Containerd) Restart() error {
	c.Stop()
	return c.Start()
}

// Kill kills the daemon with SIGKILL, as a crash or the OOM killer would (no shutdown, no
// last writes), and waits for it to exit. Containers keep running under their shims; Start
// starts the daemon again on the same directories.
func (c *Containerd) Kill() {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Kill()
	<-c.exited
	c.cmd = nil
}

// Running reports whether the daemon process runs.
func (c *Containerd) Running() bool { return c.cmd != nil }

// Log returns the daemon's log so far.
func (c *Containerd) Log() string {
	b, _ := os.ReadFile(c.LogPath)
	return string(b)
}

// Close kills every container in every namespace, stops the daemon, unmounts what it left
// mounted and removes its directory. A shim that outlived its task (containerd 1.6 loses
// track of one whose creation was cut off) is killed with its container too, and Close
// then returns an error naming it, so that nothing a daemon started stays running.
func (c *Containerd) Close() error {
	if c.cmd != nil {
		if cl, err := client.New(c.Address, client.WithTimeout(5*time.Second)); err == nil {
			KillAll(cl)
			cl.Close()
		}
	}
	c.Stop()
	// Shims exit shortly after their task is deleted: give them a moment.
	left := processesOf(c.Dir)
	for deadline := time.Now().Add(2 * time.Second); len(left) > 0 && time.Now().Before(deadline); left = processesOf(c.Dir) {
		time.Sleep(50 * time.Millisecond)
	}
	var err error
	if len(left) > 0 {
		err = fmt.Errorf("daemon: %d processes outlived containerd in %s, killed: %s", len(left), c.Dir, strings.Join(left, "; "))
		reap(c.Dir)
	}
	c.unmountAll()
	return errors.Join(err, os.RemoveAll(c.Dir))
}

// KillAll kills and deletes every task in every namespace of the daemon behind cl, so no
// shim or container outlives it.
func KillAll(cl *client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nss, err := cl.NamespaceService().List(ctx)
	if err != nil {
		return
	}
	for _, ns := range nss {
		nctx := namespaces.WithNamespace(ctx, ns)
		containers, err := cl.Containers(nctx)
		if err != nil {
			continue
		}
		for _, ctr := range containers {
			if task, err := ctr.Task(nctx, nil); err == nil {
				_, _ = task.Delete(nctx, client.WithProcessKill)
			}
		}
	}
}

// unmountAll unmounts what the daemon left mounted under its directory, deepest first.
func (c *Containerd) unmountAll() { unmountUnder(c.Dir) }
