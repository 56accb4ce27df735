package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Command returns a command that runs program name with args inside the Host's namespace
// (through `ip netns exec`, which execs the program, so cmd.Process is the program itself);
// the caller starts it. The program has its own process group, which ctx's end kills
// whole, and SIGKILL if the test process dies. When the test ends the Lab kills whatever
// still runs in the namespace; the caller still Waits for its command, or it stays a zombie
// until the test process exits.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.ns, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd
}

// Dial connects to address, an IP address and port ("198.19.7.1:8080"), from inside the
// Host's namespace, as a program there would: the connection goes through its eth0 (and so
// through a Partition) but is the test process's to use from any goroutine. network is one
// of "tcp", "tcp4", "udp", "udp4". ctx bounds the connect only.
func (h *Host) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	if err := ipLiteral(address); err != nil {
		return nil, err
	}
	var c net.Conn
	err := h.inside(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// Listen listens on address, an IP address and port ("0.0.0.0:0" or h.IP()+":0"), inside the
// Host's namespace, so that peers on the Lab reach the test process there. network is one of
// "tcp", "tcp4". The caller closes the listener.
func (h *Host) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	if err := ipLiteral(address); err != nil {
		return nil, err
	}
	var ln net.Listener
	err := h.inside(func() (err error) {
		var lc net.ListenConfig
		ln, err = lc.Listen(ctx, network, address)
		return err
	})
	return ln, err
}

// ipLiteral checks that address needs no name resolution, which would run on other threads,
// outside the namespace.
func ipLiteral(address string) error {
	if _, err := netip.ParseAddrPort(address); err != nil {
		return fmt.Errorf("netns: %q is not an IP address and port: %w", address, err)
	}
	return nil
}

// inside runs fn on an OS thread of its own that it has moved into the Host's network
// namespace, so that the sockets fn makes belong there. The socket calls of fn must not move
// to other goroutines: net.Dialer and net.ListenConfig with an IP address keep them on the
// calling one.
func (h *Host) inside(fn func() error) error {
	target, err := os.Open(filepath.Join(netnsDir, h.ns))
	if err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	defer target.Close()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("netns: %w", err)
			return
		}
		defer self.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("netns: enter %s: %w", h.ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			// The thread stays locked, so that the runtime ends it with this goroutine
			// rather than run other goroutines in the wrong namespace.
			done <- errors.Join(ferr, fmt.Errorf("netns: leave %s: %w", h.ns, err))
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}

// commandTimeout bounds each ip or iptables command, which should take milliseconds.
const commandTimeout = 10 * time.Second

// output runs a command and returns its standard output; its error carries the command and
// its standard error.
func output(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func run(args ...string) error {
	_, err := output(args...)
	return err
}

// runAll runs commands in order and stops at the first that fails.
func runAll(commands [][]string) error {
	for _, c := range commands {
		if err := run(c...); err != nil {
			return err
		}
	}
	return nil
}
