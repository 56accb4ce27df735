package netns

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opendao/dao/internal/testutil"
)

const (
	// MaxLab is the highest Lab number; numbers run from 1.
	MaxLab = 250
	// MaxHosts is how many Hosts a Lab holds: 198.19.n.10 to 198.19.n.254.
	MaxHosts = 245

	firstHost = 10
	netnsDir  = "/var/run/netns" // where ip netns keeps its names
	lockDir   = "/run/dao-netns"
	removeFor = 5 * time.Second // how long remove waits for a namespace's processes to die
	linkUpFor = 5 * time.Second // how long LinkUp waits for the link to be operational
)

// hostName is what AddHost accepts: it becomes part of a namespace's name.
var hostName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// Lab is a private IPv4 network of Hosts on one bridge in the test's namespace. Its methods
// are safe for simultaneous use.
type Lab struct {
	n    int
	t    testing.TB
	lock *os.File

	mu    sync.Mutex
	hosts []*Host
}

// NewLab builds Lab n (1 to MaxLab), the subnet 198.19.n.0/24 on the bridge "daolab<n>", and
// removes it when t ends: it kills every process in its namespaces and removes them, their
// veths, the bridge and the bridge's iptables rules. It first removes whatever an earlier,
// crashed run left under n. It fails the test if another Lab n is alive, in this process or
// another; callers give each Lab that may exist at the same time its own n. It skips or fails
// the test as testutil.RequireIntegration says when it is not root or lacks ip or iptables.
func NewLab(t testing.TB, n int) *Lab {
	t.Helper()
	if n < 1 || n > MaxLab {
		t.Fatalf("netns: lab number %d is not in 1..%d", n, MaxLab)
	}
	testutil.RequireIntegration(t, "ip", "iptables")
	lock, err := lockLab(n)
	if err != nil {
		t.Fatalf("netns: %v", err)
	}
	l := &Lab{n: n, t: t, lock: lock}
	t.Cleanup(l.cleanup) // before anything is built, so that a half-built Lab goes too
	if err := remove(n); err != nil {
		t.Fatalf("netns: remove what an earlier run left of lab %d: %v", n, err)
	}
	if err := l.build(); err != nil {
		t.Fatalf("netns: build lab %d: %v", n, err)
	}
	return l
}

// HostIP returns the bridge's address, 198.19.n.1, where programs in the Lab's namespaces
// reach the test process: listen on it to serve them.
func (l *Lab) HostIP() string { return fmt.Sprintf("198.19.%d.1", l.n) }

