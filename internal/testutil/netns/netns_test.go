package netns_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/internal/testutil/netns"
)

// TestMain checks that no test leaves a goroutine behind: not Host.Dial's, not a listener's.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The Labs of this package's tests. Other packages pick other numbers.
const (
	labReach     = 201
	labPartition = 202
	labCleanup   = 203
	labLock      = 204
)

// silence is how long a connect waits before a test calls it silence: a refusal or a
// successful connect on the Lab takes well under a millisecond.
const silence = 300 * time.Millisecond

func TestHostsReachTheTestAndEachOther(t *testing.T) {
	t.Parallel()
	lab := netns.NewLab(t, labReach)
	ln := listen(t, lab.HostIP())
	a, b := lab.AddHost("a"), lab.AddHost("b")
	if got, want := a.IP(), fmt.Sprintf("198.19.%d.10", labReach); got != want {
		t.Errorf("a.IP() = %s, want %s", got, want)
	}
	if got, want := b.Namespace(), fmt.Sprintf("dao-%d-b", labReach); got != want {
		t.Errorf("b.Namespace() = %s, want %s", got, want)
	}
	for _, h := range []*netns.Host{a, b} {
		mustConnect(t, h, ln.Addr().String())
	}

	// From one Host to another, across the bridge, and from the test to a Host.
	lnA, err := a.Listen(t.Context(), "tcp", a.IP()+":0")
	if err != nil {
		t.Fatalf("listen in a: %v", err)
	}
	defer lnA.Close()
	mustConnect(t, b, lnA.Addr().String())
	c, err := net.DialTimeout("tcp", lnA.Addr().String(), time.Second)
	if err != nil {
		t.Fatalf("the test dials a: %v", err)
	}
	c.Close()

	// A program in a Host sees its own eth0, and reaches the test.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	out, err := a.Command(ctx, "ip", "-4", "-o", "addr", "show", "dev", "eth0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), " "+a.IP()+"/24 ") {
		t.Errorf("ip addr in a: %v; it says:\n%s", err, out)
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	probe := fmt.Sprintf("exec 3<>/dev/tcp/%s/%s", host, port)
	if out, err := b.Command(ctx, "bash", "-c", probe).CombinedOutput(); err != nil {
		t.Errorf("bash in b does not reach the test: %v\n%s", err, out)
	}
}

func TestPartitionAndLinkDownAreSilence(t *testing.T) {
	t.Parallel()
	lab := netns.NewLab(t, labPartition)
	a, b := lab.AddHost("a"), lab.AddHost("b")
	ln := listen(t, lab.HostIP())
	closed := closedPort(t, lab.HostIP())
	lnA, err := a.Listen(t.Context(), "tcp", a.IP()+":0")
	if err != nil {
		t.Fatalf("listen in a: %v", err)
	}
	defer lnA.Close()

	mustConnect(t, a, ln.Addr().String())
	mustBeRefused(t, a, closed)

	a.Partition(t)
	a.Partition(t) // a second time does nothing
	mustBeSilent(t, map[string]dial{
		"a to the test":      dialFrom(a, ln.Addr().String()),
		"a to a closed port": dialFrom(a, closed), // silence, not a refusal
		"the test to a":      dialFrom(nil, lnA.Addr().String()),
		"b to a":             dialFrom(b, lnA.Addr().String()),
	})
	mustConnect(t, b, ln.Addr().String())

	a.Heal(t)
	a.Heal(t)
	mustConnect(t, a, ln.Addr().String())
	mustBeRefused(t, a, closed)
	mustConnect(t, b, lnA.Addr().String())

	a.LinkDown(t)
	mustBeSilent(t, map[string]dial{
		"a to the test, link down": dialFrom(a, ln.Addr().String()),
		"b to a, link down":        dialFrom(b, lnA.Addr().String()),
	})
	mustConnect(t, b, ln.Addr().String())

	a.LinkUp(t)
	mustConnect(t, a, ln.Addr().String())
	mustConnect(t, b, lnA.Addr().String())
}

