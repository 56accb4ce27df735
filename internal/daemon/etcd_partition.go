package daemon

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// A partition has to stop what a member sends as well as what it receives, and on loopback
// ports alone cannot tell: every member is 127.0.0.1, and a member's connections to its peers
// go out from ephemeral ports to the peers' ports. etcd's peers even send their raft messages
// over the streams that the receiver dialed, so rules on a follower's own ports leave it
// hearing its leader's heartbeats and appends. So each member runs in a group of its own
// (the process stays root), and Partition marks with that group ID every connection on which
// the member sends a packet (the owner match, in OUTPUT), and drops, as they arrive on lo,
// the packets of marked connections, every packet to or from the member's ports, and those of
// the connections it had dialed already (in INPUT), all in one iptables-restore. Packets are
// dropped where they arrive, not where they leave, so that the member and its peers see
// silence, as in a real partition, rather than errors from their own sends.

// etcdChainPrefix begins the names of Partition's iptables chains: DAO-ETCD-PID-SLOT-IN and
// DAO-ETCD-PID-SLOT-OUT, for the starting process's ID and the member's slot.
const etcdChainPrefix = "DAO-ETCD-"

// etcdSlotCount bounds how many members one process may have at once; etcdGidBase is the
// first of the group IDs the members run in: etcdGidBase + PID<<8 + slot, which no two
// processes share (Linux's PIDs stay below 1<<22).
const (
	etcdSlotCount = 256
	etcdGidBase   = 0x60000000
)

var etcdSlots struct {
	sync.Mutex
	used [etcdSlotCount]bool
}

// takeEtcdSlot reserves a slot for a new member.
func takeEtcdSlot() (int, error) {
	etcdSlots.Lock()
	defer etcdSlots.Unlock()
	for i, used := range etcdSlots.used {
		if !used {
			etcdSlots.used[i] = true
			return i, nil
		}
	}
	return 0, fmt.Errorf("daemon: more than %d etcd members in one process", etcdSlotCount)
}

func releaseEtcdSlot(slot int) {
	etcdSlots.Lock()
	defer etcdSlots.Unlock()
	etcdSlots.used[slot] = false
}

// gid returns the group ID the member runs in, which Partition's rules know its packets by.
func (m *EtcdMember) gid() uint32 {
	return etcdGidBase + uint32(os.Getpid()%(1<<22))<<8 + uint32(m.slot)
}

// chains returns the names of the member's iptables chains, jumped to from INPUT and OUTPUT.
func (m *EtcdMember) chains() (in, out string) {
	base := fmt.Sprintf("%s%d-%d-", etcdChainPrefix, os.Getpid(), m.slot)
	return base + "IN", base + "OUT"
}

// Partition cuts the member off its peers and its clients with iptables rules (in chains of its
// own, see chains), as a failed link would: their packets to it, and its packets to them, are
// dropped without a word, so connections time out rather than fail. Its process keeps running:
// a leader carries on until it notices it has lost its quorum, and clients of its endpoint get
// no answer. A member started again while partitioned stays partitioned. Heal ends it; Close
// too. It needs root and iptables.
func (m *EtcdMember) Partition() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.partitioned {
		return nil
	}
	if _, err := exec.LookPath("iptables-restore"); err != nil {
		return fmt.Errorf("daemon: partition etcd member %s: iptables is not installed: %w", m.Name, err)
	}
	in, out := m.chains()
	gid := strconv.FormatUint(uint64(m.gid()), 10)
	var b strings.Builder
	fmt.Fprintf(&b, "*filter\n:%s - [0:0]\n:%s - [0:0]\n", in, out)
	fmt.Fprintf(&b, "-A %s -i lo -p tcp -m multiport --ports %d,%d -j DROP\n", in, m.clientPort, m.peerPort)
	fmt.Fprintf(&b, "-A %s -i lo -m connmark --mark %s -j DROP\n", in, gid)
	// The connections the member dialed before now: a peer's packet on one, arriving before
	// the member has sent anything on it (and marked it), would get through.
	if m.runningLocked() {
		for _, c := range dialedConnections(m.cmd.Process.Pid, m.clientPort, m.peerPort) {
			fmt.Fprintf(&b, "-A %s -i lo -p tcp --sport %d --dport %d -j DROP\n", in, c[0], c[1])
			fmt.Fprintf(&b, "-A %s -i lo -p tcp --sport %d --dport %d -j DROP\n", in, c[1], c[0])
		}
	}
	fmt.Fprintf(&b, "-A %s -o lo -m owner --gid-owner %s -j CONNMARK --set-mark %s\n", out, gid, gid)
	fmt.Fprintf(&b, "-I INPUT 1 -j %s\n-I OUTPUT 1 -j %s\nCOMMIT\n", in, out)
	if m.firewalled {
		// What an earlier Heal could not remove.
		if err := m.removeChains(); err != nil {
			return fmt.Errorf("daemon: partition etcd member %s: %w", m.Name, err)
		}
	}
	m.firewalled = true
	if err := iptablesRestore(b.String()); err != nil {
		return errors.Join(fmt.Errorf("daemon: partition etcd member %s: %w", m.Name, err), m.removeChains())
	}
	m.partitioned = true
	return nil
}