// AddHost adds a Host named name (lowercase letters, digits and dashes, at most 32): the
// namespace "dao-<n>-<name>" with lo up and eth0 at 198.19.n.(10+i), where i counts the Hosts
// added before it, plugged into the bridge, with a default route via HostIP. It fails the
// test that made the Lab when it cannot, so call it from that test.
func (l *Lab) AddHost(name string) *Host {
	l.t.Helper()
	if !hostName.MatchString(name) {
		l.t.Fatalf("netns: host name %q is not lowercase letters, digits and dashes (at most 32)", name)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range l.hosts {
		if h.name == name {
			l.t.Fatalf("netns: lab %d already has a host %q", l.n, name)
		}
	}
	i := len(l.hosts)
	if i >= MaxHosts {
		l.t.Fatalf("netns: lab %d is full (%d hosts)", l.n, MaxHosts)
	}
	h := &Host{
		lab:  l,
		name: name,
		ns:   namespacePrefix(l.n) + name,
		ip:   fmt.Sprintf("198.19.%d.%d", l.n, firstHost+i),
		veth: fmt.Sprintf("%sh%d", bridgeName(l.n), i),
	}
	if err := h.build(i); err != nil {
		l.t.Fatalf("netns: add host %q to lab %d: %v", name, l.n, err)
	}
	l.hosts = append(l.hosts, h)
	return h
}

func (l *Lab) build() error {
	br := bridgeName(l.n)
	// A fixed address, so that the bridge does not take a new one from each port it gains
	// and leave the Hosts' ARP caches stale.
	mac := fmt.Sprintf("02:da:0b:%02x:00:01", l.n)
	steps := [][]string{
		{"ip", "link", "add", "name", br, "address", mac, "type", "bridge", "stp_state", "0"},
		{"ip", "link", "set", br, "addrgenmode", "none"}, // IPv4 only
		{"ip", "addr", "add", l.HostIP() + "/24", "dev", br},
		{"ip", "link", "set", br, "up"},
	}
	for _, r := range hostRules(l.n) {
		steps = append(steps, append([]string{"iptables", "-w", "-I"}, r...))
	}
	return runAll(steps)
}

func (l *Lab) cleanup() {
	if err := remove(l.n); err != nil {
		l.t.Errorf("netns: remove lab %d: %v", l.n, err)
	}
	l.lock.Close() // releases the flock
}

// Host is one machine of a Lab: a network namespace with eth0 on the Lab's bridge. Its
// methods are safe for simultaneous use.
type Host struct {
	lab                *Lab
	name, ns, ip, veth string

	mu          sync.Mutex
	partitioned bool
	loss        string // the probability of Lossy's rules, "" without
	down        bool
}

// Name returns the name AddHost was given.
func (h *Host) Name() string { return h.name }

// IP returns the address of the Host's eth0, 198.19.n.(10+i).
func (h *Host) IP() string { return h.ip }

// Namespace returns the name of the Host's network namespace, as ip netns knows it
// ("dao-<n>-<name>"), for `ip netns exec` or a CNI configuration.
func (h *Host) Namespace() string { return h.ns }

func (h *Host) build(i int) error {
	mac := fmt.Sprintf("02:da:0b:%02x:01:%02x", h.lab.n, i)
	in := func(args ...string) []string { return append([]string{"ip", "-n", h.ns}, args...) }
	return runAll([][]string{
		{"ip", "netns", "add", h.ns},
		{"ip", "link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "address", mac, "netns", h.ns},
		{"ip", "link", "set", h.veth, "addrgenmode", "none"},
		{"ip", "link", "set", h.veth, "master", bridgeName(h.lab.n), "up"},
		in("link", "set", "lo", "up"),
		in("link", "set", "eth0", "addrgenmode", "none"),
		in("addr", "add", h.ip+"/24", "dev", "eth0"),
		in("link", "set", "eth0", "up"),
		in("route", "add", "default", "via", h.lab.HostIP()),
	})
}

// partitionRules drop every packet through eth0, inserted first in the namespace's own
// filter table. DROP, not REJECT: a peer must see silence, not a reset.
var partitionRules = [][]string{
	{"INPUT", "-i", "eth0", "-j", "DROP"},
	{"OUTPUT", "-o", "eth0", "-j", "DROP"},
}

// Partition cuts the Host off: iptables inside its namespace drops every packet in and out
// of eth0, so that TCP on either side sees silence, and established connections stall. The
// link stays up and ARP still answers. Partitioning a partitioned Host does nothing.
func (h *Host) Partition(t testing.TB) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.partitioned {
		return
	}
	var steps [][]string
	for _, r := range partitionRules {
		steps = append(steps, append([]string{"ip", "netns", "exec", h.ns, "iptables", "-w", "-I"}, r...))
	}
	if err := runAll(steps); err != nil {
		t.Fatalf("netns: partition %s: %v", h.name, err)
	}
	h.partitioned = true
}

// Lossy drops each packet in and out of the Host's eth0 with the given probability (0 to
// 1), with iptables' statistic match inside its namespace: a lossy link, whose TCP
// retransmits. It replaces an earlier Lossy; Lossy(t, 0) ends it.
func (h *Host) Lossy(t testing.TB, probability float64) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	rules := func(p string) [][]string {
		return [][]string{
			{"INPUT", "-i", "eth0", "-m", "statistic", "--mode", "random", "--probability", p, "-j", "DROP"},
			{"OUTPUT", "-o", "eth0", "-m", "statistic", "--mode", "random", "--probability", p, "-j", "DROP"},
		}
	}
	var steps [][]string
	if h.loss != "" {
		for _, r := range rules(h.loss) {
			steps = append(steps, append([]string{"ip", "netns", "exec", h.ns, "iptables", "-w", "-D"}, r...))
		}
	}
	p := ""
	if probability > 0 {
		p = fmt.Sprintf("%.4f", min(probability, 1))
		for _, r := range rules(p) {
			steps = append(steps, append([]string{"ip", "netns", "exec", h.ns, "iptables", "-w", "-I"}, r...))
		}
	}
	if err := runAll(steps); err != nil {
		t.Fatalf("netns: lossy %s: %v", h.name, err)
	}
	h.loss = p
}

// Heal undoes Partition: packets flow again, and stalled TCP connections resume at their
// next retransmission. Healing a Host that is not partitioned does nothing.
func (h *Host) Heal(t testing.TB) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.partitioned {
		return
	}
	var steps [][]string
	for _, r := range partitionRules {
		steps = append(steps, append([]string{"ip", "netns", "exec", h.ns, "iptables", "-w", "-D"}, r...))
	}
	if err := runAll(steps); err != nil {
		t.Fatalf("netns: heal %s: %v", h.name, err)
	}
	h.partitioned = false
}

// LinkDown takes the host end of the Host's veth down, as if its cable were pulled: eth0
// loses its carrier and nothing passes. Unlike Partition, peers may get "no route to host"
// once their neighbour entries for the Host expire. Taking a down link down does nothing.
func (h *Host) LinkDown(t testing.TB) {
	t.Helper()
	h.setLink(t, true)
}

