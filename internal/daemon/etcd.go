package daemon

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// EtcdCluster is a private etcd cluster (Debian's etcd, version 3.4) of one or more members on
// 127.0.0.1, bootstrapped statically, each member with its own client and peer ports, data
// directory and log under Dir. Its members can be killed, stopped, started again, paused and
// cut off the network, for tests of what a store's clients do when etcd fails.
// Its methods are safe for simultaneous use.
type EtcdCluster struct {
	// Dir holds one directory per member, m0, m1, ...: its data/ and its etcd.log.
	Dir string

	cfg     etcdConfig
	token   string
	members []*EtcdMember

	closeOnce sync.Once
	closeErr  error
}

// EtcdMember is one member of an EtcdCluster. Its methods are safe for simultaneous use.
type EtcdMember struct {
	// Name is the member's name in the cluster: "m" and its index.
	Name string
	// ID is the member's ID, as etcd's responses name it (Status.Leader, the headers'
	// MemberId).
	ID uint64
	// DataDir is the member's --data-dir.
	DataDir string
	// LogPath is the member's log file; it keeps the logs of every run of the member.
	LogPath string

	cluster    *EtcdCluster
	clientPort int
	peerPort   int
	// slot numbers the member among this process's etcd members: its group ID and chain
	// names derive from it (see Partition).
	slot int

	mu          sync.Mutex
	cmd         *exec.Cmd
	exited      chan struct{}
	paused      bool
	partitioned bool
	// firewalled is set once Partition has made rules, so Close knows to look for them.
	firewalled bool
}

// EtcdOption configures StartEtcd.
type EtcdOption func(*etcdConfig) error

type etcdConfig struct {
	noFsync         bool
	maxTxnOps       int
	maxRequestBytes int
	heartbeat       time.Duration
	election        time.Duration
	flags           []string
}

// WithEtcdUnsafeNoFsync starts the members with --unsafe-no-fsync: etcd writes its WAL and
// database without fsync, so that a benchmark measures the protocol and the client rather than
// the disk. A member killed with it may lose what it acknowledged. The default is to fsync.
func WithEtcdUnsafeNoFsync() EtcdOption {
	return func(c *etcdConfig) error {
		c.noFsync = true
		return nil
	}
}

// WithEtcdMaxTxnOps sets --max-txn-ops, the most operations one transaction may hold. The
// default is etcd's, 128, which a user's etcd may well keep.
func WithEtcdMaxTxnOps(n int) EtcdOption {
	return func(c *etcdConfig) error {
		if n < 1 {
			return fmt.Errorf("daemon: WithEtcdMaxTxnOps(%d): want at least 1", n)
		}
		c.maxTxnOps = n
		return nil
	}
}

// WithEtcdMaxRequestBytes sets --max-request-bytes, the largest request a member accepts. The
// default is etcd's, 1572864 (1.5 MiB).
func WithEtcdMaxRequestBytes(n int) EtcdOption {
	return func(c *etcdConfig) error {
		if n < 1 {
			return fmt.Errorf("daemon: WithEtcdMaxRequestBytes(%d): want at least 1", n)
		}
		c.maxRequestBytes = n
		return nil
	}
}

// WithEtcdTimings sets the raft timings, --heartbeat-interval and --election-timeout: a
// follower that has not heard from the leader for about election campaigns to replace it.
// Both are whole milliseconds, and etcd wants election at least five times heartbeat. The
// default is etcd's, 100ms and 1s. Failover tests may use shorter ones, such as 10ms and
// 100ms, at the risk of elections that nothing provoked on a loaded machine.
func WithEtcdTimings(heartbeat, election time.Duration) EtcdOption {
	return func(c *etcdConfig) error {
		switch {
		case heartbeat < time.Millisecond || heartbeat%time.Millisecond != 0 || election%time.Millisecond != 0:
			return fmt.Errorf("daemon: WithEtcdTimings(%v, %v): want whole milliseconds, at least 1ms", heartbeat, election)
		case election < 5*heartbeat:
			return fmt.Errorf("daemon: WithEtcdTimings(%v, %v): etcd wants the election timeout at least five heartbeats", heartbeat, election)
		case election > 50*time.Second:
			return fmt.Errorf("daemon: WithEtcdTimings(%v, %v): etcd takes an election timeout of at most 50s", heartbeat, election)
		}
		c.heartbeat, c.election = heartbeat, election
		return nil
	}
}

