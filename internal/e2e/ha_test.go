package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/opendao/dao"
	"github.com/opendao/dao/cluster"
	"github.com/opendao/dao/internal/daemon"
	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/internal/testutil/netns"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/orchestrator/simnode"
)

// The lease of the replicas in these tests: a lost leader is replaced within about it.
const haLeaseTTL = 2 * time.Second

// replica is one `dao control-plane --etcd` process.
type replica struct {
	t      *testing.T
	name   string
	addr   string // host:port it serves the nodes on, and campaigns with
	cmd    *exec.Cmd
	log    *lockedBuffer
	exited chan struct{}
}

func startReplica(t *testing.T, name, listenIP string, endpoints []string) *replica {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(listenIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r := &replica{t: t, name: name, addr: addr, log: &lockedBuffer{}, exited: make(chan struct{})}
	r.cmd = exec.Command(daoProgram(t), "control-plane", "--etcd", strings.Join(endpoints, ","),
		"--listen", addr, "--state-dir", filepath.Join(t.TempDir(), name), "--lease-ttl", haLeaseTTL.String())
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = r.cmd.Wait(); close(r.exited) }()
	t.Cleanup(func() {
		_ = r.cmd.Process.Signal(syscall.SIGCONT)
		r.kill()
		if t.Failed() || os.Getenv("DAO_E2E_LOGS") != "" {
			t.Logf("replica %s (%s) log:\n%s", name, addr, r.log.String())
		}
	})
	return r
}

func (r *replica) kill() {
	select {
	case <-r.exited:
		return
	default:
	}
	_ = r.cmd.Process.Kill()
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
		r.t.Errorf("replica %s did not die within 10s of SIGKILL", r.name)
	}
}

var joinLine = regexp.MustCompile(`dao agent --join (\S+) (\S+)`)

// token returns the join token the replica printed.
func (r *replica) token() string {
	r.t.Helper()
	var tok string
	waitFor(r.t, "replica "+r.name+" prints its join command", 30*time.Second, func() bool {
		m := joinLine.FindStringSubmatch(r.log.String())
		if m != nil {
			tok = m[1]
		}
		return m != nil
	})
	return tok
}

// haPlane is a control plane of replicas on an etcd cluster, and the test's own view of
// its store (an EtcdStore of the same prefix, and an orchestrator over it that runs no
// loops: what any program calling the API of a replica sees).
type haPlane struct {
	t        *testing.T
	etcd     *testutil.Etcd
	cli      *clientv3.Client
	replicas []*replica
	store    *orchestrator.EtcdStore
	api      *orchestrator.Orchestrator
}

func startHA(t *testing.T, listenIP string, n int) *haPlane {
	t.Helper()
	e := testutil.StartEtcd(t, 3, daemon.WithEtcdTimings(50*time.Millisecond, 500*time.Millisecond))
	cli, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints(), DialTimeout: 5 * time.Second,
		Logger: zap.NewNop(), DialKeepAliveTime: 10 * time.Second, DialKeepAliveTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	h := &haPlane{t: t, etcd: e, cli: cli}
	for i := range n {
		h.replicas = append(h.replicas, startReplica(t, fmt.Sprintf("cp%d", i+1), listenIP, e.Endpoints()))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h.store, err = orchestrator.OpenEtcdStore(ctx, h.cli, orchestrator.WithStoreLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.store.Close() })
	if h.api, err = orchestrator.New(h.store); err != nil {
		t.Fatal(err)
	}
	h.waitLeader(nil, 30*time.Second)
	return h
}

// addrs lists the replicas' addresses, for the agents.
func (h *haPlane) addrs() string {
	var a []string
	for _, r := range h.replicas {
		a = append(a, r.addr)
	}
	return strings.Join(a, ",")
}

// leader returns the replica that leads now, or nil.
func (h *haPlane) leader() *replica {
	v, err := h.store.Leader(context.Background())
	if err != nil {
		return nil
	}
	for _, r := range h.replicas {
		if r.addr == v {
			return r
		}
	}
	return nil
}