// LinkUp brings the link that LinkDown took down up again, and returns once both of its ends
// pass packets (the kernel takes up to a second to let them).
func (h *Host) LinkUp(t testing.TB) {
	t.Helper()
	h.setLink(t, false)
}

func (h *Host) setLink(t testing.TB, down bool) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down == down {
		return
	}
	state := "up"
	if down {
		state = "down"
	}
	if err := run("ip", "link", "set", h.veth, state); err != nil {
		t.Fatalf("netns: link %s %s: %v", h.name, state, err)
	}
	h.down = down
	if !down {
		if err := h.waitOperational(); err != nil {
			t.Fatalf("netns: link %s up: %v", h.name, err)
		}
	}
}

// waitOperational waits until both ends of the Host's veth are operationally up. The kernel
// marks a link that gained its carrier so, and lets packets through it, only when its link
// watcher runs, up to a second later; until then they are dropped.
func (h *Host) waitOperational() error {
	deadline := time.Now().Add(linkUpFor)
	for {
		state, err := os.ReadFile("/sys/class/net/" + h.veth + "/operstate")
		if err != nil {
			return err
		}
		if strings.TrimSpace(string(state)) == "up" {
			out, err := output("ip", "-n", h.ns, "-o", "link", "show", "dev", "eth0")
			if err != nil {
				return err
			}
			if strings.Contains(out, " state UP ") {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s or eth0 in %s is not up after %v", h.veth, h.ns, linkUpFor)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func bridgeName(n int) string      { return "daolab" + strconv.Itoa(n) }
func namespacePrefix(n int) string { return fmt.Sprintf("dao-%d-", n) }

// hostRules are the host's iptables rules that let the Lab's traffic through whatever
// policy the host's chains have; see the package documentation.
func hostRules(n int) [][]string {
	br := bridgeName(n)
	tag := []string{"-m", "comment", "--comment", br, "-j", "ACCEPT"}
	return [][]string{
		append([]string{"FORWARD", "-i", br, "-o", br}, tag...),
		append([]string{"INPUT", "-i", br}, tag...),
		append([]string{"OUTPUT", "-o", br}, tag...),
	}
}

// lockLab takes Lab n's lock, which the kernel releases when the returned file is closed or
// the process dies.
func lockLab(n int) (*os.File, error) {
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(lockDir, fmt.Sprintf("lab%d.lock", n))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lab %d is in use by another test, in this process or another (%s is locked); give each Lab that may exist at the same time its own number", n, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// remove removes everything of Lab n there is, whoever made it: the processes in its
// namespaces, its veths, namespaces and bridge, and its iptables rules. It goes on past
// errors and returns them all.
func remove(n int) error {
	var errs []error
	var namespaces []string
	entries, err := os.ReadDir(netnsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), namespacePrefix(n)) {
			namespaces = append(namespaces, e.Name())
		}
	}
	for _, ns := range namespaces {
		if err := killAll(ns); err != nil {
			errs = append(errs, err)
		}
	}
	// Deleting one end of a veth deletes both, so no eth0 outlives its namespace's name.
	ifaces, err := net.Interfaces()
	if err != nil {
		errs = append(errs, err)
	}
	br := bridgeName(n)
	for _, ifc := range ifaces {
		if strings.HasPrefix(ifc.Name, br+"h") {
			errs = append(errs, run("ip", "link", "del", ifc.Name))
		}
	}
	for _, ns := range namespaces {
		errs = append(errs, run("ip", "netns", "del", ns))
	}
	for _, ifc := range ifaces {
		if ifc.Name == br {
			errs = append(errs, run("ip", "link", "del", br))
		}
	}
	for _, r := range hostRules(n) {
		// Delete each rule as often as it is there: a crashed run may have inserted it
		// more than once.
		for range 100 {
			if run(append([]string{"iptables", "-w", "-C"}, r...)...) != nil {
				break
			}
			if err := run(append([]string{"iptables", "-w", "-D"}, r...)...); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	return errors.Join(errs...)
}

// killAll kills every process in namespace ns with SIGKILL and waits until none is left.
func killAll(ns string) error {
	deadline := time.Now().Add(removeFor)
	for {
		out, err := output("ip", "netns", "pids", ns)
		if err != nil {
			return err
		}
		var pids []int
		for _, f := range strings.Fields(out) {
			// Never this process: its main thread may be inside ns for a moment, in
			// Host.Dial or Host.Listen.
			if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
				pids = append(pids, pid)
			}
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v in namespace %s outlived SIGKILL for %v", pids, ns, removeFor)
		}
		for _, pid := range pids {
			_ = unix.Kill(pid, unix.SIGKILL) // it may be gone already
		}
		time.Sleep(10 * time.Millisecond)
	}
}