// etcdOwnFlags are the flags StartEtcd sets itself, which WithEtcdFlags may not.
var etcdOwnFlags = []string{
	"--name", "--data-dir", "--wal-dir", "--listen-client-urls", "--advertise-client-urls",
	"--listen-peer-urls", "--initial-advertise-peer-urls", "--initial-cluster",
	"--initial-cluster-token", "--initial-cluster-state", "--logger", "--log-outputs",
	"--heartbeat-interval", "--election-timeout", "--unsafe-no-fsync", "--max-txn-ops",
	"--max-request-bytes",
}

// WithEtcdFlags passes more flags to every member, such as "--pre-vote" or
// "--quota-backend-bytes=1048576". Each must begin with "--" and must not be one that StartEtcd
// sets itself (names, directories, URLs, the initial cluster, the logger) or that another option
// sets (the raft timings, the limits, --unsafe-no-fsync); write a flag and its value as one
// argument, with "=". The default is none.
func WithEtcdFlags(flags ...string) EtcdOption {
	return func(c *etcdConfig) error {
		for _, f := range flags {
			name, _, _ := strings.Cut(f, "=")
			if !strings.HasPrefix(name, "--") || len(name) < 3 {
				return fmt.Errorf("daemon: WithEtcdFlags: %q is not a --flag", f)
			}
			for _, own := range etcdOwnFlags {
				if name == own {
					return fmt.Errorf("daemon: WithEtcdFlags: StartEtcd sets %s itself", own)
				}
			}
		}
		c.flags = append(c.flags, flags...)
		return nil
	}
}

// The raft timings of StartEtcd by default: etcd's own.
const (
	defaultEtcdHeartbeat = 100 * time.Millisecond
	defaultEtcdElection  = time.Second
)

// etcdStartTimeout bounds how long StartEtcd waits for a cluster to elect a leader and answer.
const etcdStartTimeout = 30 * time.Second

// etcdPrefix begins the clusters' directories under os.TempDir().
const etcdPrefix = "dao-etcd-"

// StartEtcd starts a cluster of n members on 127.0.0.1, with their data under a new temporary
// directory, and waits until every member answers and they agree on a leader. Each member gets
// free client and peer ports; when another process takes one of them before etcd binds it, the
// whole cluster is started again on new ones. A member dies with the process that started it
// (by SIGKILL, even when that process is killed); Close removes the rest.
func StartEtcd(n int, opts ...EtcdOption) (*EtcdCluster, error) {
	if n < 1 {
		return nil, fmt.Errorf("daemon: StartEtcd(%d): a cluster has at least one member", n)
	}
	cfg := etcdConfig{heartbeat: defaultEtcdHeartbeat, election: defaultEtcdElection}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	if _, err := exec.LookPath("etcd"); err != nil {
		return nil, fmt.Errorf("daemon: etcd is not installed (Debian package etcd-server): %w", err)
	}
	reapStale()
	reapStaleEtcd()
	dir, err := os.MkdirTemp("", etcdPrefix)
	if err != nil {
		return nil, err
	}
	if err := writeOwner(dir); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	token := make([]byte, 8)
	if _, err := rand.Read(token); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c := &EtcdCluster{Dir: dir, cfg: cfg, token: "dao-" + hex.EncodeToString(token)}
	for i := range n {
		mdir := filepath.Join(dir, fmt.Sprintf("m%d", i))
		if err := os.Mkdir(mdir, 0o700); err != nil {
			c.Close()
			return nil, err
		}
		slot, err := takeEtcdSlot()
		if err != nil {
			c.Close()
			return nil, err
		}
		c.members = append(c.members, &EtcdMember{
			Name:    fmt.Sprintf("m%d", i),
			DataDir: filepath.Join(mdir, "data"),
			LogPath: filepath.Join(mdir, "etcd.log"),
			cluster: c,
			slot:    slot,
		})
	}
	// Another process may take a free port between our look and etcd's bind: start the whole
	// cluster again on new ones.
	for attempt := 0; ; attempt++ {
		err = c.start()
		if err == nil {
			return c, nil
		}
		var inUse errPortInUse
		if attempt == 2 || !errors.As(err, &inUse) {
			logs := c.logTails(4 << 10)
			c.Close()
			return nil, fmt.Errorf("%w\n%s", err, logs)
		}
	}
}