// waitLeader waits for a replica other than not to lead, and returns it and how long it
// took.
func (h *haPlane) waitLeader(not *replica, within time.Duration) (*replica, time.Duration) {
	h.t.Helper()
	var l *replica
	d := waitFor(h.t, "a replica leads", within, func() bool {
		l = h.leader()
		return l != nil && l != not && strings.Contains(l.log.String(), "dao control-plane: leading")
	})
	return l, d
}

// tasks returns the store's tasks of service, after syncing with etcd.
func (h *haPlane) tasks(service string) []orchestrator.Task {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.store.Sync(ctx); err != nil {
		return nil // etcd is away: nothing is known
	}
	ts, err := h.api.Tasks(ctx, orchestrator.TaskFilter{ServiceID: service, Live: true})
	if err != nil {
		h.t.Fatal(err)
	}
	return ts
}

func (h *haPlane) running(service string) int {
	n := 0
	for _, t := range h.tasks(service) {
		if t.Status.State == dao.TaskRunning {
			n++
		}
	}
	return n
}

// scale sets the service's replicas, through any replica's API, trying again while etcd
// is unavailable.
func (h *haPlane) scale(service string, n int) {
	h.t.Helper()
	waitFor(h.t, fmt.Sprintf("scale %s to %d", service, n), 60*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := h.api.ScaleService(ctx, service, n)
		if err != nil && !errdefs.IsUnavailable(err) && !errdefs.IsConflict(err) {
			h.t.Fatalf("scale %s: %v", service, err)
		}
		return err == nil
	})
}