// Heal removes the rules of Partition: the member and its peers and clients reach each other
// again, on the connections they had (which TCP retransmits on) and on new ones.
func (m *EtcdMember) Heal() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.firewalled {
		return nil
	}
	if err := m.removeChains(); err != nil {
		return fmt.Errorf("daemon: heal etcd member %s: %w", m.Name, err)
	}
	m.firewalled, m.partitioned = false, false
	return nil
}

// Partitioned reports whether the member is partitioned.
func (m *EtcdMember) Partitioned() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.partitioned
}

// removeChains removes the member's chains and the jumps to them.
func (m *EtcdMember) removeChains() error {
	in, out := m.chains()
	return removeChains(map[string]string{in: "INPUT", out: "OUTPUT"})
}

// removeChains removes the chains named by the keys of parents, and every jump to each from
// its parent (the value), as far as they exist; and says if one is left.
func removeChains(parents map[string]string) error {
	rules, err := iptablesRules()
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("*filter\n")
	for chain, parent := range parents {
		for _, r := range rules {
			if r == "-A "+parent+" -j "+chain {
				fmt.Fprintf(&b, "-D %s -j %s\n", parent, chain)
			}
		}
	}
	for chain := range parents {
		if slices.Contains(rules, "-N "+chain) {
			// Declaring the chain empties it.
			fmt.Fprintf(&b, ":%s - [0:0]\n-X %s\n", chain, chain)
		}
	}
	b.WriteString("COMMIT\n")
	if err := iptablesRestore(b.String()); err != nil {
		return err
	}
	if rules, err = iptablesRules(); err != nil {
		return err
	}
	for chain := range parents {
		for _, r := range rules {
			if r == "-N "+chain || strings.HasSuffix(r, " -j "+chain) {
				return fmt.Errorf("daemon: iptables chain %s is still there: %s", chain, r)
			}
		}
	}
	return nil
}

// iptablesRules returns the lines of iptables -S: the filter table's chains and rules.
func iptablesRules() ([]string, error) {
	out, err := exec.Command("iptables", "-w", "5", "-S").Output()
	if err != nil {
		return nil, fmt.Errorf("daemon: iptables -S: %w", err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n"), nil
}

// iptablesRestore applies rules, in iptables-restore's format, to the rules in place, at once.
func iptablesRestore(rules string) error {
	cmd := exec.Command("iptables-restore", "-w", "5", "--noflush")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("daemon: iptables-restore: %w: %s\n%s", err, strings.TrimSpace(string(out)), rules)
	}
	return nil
}

// dialedConnections returns the local and remote ports of the TCP connections on 127.0.0.1 of
// process pid, but those on its own ports (which it accepted).
func dialedConnections(pid int, own ...int) [][2]int {
	inodes := socketInodes(pid)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return nil
	}
	var out [][2]int
	for _, line := range strings.Split(string(b), "\n") {
		// sl local_address rem_address st ... inode (field 9)
		f := strings.Fields(line)
		if len(f) < 10 || f[3] == "0A" || !inodes[f[9]] {
			continue
		}
		local, lok := loopbackPort(f[1])
		remote, rok := loopbackPort(f[2])
		if lok && rok && !slices.Contains(own, local) {
			out = append(out, [2]int{local, remote})
		}
	}
	return out
}

// loopbackPort returns the port of a /proc/net/tcp address ("0100007F:1F90") on 127.0.0.1.
func loopbackPort(addr string) (int, bool) {
	host, port, ok := strings.Cut(addr, ":")
	if !ok || host != "0100007F" {
		return 0, false
	}
	p, err := strconv.ParseUint(port, 16, 16)
	return int(p), err == nil
}

// socketInodes returns the inodes of the sockets that process pid has open.
func socketInodes(pid int) map[string]bool {
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	return inodes
}

var etcdReapOnce sync.Once

// reapStaleEtcd runs ReapStaleEtcd once per process: StartEtcd calls it.
func reapStaleEtcd() { etcdReapOnce.Do(func() { ReapStaleEtcd() }) }

// ReapStaleEtcd cleans up after the etcd clusters of processes that died without closing
// them: it kills what still runs from their directories (nothing, normally: members die with
// the process that started them), removes the directories, and removes the iptables chains of
// Partition whose process is gone. It returns what it removed: directories, and chains as
// "iptables:NAME". Clusters whose process lives are left alone.
func ReapStaleEtcd() []string {
	var reaped []string
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), etcdPrefix+"*"))
	for _, dir := range dirs {
		if stale(dir) {
			killProcesses(dir)
			_ = os.RemoveAll(dir)
			reaped = append(reaped, dir)
		}
	}
	if _, err := exec.LookPath("iptables-restore"); err != nil || os.Geteuid() != 0 {
		return reaped
	}
	rules, err := iptablesRules()
	if err != nil {
		return reaped
	}
	for _, r := range rules {
		chain, ok := strings.CutPrefix(r, "-N "+etcdChainPrefix)
		if !ok {
			continue
		}
		pidText, rest, _ := strings.Cut(chain, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 || pid == os.Getpid() || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		parent := "INPUT"
		if strings.HasSuffix(rest, "-OUT") {
			parent = "OUTPUT"
		}
		name := etcdChainPrefix + chain
		if removeChains(map[string]string{name: parent}) == nil {
			reaped = append(reaped, "iptables:"+name)
		}
	}
	return reaped
}