// errPortInUse says that a member could not bind one of its ports.
type errPortInUse struct{ member string }

func (e errPortInUse) Error() string {
	return "daemon: etcd member " + e.member + ": a port was taken before it could bind it"
}

// start picks the members' ports, starts them all with empty data directories and waits until
// the cluster is up.
func (c *EtcdCluster) start() error {
	ports, err := freePorts(2 * len(c.members))
	if err != nil {
		return err
	}
	var initial []string
	for i, m := range c.members {
		m.clientPort, m.peerPort = ports[2*i], ports[2*i+1]
		initial = append(initial, m.Name+"="+m.PeerURL())
		if err := os.RemoveAll(m.DataDir); err != nil {
			return err
		}
	}
	initialCluster := strings.Join(initial, ",")
	logStart := make([]int64, len(c.members))
	for i, m := range c.members {
		if st, err := os.Stat(m.LogPath); err == nil {
			logStart[i] = st.Size()
		}
		m.mu.Lock()
		err := m.startLocked(initialCluster, "new")
		m.mu.Unlock()
		if err != nil {
			c.killAll()
			return c.portInUse(logStart, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), etcdStartTimeout)
	defer cancel()
	if err := c.waitUp(ctx); err != nil {
		c.killAll()
		return c.portInUse(logStart, err)
	}
	return nil
}

// portInUse returns errPortInUse when a member's log since logStart says that it could not bind
// a port, and err otherwise.
func (c *EtcdCluster) portInUse(logStart []int64, err error) error {
	for i, m := range c.members {
		f, ferr := os.Open(m.LogPath)
		if ferr != nil {
			continue
		}
		_, _ = f.Seek(logStart[i], 0)
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "address already in use") {
				f.Close()
				return errPortInUse{m.Name}
			}
		}
		f.Close()
	}
	return err
}