// simNodes connects n simulated nodes, labelled role=sim, to the control plane, each
// behind its own client in this process. They join with the first replica's token at
// the last replica, whatever each is: the replicas share their join tokens.
func (h *haPlane) simNodes(n int) []*simnode.Node {
	h.t.Helper()
	token := h.replicas[0].token()
	var nodes []*simnode.Node
	for i := range n {
		id := fmt.Sprintf("sim-%d", i+1)
		var ident *cluster.Identity
		var err error
		at := h.replicas[len(h.replicas)-1].addr
		waitFor(h.t, "join "+id+" at "+at, 10*time.Second, func() bool {
			ident, err = cluster.Join(context.Background(), at, token, id)
			// The token reaches the other replicas' CAs a moment after it is printed, and
			// the replica may not listen yet.
			if err != nil && !errdefs.IsUnauthorized(err) && !errdefs.IsUnavailable(err) {
				h.t.Fatalf("join %s: %v", id, err)
			}
			return err == nil
		})
		info := dao.Node{ID: id, Labels: map[string]string{"role": "sim"},
			Capacity:    dao.Resources{MilliCPU: 4000, Memory: 8 * dao.GiB},
			Allocatable: dao.Resources{MilliCPU: 4000, Memory: 8 * dao.GiB}}
		var c *cluster.Client
		node, err := simnode.New(info, simnode.WithStartLatency(simnode.Fixed(10*time.Millisecond)),
			simnode.WithStatusFunc(func(u orchestrator.TaskUpdate) { c.Report(u) }))
		if err != nil {
			h.t.Fatal(err)
		}
		c, err = cluster.NewClient(h.addrs(), ident, info, node, cluster.WithBackoff(100*time.Millisecond, time.Second))
		if err != nil {
			h.t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		h.t.Cleanup(func() { cancel(); <-done; node.Close() })
		nodes = append(nodes, node)
	}
	return nodes
}

// simSlots counts, across the simulated nodes, the running tasks of service by slot.
func simSlots(nodes []*simnode.Node, service string) map[int]int {
	out := map[int]int{}
	for _, n := range nodes {
		for _, t := range n.Tasks() {
			// The node knows the task by its ID, service.slot.suffix.
			parts := strings.Split(t.ID, ".")
			var slot int
			if len(parts) == 3 && parts[0] == service && t.Status.State == dao.TaskRunning {
				if _, err := fmt.Sscan(parts[1], &slot); err == nil {
					out[slot]++
				}
			}
		}
	}
	return out
}

func simService(name string, replicas int) dao.ServiceSpec {
	return dao.ServiceSpec{Name: name, Replicas: replicas,
		Placement: dao.Placement{Constraints: []string{"node.labels.role == sim"}},
		Container: dao.ContainerSpec{Image: "example.com/sim:1", Resources: dao.Resources{MilliCPU: 10, Memory: 16 * dao.MiB}}}
}

// converged says whether the service runs n tasks in the store and on the simulated nodes,
// one per slot.
func (h *haPlane) simConverged(nodes []*simnode.Node, service string, n int) bool {
	slots := simSlots(nodes, service)
	if r := h.running(service); len(slots) != n || r != n {
		if os.Getenv("DAO_E2E_LOGS") != "" {
			h.t.Logf("%s: %d slots on the nodes, %d running in the store, want %d", service, len(slots), r, n)
		}
		return false
	}
	for _, c := range slots {
		if c != 1 {
			return false
		}
	}
	return true
}

// TestHAControlPlaneSurvivesItsLeadersDeath: three dao control-plane replicas on a
// three-member etcd; two real agents (dao agent programs, each in a network namespace of
// its own, with containerd) and four simulated nodes run two services. The leading
// replica is killed with SIGKILL: another leads within seconds, the agents follow it, and
// nothing is lost, created again or run twice, counted on the nodes (containerd's
// containers and events, the simulated nodes' tasks).
func TestHAControlPlaneSurvivesItsLeadersDeath(t *testing.T) {
	testutil.RequireIntegration(t, "ip", "iptables", "etcd")
	lab := netns.NewLab(t, 15)
	c := testutil.StartContainerd(t)
	creates := countCreations(t, c.Client)
	h := startHA(t, lab.HostIP(), 3)

	token := h.replicas[0].token()
	var nss []string
	for _, n := range []string{"r1", "r2"} {
		host := lab.AddHost(n)
		ns := "agent-" + n
		nss = append(nss, ns)
		importApp(t, c, ns)
		startAgent(t, host, n, h.addrs(), token, c.Address, ns, filepath.Join(t.TempDir(), n), "--label", "role=real")
	}
	sims := h.simNodes(4)
	web := appService("web", 4)
	web.Placement.Constraints = []string{"node.labels.role == real"}
	if _, err := h.api.CreateService(context.Background(), web); err != nil {
		t.Fatal(err)
	}
	if _, err := h.api.CreateService(context.Background(), simService("sim", 20)); err != nil {
		t.Fatal(err)
	}
	webConverged := func(n int) bool {
		slots := slotsRunning(t, c.Client, "web", nss...)
		if len(slots) != n || h.running("web") != n {
			return false
		}
		for _, k := range slots {
			if k != 1 {
				return false
			}
		}
		return true
	}
	waitFor(t, "4 web containers and 20 simulated tasks running", 2*time.Minute, func() bool {
		return webConverged(4) && h.simConverged(sims, "sim", 20)
	})
	created := map[string]int{}
	for _, ns := range nss {
		created[ns], _ = creates.in(ns)
	}

	old := h.leader()
	old.kill()
	killed := time.Now()
	l, took := h.waitLeader(old, 30*time.Second)
	t.Logf("replica %s leads %s after %s was killed", l.name, took.Round(time.Millisecond), old.name)
	if took > 4*haLeaseTTL {
		t.Errorf("a new leader after %s, want within about the lease (%s)", took, haLeaseTTL)
	}
	// The new leader takes the nodes in and changes nothing of what runs.
	waitFor(t, "every node connected to the new leader", time.Minute, func() bool {
		ns, err := h.api.Nodes(context.Background())
		if err != nil || len(ns) != 6 {
			return false
		}
		for _, n := range ns {
			if n.Status.State != dao.NodeReady {
				return false
			}
		}
		return true
	})
	time.Sleep(2 * time.Second) // what a takeover would wrongly do, it does at once
	if !webConverged(4) || !h.simConverged(sims, "sim", 20) {
		t.Errorf("after the failover: web slots %v (store %d running), sim slots %v (store %d running)",
			slotsRunning(t, c.Client, "web", nss...), h.running("web"), simSlots(sims, "sim"), h.running("sim"))
	}
	for _, ns := range nss {
		if n, ids := creates.in(ns); n != created[ns] {
			t.Errorf("containers created in %s: %d before the failover, %d after (%v)", ns, created[ns], n, ids)
		}
	}
	// The new leader works: a scale reaches the nodes.
	h.scale("web", 6)
	h.scale("sim", 25)
	waitFor(t, "6 web containers and 25 simulated tasks", 2*time.Minute, func() bool {
		return webConverged(6) && h.simConverged(sims, "sim", 25)
	})
	t.Logf("from SIGKILL to both services scaled on the new leader: %s", time.Since(killed).Round(time.Millisecond))
}

// revisionRecord is what the etcd store keeps with each revision.
type revisionRecord struct {
	Revision uint64 `json:"revision"`
	Cause    string `json:"cause"`
	Fence    string `json:"fence"`
}

// TestHAFencesAPausedLeader: the leading replica is frozen (SIGSTOP) past its lease,
// another takes over, and the old one is thawed (SIGCONT) with its loops mid-flight: not
// one write of the old leader is accepted after the takeover, as etcd's history of the
// store's revisions shows, and it stands by.
func TestHAFencesAPausedLeader(t *testing.T) {
	testutil.RequireIntegration(t, "etcd")
	h := startHA(t, "127.0.0.1", 3)
	sims := h.simNodes(3)
	if _, err := h.api.CreateService(context.Background(), simService("sim", 12)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "12 simulated tasks running", time.Minute, func() bool { return h.simConverged(sims, "sim", 12) })

	old := h.leader()
	oldKey := h.leaderKey()
	// Work for the leader as it freezes: its loops take it in when thawed, after the
	// takeover, and try to write.
	h.scale("sim", 14)
	if err := old.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	l, took := h.waitLeader(old, 30*time.Second)
	newKey := h.leaderKey()
	t.Logf("replica %s leads %s after %s was frozen", l.name, took.Round(time.Millisecond), old.name)
	// The takeover is when the old leadership's key went, with its lease.
	takeover := h.deletedAt(oldKey)
	// Work for the new leader while the old one is frozen, then thaw it mid-flight.
	h.scale("sim", 18)
	if err := old.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "18 simulated tasks running", time.Minute, func() bool { return h.simConverged(sims, "sim", 18) })
	waitFor(t, "the old leader stands by", 30*time.Second, func() bool {
		return strings.Contains(old.log.String(), "the leadership is lost")
	})
	h.scale("sim", 15)
	waitFor(t, "15 simulated tasks running", time.Minute, func() bool { return h.simConverged(sims, "sim", 15) })

	// Every revision the store got since the takeover: none under the old leadership.
	hist := h.revisionsSince(takeover)
	byNew := 0
	for _, r := range hist {
		switch r.Fence {
		case oldKey:
			t.Errorf("revision %d (%s) was written under the old leadership %s after the takeover", r.Revision, r.Cause, oldKey)
		case newKey:
			byNew++
		}
	}
	if byNew == 0 {
		t.Errorf("no revision written by the new leader in %d since the takeover", len(hist))
	}
	if old.leaderAgain(h) {
		t.Error("the thawed replica leads again")
	}
	t.Logf("%d revisions since the takeover, %d by the new leader; the old leader's log tells of %d writes fenced off",
		len(hist), byNew, strings.Count(old.log.String(), "fenced off"))
}