func TestCleanupRemovesEverything(t *testing.T) {
	t.Parallel()
	// What a crashed run leaves: a namespace and a bridge of the Lab's names.
	// (Made only where NewLab would not skip, and removed should NewLab fail to.)
	testutil.RequireIntegration(t, "ip", "iptables")
	stale, staleBridge := fmt.Sprintf("dao-%d-stale", labCleanup), fmt.Sprintf("daolab%d", labCleanup)
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", stale).Run()
		exec.Command("ip", "link", "del", staleBridge).Run()
	})
	mustRun(t, "ip", "netns", "add", stale)
	mustRun(t, "ip", "link", "add", staleBridge, "type", "bridge")

	var sleeper *exec.Cmd
	var lab *netns.Lab
	t.Run("lab", func(t *testing.T) {
		lab = netns.NewLab(t, labCleanup)
		if names := leftovers(t, labCleanup); strings.Contains(names, stale) {
			t.Errorf("NewLab left the stale namespace %s", stale)
		}
		a := lab.AddHost("a")
		lab.AddHost("b").Partition(t)
		a.LinkDown(t)
		sleeper = a.Command(context.Background(), "sleep", "600")
		if err := sleeper.Start(); err != nil {
			t.Fatalf("start sleep in a: %v", err)
		}
		if names := leftovers(t, labCleanup); names == "" {
			t.Fatal("leftovers sees nothing of a live Lab")
		}
	})
	if lab == nil || sleeper == nil || sleeper.Process == nil {
		t.Fatal("the Lab was not built")
	}
	if names := leftovers(t, labCleanup); names != "" {
		t.Errorf("after the Lab's test: %s", names)
	}
	waited := make(chan error, 1)
	go func() { waited <- sleeper.Wait() }()
	select {
	case err := <-waited:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("sleep in the Lab ended with %v, want SIGKILL", err)
		}
	case <-time.After(5 * time.Second):
		sleeper.Process.Kill()
		t.Fatal("sleep in the Lab outlived it")
	}
}

func TestOneLabPerNumber(t *testing.T) {
	t.Parallel()
	netns.NewLab(t, labLock)
	ft := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		netns.NewLab(ft, labLock)
	}()
	<-done
	if !strings.Contains(ft.fatal, "in use") {
		t.Errorf("a second NewLab(%d) said %q, want that the number is in use", labLock, ft.fatal)
	}
	for _, n := range []int{0, netns.MaxLab + 1} {
		ft := &fatalTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			netns.NewLab(ft, n)
		}()
		<-done
		if ft.fatal == "" {
			t.Errorf("NewLab(%d) did not fail", n)
		}
	}
}

// fatalTB records a Fatalf and ends its goroutine, as testing.T would.
type fatalTB struct {
	testing.TB
	fatal string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// leftovers lists the namespaces, links and host iptables rules of Lab n, one per line.
func leftovers(t *testing.T, n int) string {
	t.Helper()
	var found []string
	for _, c := range [][]string{{"ip", "netns", "list"}, {"ip", "-o", "link", "show"}, {"iptables", "-w", "-S"}} {
		out, err := exec.Command(c[0], c[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(c, " "), err, out)
		}
		for line := range strings.Lines(string(out)) {
			for _, name := range strings.FieldsFunc(line, func(r rune) bool { return strings.ContainsRune(" :@\t\n", r) }) {
				if name == fmt.Sprintf("daolab%d", n) || strings.HasPrefix(name, fmt.Sprintf("daolab%dh", n)) ||
					strings.HasPrefix(name, fmt.Sprintf("dao-%d-", n)) {
					found = append(found, strings.TrimSpace(line))
					break
				}
			}
		}
	}
	return strings.Join(found, "\n")
}

func listen(t *testing.T, ip string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("listen on %s: %v", ip, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln
}

// closedPort returns an address on ip where nothing listens.
func closedPort(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("listen on %s: %v", ip, err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// dial connects and closes the connection at once, or fails after timeout.
type dial func(ctx context.Context, timeout time.Duration) error

// dialFrom returns a dial of address from h, or from the test process when h is nil.
func dialFrom(h *netns.Host, address string) dial {
	return func(ctx context.Context, timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		var c net.Conn
		var err error
		if h == nil {
			var d net.Dialer
			c, err = d.DialContext(ctx, "tcp", address)
		} else {
			c, err = h.Dial(ctx, "tcp", address)
		}
		if err == nil {
			c.Close()
		}
		return err
	}
}

func mustConnect(t *testing.T, h *netns.Host, address string) {
	t.Helper()
	if err := dialFrom(h, address)(t.Context(), 2*time.Second); err != nil {
		t.Fatalf("%s does not reach %s: %v", h.Name(), address, err)
	}
}

func mustBeRefused(t *testing.T, h *netns.Host, address string) {
	t.Helper()
	if err := dialFrom(h, address)(t.Context(), 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("%s dials the closed %s: %v, want connection refused", h.Name(), address, err)
	}
}

// mustBeSilent checks that each dial neither connects nor fails before it times out. The
// dials run at the same time, to keep the test short.
func mustBeSilent(t *testing.T, dials map[string]dial) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(map[string]error, len(dials))
	var mu sync.Mutex
	for what, d := range dials {
		wg.Go(func() {
			start := time.Now()
			err := d(t.Context(), silence)
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				mu.Lock()
				errs[what] = fmt.Errorf("%w after %v, want a timeout after %v", err, time.Since(start).Round(time.Millisecond), silence)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for what, err := range errs {
		t.Errorf("%s: %v", what, err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
}

func mustRun(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