// waitUp waits until every member answers Status, they all name the same leader, and the
// member list has every member published under its name; it learns the members' IDs from it.
func (c *EtcdCluster) waitUp(ctx context.Context) error {
	last := errors.New("no answer yet")
	for {
		err := c.upOnce(ctx)
		if err == nil {
			return nil
		}
		last = err
		for _, m := range c.members {
			if !m.Running() {
				return fmt.Errorf("daemon: etcd member %s exited while the cluster started", m.Name)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("daemon: etcd cluster of %d did not come up within %v: %v", len(c.members), etcdStartTimeout, last)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func (c *EtcdCluster) upOnce(ctx context.Context) error {
	leader := uint64(0)
	for _, m := range c.members {
		st, err := m.status(ctx, time.Second)
		if err != nil {
			return fmt.Errorf("%s: %w", m.Name, err)
		}
		if st.Leader == 0 || (leader != 0 && st.Leader != leader) {
			return fmt.Errorf("%s: no leader agreed yet", m.Name)
		}
		leader = st.Leader
	}
	cl, err := newEtcdClient(c.Endpoints())
	if err != nil {
		return err
	}
	defer cl.Close()
	lctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, err := cl.MemberList(lctx)
	if err != nil {
		return fmt.Errorf("member list: %w", err)
	}
	ids := map[string]uint64{}
	for _, mm := range resp.Members {
		ids[mm.Name] = mm.ID
	}
	if len(resp.Members) != len(c.members) {
		return fmt.Errorf("member list has %d members, want %d", len(resp.Members), len(c.members))
	}
	for _, m := range c.members {
		id, ok := ids[m.Name]
		if !ok {
			return fmt.Errorf("member list does not name %s yet", m.Name)
		}
		m.ID = id
	}
	return nil
}

// newEtcdClient returns a client of endpoints that logs nothing.
func newEtcdClient(endpoints []string) (*clientv3.Client, error) {
	cl, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("daemon: etcd client: %w", err)
	}
	return cl, nil
}

// Endpoints returns the members' client URLs, such as "http://127.0.0.1:41234", in member order.
func (c *EtcdCluster) Endpoints() []string {
	out := make([]string, len(c.members))
	for i, m := range c.members {
		out[i] = m.Endpoint()
	}
	return out
}

// Member returns member i, counted from 0. It panics when there is no member i.
func (c *EtcdCluster) Member(i int) *EtcdMember { return c.members[i] }

// Members returns the members in order.
func (c *EtcdCluster) Members() []*EtcdMember { return append([]*EtcdMember(nil), c.members...) }

// Leader returns the index of the member that leads the cluster now: the member that, in the
// latest term, says it leads. Members that are down, paused or partitioned are not asked. It
// waits while no member it can ask leads (during an election, say) until ctx ends.
func (c *EtcdCluster) Leader(ctx context.Context) (int, error) {
	for {
		i, err := c.leaderOnce(ctx)
		if err == nil {
			return i, nil
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("daemon: no etcd leader: %w (%v)", ctx.Err(), err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (c *EtcdCluster) leaderOnce(ctx context.Context) (int, error) {
	type answer struct {
		st  *clientv3.StatusResponse
		err error
	}
	answers := make([]answer, len(c.members))
	var wg sync.WaitGroup
	for i, m := range c.members {
		m.mu.Lock()
		reachable := m.runningLocked() && !m.paused && !m.partitioned
		m.mu.Unlock()
		if !reachable {
			answers[i].err = errors.New("down, paused or partitioned")
			continue
		}
		wg.Go(func() {
			st, err := m.status(ctx, 500*time.Millisecond)
			answers[i] = answer{st, err}
		})
	}
	wg.Wait()
	best, term := -1, uint64(0)
	var errs []string
	for i, a := range answers {
		switch {
		case a.err != nil:
			errs = append(errs, fmt.Sprintf("%s: %v", c.members[i].Name, a.err))
		case a.st.Leader != 0 && a.st.Leader == a.st.Header.MemberId && a.st.RaftTerm >= term:
			best, term = i, a.st.RaftTerm
		}
	}
	if best < 0 {
		return -1, fmt.Errorf("no member leads; %s", strings.Join(errs, "; "))
	}
	return best, nil
}

// Close kills every member, removes the firewall rules of those that were partitioned and the
// cluster's directory. It may be called more than once.
func (c *EtcdCluster) Close() error {
	c.closeOnce.Do(func() {
		c.killAll()
		var errs []error
		for _, m := range c.members {
			m.mu.Lock()
			if m.firewalled {
				if err := m.removeChains(); err != nil {
					errs = append(errs, err)
				}
				m.firewalled, m.partitioned = false, false
			}
			m.mu.Unlock()
			releaseEtcdSlot(m.slot)
		}
		errs = append(errs, os.RemoveAll(c.Dir))
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

func (c *EtcdCluster) killAll() {
	for _, m := range c.members {
		m.Kill()
	}
}

// logTails returns the last max bytes of every member's log, each under its path.
func (c *EtcdCluster) logTails(max int) string {
	var b strings.Builder
	for _, m := range c.members {
		b.WriteString(m.logTail(max))
		b.WriteString("\n")
	}
	return b.String()
}

// Endpoint returns the member's client URL, such as "http://127.0.0.1:41234".
func (m *EtcdMember) Endpoint() string { return fmt.Sprintf("http://127.0.0.1:%d", m.clientPort) }

// PeerURL returns the URL the member's peers reach it at, such as "http://127.0.0.1:41235".
func (m *EtcdMember) PeerURL() string { return fmt.Sprintf("http://127.0.0.1:%d", m.peerPort) }

// Log returns the member's log so far.
func (m *EtcdMember) Log() string {
	b, _ := os.ReadFile(m.LogPath)
	return string(b)
}

// Running reports whether the member's process runs (paused or not).
func (m *EtcdMember) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.runningLocked()
}

// runningLocked reports whether the member's process runs, and forgets one that exited.
func (m *EtcdMember) runningLocked() bool {
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.exited:
		m.cmd, m.paused = nil, false
		return false
	default:
		return true
	}
}

// Kill kills the member with SIGKILL, as a crash would (no last writes, no leadership
// transfer), and waits for it to exit. It does nothing to a member that is not running.
func (m *EtcdMember) Kill() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.killLocked()
}

func (m *EtcdMember) killLocked() {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	<-m.exited
	m.cmd, m.paused = nil, false
}

// Stop stops the member as an operator would, with SIGTERM (a leader hands its leadership on
// first), and waits for it to exit; after 5s it kills it. It does nothing to a member that is
// not running.
func (m *EtcdMember) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	if m.paused {
		_ = m.cmd.Process.Signal(syscall.SIGCONT)
	}
	select {
	case <-m.exited:
		m.cmd, m.paused = nil, false
	case <-time.After(5 * time.Second):
		m.killLocked()
	}
}

// Start starts the member again after Kill or Stop, on its data directory and with the flags it
// had, and returns once it listens on its ports. It serves clients only once it has rejoined
// the cluster's leader: WaitReady waits for that. A partitioned member starts partitioned.
func (m *EtcdMember) Start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.runningLocked() {
		return fmt.Errorf("daemon: etcd member %s is already running", m.Name)
	}
	var initial []string
	for _, o := range m.cluster.members {
		initial = append(initial, o.Name+"="+o.PeerURL())
	}
	if err := m.startLocked(strings.Join(initial, ","), "existing"); err != nil {
		return fmt.Errorf("%w\n%s", err, m.logTail(4<<10))
	}
	return nil
}

// logTail returns the last max bytes of the member's log, under its path.
func (m *EtcdMember) logTail(max int) string {
	log := m.Log()
	if len(log) > max {
		log = "...\n" + log[len(log)-max:]
	}
	return fmt.Sprintf("etcd member %s log (%s):\n%s", m.Name, m.LogPath, log)
}

// WaitReady waits until the member answers a Status request, which etcd does once it has
// joined the cluster's leader, or until ctx ends.
func (m *EtcdMember) WaitReady(ctx context.Context) error {
	for {
		_, err := m.status(ctx, time.Second)
		if err == nil {
			return nil
		}
		if !m.Running() {
			return fmt.Errorf("daemon: etcd member %s is not running", m.Name)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("daemon: etcd member %s is not ready: %w (%v)", m.Name, ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Pause stops the member's process with SIGSTOP, as a long garbage collection pause or an
// overloaded machine would: its connections stay open, and it answers nothing until Resume.
func (m *EtcdMember) Pause() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.runningLocked() {
		return fmt.Errorf("daemon: etcd member %s is not running", m.Name)
	}
	if err := m.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return fmt.Errorf("daemon: pause etcd member %s: %w", m.Name, err)
	}
	m.paused = true
	return nil
}

// Resume continues a paused member with SIGCONT.
func (m *EtcdMember) Resume() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.runningLocked() {
		return fmt.Errorf("daemon: etcd member %s is not running", m.Name)
	}
	if err := m.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		return fmt.Errorf("daemon: resume etcd member %s: %w", m.Name, err)
	}
	m.paused = false
	return nil
}

// startLocked starts the member's process and waits until it listens on both its ports.
func (m *EtcdMember) startLocked(initialCluster, state string) error {
	cfg := m.cluster.cfg
	args := []string{
		"--name", m.Name,
		"--data-dir", m.DataDir,
		"--listen-client-urls", m.Endpoint(),
		"--advertise-client-urls", m.Endpoint(),
		"--listen-peer-urls", m.PeerURL(),
		"--initial-advertise-peer-urls", m.PeerURL(),
		"--initial-cluster", initialCluster,
		"--initial-cluster-token", m.cluster.token,
		"--initial-cluster-state", state,
		"--heartbeat-interval", strconv.FormatInt(cfg.heartbeat.Milliseconds(), 10),
		"--election-timeout", strconv.FormatInt(cfg.election.Milliseconds(), 10),
		"--logger", "zap",
		"--log-outputs", "stderr",
	}
	if cfg.noFsync {
		args = append(args, "--unsafe-no-fsync")
	}
	if cfg.maxTxnOps > 0 {
		args = append(args, "--max-txn-ops", strconv.Itoa(cfg.maxTxnOps))
	}
	if cfg.maxRequestBytes > 0 {
		args = append(args, "--max-request-bytes", strconv.Itoa(cfg.maxRequestBytes))
	}
	args = append(args, cfg.flags...)
	logf, err := os.OpenFile(m.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== dao: etcd %s\n", strings.Join(args, " "))
	cmd := exec.Command("etcd", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// etcd reads ETCD_* variables as flags: keep ours only.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own process group, so that a Ctrl-C meant for the program does not reach it.
		Setpgid: true,
		// Dies with the thread that started it. Go does not end its threads while the
		// program runs (unless a goroutine locked to one exits), so in effect with the
		// process, even one killed by SIGKILL.
		Pdeathsig: syscall.SIGKILL,
		// Root, in a group of its own: what Partition's rules know its packets by.
		Credential: &syscall.Credential{Uid: 0, Gid: m.gid()},
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("daemon: start etcd member %s: %w", m.Name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	m.cmd, m.exited, m.paused = cmd, exited, false
	deadline := time.Now().Add(10 * time.Second)
	for !listens(cmd.Process.Pid, m.clientPort, m.peerPort) {
		select {
		case <-exited:
			m.cmd = nil
			return fmt.Errorf("daemon: etcd member %s exited while starting", m.Name)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.killLocked()
			return fmt.Errorf("daemon: etcd member %s did not listen on its ports within 10s", m.Name)
		}
	}
	return nil
}

// status asks the member alone for its status, for at most timeout.
func (m *EtcdMember) status(ctx context.Context, timeout time.Duration) (*clientv3.StatusResponse, error) {
	// A new client each time: a client's connection that failed waits out gRPC's backoff
	// before it tries again, which would hide a member that came back.
	cl, err := newEtcdClient([]string{m.Endpoint()})
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return cl.Status(ctx, m.Endpoint())
}

// freePorts returns n distinct TCP ports of 127.0.0.1 that nothing listens on at the moment.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// listens reports whether process pid has listening TCP sockets on 127.0.0.1 at every one of
// ports: its own sockets, not another process's that took a port first.
func listens(pid int, ports ...int) bool {
	inodes := socketInodes(pid)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return false
	}
	want := map[string]bool{}
	for _, p := range ports {
		want[fmt.Sprintf("0100007F:%04X", p)] = true
	}
	for _, line := range strings.Split(string(b), "\n") {
		// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
		f := strings.Fields(line)
		if len(f) > 9 && f[3] == "0A" && want[f[1]] && inodes[f[9]] {
			delete(want, f[1])
		}
	}
	return len(want) == 0
}