// deletedAt returns the etcd revision at which key was deleted.
func (h *haPlane) deletedAt(key string) int64 {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for resp := range h.cli.Watch(ctx, key, clientv3.WithRev(1)) {
		for _, ev := range resp.Events {
			if ev.Type == clientv3.EventTypeDelete {
				return ev.Kv.ModRevision
			}
		}
	}
	h.t.Fatalf("no deletion of %s", key)
	return 0
}

// leaderKey returns the election key of the replica that leads now.
func (h *haPlane) leaderKey() string {
	h.t.Helper()
	resp, err := h.cli.Get(context.Background(), orchestrator.DefaultEtcdPrefix+"leader/", clientv3.WithFirstCreate()...)
	if err != nil || len(resp.Kvs) == 0 {
		h.t.Fatalf("leader key: %v", err)
	}
	return string(resp.Kvs[0].Key)
}

func (r *replica) leaderAgain(h *haPlane) bool { return h.leader() == r }

// revisionsSince returns the store's revision records written at etcd revision from and
// after, from etcd's history of the revision key.
func (h *haPlane) revisionsSince(from int64) []revisionRecord {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cur, err := h.cli.Get(ctx, orchestrator.DefaultEtcdPrefix+"meta/rev")
	if err != nil {
		h.t.Fatal(err)
	}
	last := cur.Header.Revision
	wch := h.cli.Watch(ctx, orchestrator.DefaultEtcdPrefix+"meta/rev", clientv3.WithRev(from))
	var out []revisionRecord
	for resp := range wch {
		if err := resp.Err(); err != nil {
			h.t.Fatal(err)
		}
		for _, ev := range resp.Events {
			var r revisionRecord
			if err := json.Unmarshal(ev.Kv.Value, &r); err != nil {
				h.t.Fatalf("revision record at %d: %v", ev.Kv.ModRevision, err)
			}
			out = append(out, r)
			if ev.Kv.ModRevision >= last {
				return out
			}
		}
	}
	return out
}

// TestHAControlPlaneRidesOutEtcdFaults: the control plane keeps working, or pauses and
// resumes, losing nothing, when etcd's leader member is killed, when a member is cut off
// by a network partition, and when all of etcd is down for a while (API calls then fail
// with an error of class Unavailable, and the nodes run on).
func TestHAControlPlaneRidesOutEtcdFaults(t *testing.T) {
	testutil.RequireIntegration(t, "etcd", "iptables")
	h := startHA(t, "127.0.0.1", 2)
	sims := h.simNodes(3)
	if _, err := h.api.CreateService(context.Background(), simService("sim", 9)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "9 running", time.Minute, func() bool { return h.simConverged(sims, "sim", 9) })
	ctx := context.Background()

	// etcd's leader member dies.
	li, err := h.etcd.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h.etcd.Member(li).Kill()
	h.scale("sim", 12)
	waitFor(t, "12 running with etcd's leader member dead", time.Minute, func() bool { return h.simConverged(sims, "sim", 12) })
	if err := h.etcd.Member(li).Start(); err != nil {
		t.Fatal(err)
	}

	// A member is cut off.
	victim := h.etcd.Member((li + 1) % 3)
	if err := victim.Partition(); err != nil {
		t.Fatal(err)
	}
	h.scale("sim", 7)
	// A client's requests to the member cut off go unanswered until its keepalive gives the
	// connection up (10 to 13 s): the control plane slows down, then goes on.
	d := waitFor(t, "7 running with a member partitioned", 2*time.Minute, func() bool { return h.simConverged(sims, "sim", 7) })
	t.Logf("scaled with an etcd member partitioned in %s", d.Round(time.Millisecond))
	if err := victim.Heal(); err != nil {
		t.Fatal(err)
	}

	// All of etcd is down: the API says so, the nodes run on.
	before := simSlots(sims, "sim")
	for _, m := range h.etcd.Members() {
		m.Kill()
	}
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	began := time.Now()
	_, err = h.api.ScaleService(tctx, "sim", 3)
	cancel()
	if !errdefs.IsUnavailable(err) && !errdefs.IsDeadlineExceeded(err) {
		t.Errorf("scale with etcd down: %v, want an error of class Unavailable", err)
	} else {
		t.Logf("scale with etcd down failed in %s: %v", time.Since(began).Round(time.Millisecond), err)
	}
	// A replica that starts with etcd away says so, and waits for it.
	late := startReplica(t, "cp-late", "127.0.0.1", h.etcd.Endpoints())
	h.replicas = append(h.replicas, late)
	waitFor(t, "the late replica says it cannot reach etcd", 30*time.Second, func() bool {
		return strings.Contains(late.log.String(), "cannot read the store yet; retrying")
	})
	time.Sleep(time.Second)
	if got := simSlots(sims, "sim"); !slices.Equal(sortedKeys(got), sortedKeys(before)) {
		t.Errorf("with etcd down the nodes run slots %v, want %v as before", got, before)
	}
	for _, m := range h.etcd.Members() {
		if err := m.Start(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the late replica opens the store once etcd is back", time.Minute, func() bool {
		return strings.Contains(late.log.String(), "dao agent --join")
	})
	h.scale("sim", 10)
	waitFor(t, "10 running once etcd is back", 2*time.Minute, func() bool { return h.simConverged(sims, "sim", 10) })
}

func sortedKeys(m map[int]int) []int {
	var k []int
	for s := range m {
		k = append(k, s)
	}
	slices.Sort(k)
	return k
}
