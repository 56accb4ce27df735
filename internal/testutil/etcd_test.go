package testutil_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/opendao/dao/internal/daemon"
	"github.com/opendao/dao/internal/testutil"
)

// quickElections are raft timings that make failovers take a fraction of a second.
var quickElections = daemon.WithEtcdTimings(20*time.Millisecond, 200*time.Millisecond)

func TestEtcdOneMemberPutGet(t *testing.T) {
	e := testutil.StartEtcd(t, 1)
	if got := len(e.Endpoints()); got != 1 {
		t.Fatalf("got %d endpoints, want 1", got)
	}
	cl := e.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cl.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if got := get(ctx, t, cl, "k"); got != "v" {
		t.Errorf("get k: got %q, want %q", got, "v")
	}
	if i, err := e.Leader(ctx); err != nil || i != 0 {
		t.Errorf("Leader: got %d, %v; want 0", i, err)
	}
	requireNothingLeft(t, e)
}

// TestEtcdSurvivesLeaderKill kills the leader of three: the two others elect a new one and
// take writes; the killed member comes back on its data and catches up.
func TestEtcdSurvivesLeaderKill(t *testing.T) {
	e := testutil.StartEtcd(t, 3, quickElections)
	cl := e.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	old, err := e.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	e.Member(old).Kill()
	putEventually(ctx, t, cl, "k", "after-kill")
	t.Logf("a put succeeded %v after the leader was killed", time.Since(killed).Round(time.Millisecond))
	leader, err := e.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if leader == old {
		t.Fatalf("Leader: got the killed member m%d", old)
	}
	m := e.Member(old)
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	if err := m.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if got := get(ctx, t, e.Client(t, m.Endpoint()), "k"); got != "after-kill" {
		t.Errorf("get k from the restarted member: got %q, want %q", got, "after-kill")
	}
	requireNothingLeft(t, e)
}

// TestEtcdPartitionedLeader partitions the leader: clients of its endpoint get nothing, the two
// others elect a new leader (which they would not if it still reached them) and take writes,
// and once healed it serves what was written meanwhile.
func TestEtcdPartitionedLeader(t *testing.T) {
	testutil.RequireIntegration(t, "etcd", "iptables")
	e := testutil.StartEtcd(t, 3, quickElections)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	old, err := e.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := e.Member(old)
	if err := m.Partition(); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = e.Client(t, m.Endpoint()).Put(short, "k", "through-the-partitioned")
	cancelShort()
	if err == nil {
		t.Fatal("a put through the partitioned member's endpoint succeeded")
	}
	putEventually(ctx, t, e.Client(t, othersThan(e, old)...), "k", "during-partition")
	leader, err := e.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if leader == old {
		t.Fatalf("Leader: got the partitioned member m%d", old)
	}
	if err := m.Heal(); err != nil {
		t.Fatal(err)
	}
	if got := getEventually(ctx, t, m.Endpoint(), "k"); got != "during-partition" {
		t.Errorf("get k from the healed member: got %q, want %q", got, "during-partition")
	}
	requireNothingLeft(t, e)
}

// TestEtcdPartitionedFollowerHearsNothing partitions a follower and writes through the others:
// the write must not reach the follower's WAL, which it would if its leader's messages still
// reached it (they travel on connections the follower dialed, which rules on its own ports
// alone leave open), nor after the follower is started again, partitioned. Once healed it
// catches up.
func TestEtcdPartitionedFollowerHearsNothing(t *testing.T) {
	testutil.RequireIntegration(t, "etcd", "iptables")
	e := testutil.StartEtcd(t, 3, quickElections)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	leader, err := e.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fi := (leader + 1) % 3
	f := e.Member(fi)
	before := fmt.Sprintf("before-%d", time.Now().UnixNano())
	putEventually(ctx, t, e.Client(t), "k", before)
	waitForWAL(ctx, t, f, before)
	if err := f.Partition(); err != nil {
		t.Fatal(err)
	}
	during := fmt.Sprintf("during-%d", time.Now().UnixNano())
	putEventually(ctx, t, e.Client(t, othersThan(e, fi)...), "k", during)
	waitForWAL(ctx, t, e.Member((leader+2)%3), during)
	// Ten heartbeats, for anything that got through to reach the WAL.
	time.Sleep(200 * time.Millisecond)
	if walHas(t, f, during) {
		t.Fatalf("the partitioned follower %s received the write made during its partition", f.Name)
	}
	// Started again, it dials its peers anew: those connections are cut too.
	f.Kill()
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if walHas(t, f, during) {
		t.Fatalf("the partitioned follower %s, started again, received the write made during its partition", f.Name)
	}
	if err := f.Heal(); err != nil {
		t.Fatal(err)
	}
	if got := getEventually(ctx, t, f.Endpoint(), "k"); got != during {
		t.Errorf("get k from the healed follower: got %q, want %q", got, during)
	}
	requireNothingLeft(t, e)
}

// waitForWAL waits until m's WAL holds s.
func waitForWAL(ctx context.Context, t *testing.T, m *daemon.EtcdMember, s string) {
	t.Helper()
	for !walHas(t, m, s) {
		select {
		case <-ctx.Done():
			t.Fatalf("%s's WAL does not hold %q", m.Name, s)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// walHas reports whether m's write-ahead log holds s: a value that m received.
func walHas(t *testing.T, m *daemon.EtcdMember, s string) bool {
	t.Helper()
	wals, err := filepath.Glob(filepath.Join(m.DataDir, "member", "wal", "*.wal"))
	if err != nil || len(wals) == 0 {
		t.Fatalf("%s has no WAL (%v)", m.Name, err)
	}
	for _, w := range wals {
		b, err := os.ReadFile(w)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}

// TestEtcdPausedLeaderIsReplaced pauses the leader: the others replace it, and once resumed
// it follows.
func TestEtcdPausedLeaderIsReplaced(t *testing.T) {
	e := testutil.StartEtcd(t, 3, quickElections)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	old, err := e.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Member(old).Pause(); err != nil {
		t.Fatal(err)
	}
	putEventually(ctx, t, e.Client(t, othersThan(e, old)...), "k", "while-paused")
	if err := e.Member(old).Resume(); err != nil {
		t.Fatal(err)
	}
	if got := getEventually(ctx, t, e.Member(old).Endpoint(), "k"); got != "while-paused" {
		t.Errorf("get k from the resumed member: got %q, want %q", got, "while-paused")
	}
	if leader, err := e.Leader(ctx); err != nil || leader == old {
		t.Errorf("Leader after resume: got %d, %v; want another than m%d", leader, err, old)
	}
	requireNothingLeft(t, e)
}

// TestEtcdLeftByKilledProcessIsReaped kills a process that runs a partitioned cluster, as a test
// timeout would: its members die with it, and the next process's ReapStaleEtcd removes its
// directory and its firewall chains.
func TestEtcdLeftByKilledProcessIsReaped(t *testing.T) {
	if os.Getenv("DAO_ETCD_REAP_CHILD") != "" {
		leaveAnEtcdBehind(t)
		return
	}
	testutil.RequireIntegration(t, "etcd", "iptables")
	// A temporary directory of the test's own, so that no other test process reaps the
	// cluster's directory before this one looks at it.
	t.Setenv("TMPDIR", t.TempDir())
	cmd := exec.Command(os.Args[0], "-test.run=^TestEtcdLeftByKilledProcessIsReaped$", "-test.v")
	cmd.Env = append(os.Environ(), "DAO_ETCD_REAP_CHILD=1")
	out, _ := cmd.Output() // it dies of SIGKILL
	var dir string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "DIR="); ok {
			dir = v
		}
	}
	if dir == "" {
		t.Fatalf("the child did not leave a cluster; its output:\n%s", out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for left := processesNaming(dir); len(left) > 0; left = processesNaming(dir) {
		if time.Now().After(deadline) {
			t.Fatalf("etcd members outlived the process that started them: %v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
	daemon.ReapStaleEtcd()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the cluster's directory %s is still there (%v)", dir, err)
	}
	if left := chainsOf(t, cmd.Process.Pid); len(left) > 0 {
		t.Errorf("chains of the killed process are left: %v", left)
	}
}

// leaveAnEtcdBehind runs in the child of TestEtcdLeftByKilledProcessIsReaped: it starts a
// cluster, partitions a member, says where the cluster is and kills itself.
func leaveAnEtcdBehind(t *testing.T) {
	c, err := daemon.StartEtcd(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Member(0).Partition(); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("DIR=%s\n", c.Dir)
	os.Stdout.Sync()
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// requireNothingLeft closes e and checks that none of its processes, its directory and
// its firewall chains are left.
func requireNothingLeft(t *testing.T, e *testutil.Etcd) {
	t.Helper()
	if err := e.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if left := processesNaming(e.Dir); len(left) > 0 {
		t.Errorf("processes left: %v", left)
	}
	if _, err := os.Stat(e.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s is still there (%v)", e.Dir, err)
	}
	if left := chainsOf(t, os.Getpid()); len(left) > 0 {
		t.Errorf("iptables chains left: %v", left)
	}
}

// processesNaming returns the command lines of the processes that name a path in dir.
func processesNaming(dir string) []string {
	var out []string
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range cmdlines {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), dir+"/") {
			out = append(out, strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

// chainsOf returns the iptables rules that name a chain of Partition of process pid.
func chainsOf(t *testing.T, pid int) []string {
	t.Helper()
	if _, err := exec.LookPath("iptables"); err != nil {
		return nil
	}
	out, err := exec.Command("iptables", "-w", "5", "-S").Output()
	if err != nil {
		t.Fatalf("iptables -S: %v", err)
	}
	var left []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "DAO-ETCD-"+strconv.Itoa(pid)+"-") {
			left = append(left, line)
		}
	}
	return left
}

// othersThan returns the endpoints of every member but i.
func othersThan(e *testutil.Etcd, i int) []string {
	var out []string
	for j, ep := range e.Endpoints() {
		if j != i {
			out = append(out, ep)
		}
	}
	return out
}

// putEventually puts k until a put succeeds or ctx ends. A put that a follower took while it
// had no leader waits for nothing: each try is cut short, after 200ms first, and after twice
// as long each time up to 2s.
func putEventually(ctx context.Context, t *testing.T, cl *clientv3.Client, k, v string) {
	t.Helper()
	for try := 200 * time.Millisecond; ; try = min(2*try, 2*time.Second) {
		actx, cancel := context.WithTimeout(ctx, try)
		_, err := cl.Put(actx, k, v)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("put %s: %v", k, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// get returns k's value, or "" when there is none.
func get(ctx context.Context, t *testing.T, cl *clientv3.Client, k string, opts ...clientv3.OpOption) string {
	t.Helper()
	resp, err := cl.Get(ctx, k, opts...)
	if err != nil {
		t.Fatalf("get %s: %v", k, err)
	}
	if len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}

// getEventually reads k, linearizably, from endpoint until a read succeeds or ctx ends, with a
// new client for each try (a client that dialed into a partition waits out TCP's retries).
func getEventually(ctx context.Context, t *testing.T, endpoint, k string) string {
	t.Helper()
	for {
		v, err := tryGet(ctx, endpoint, k)
		if err == nil {
			return v
		}
		select {
		case <-ctx.Done():
			t.Fatalf("get %s from %s: %v", k, endpoint, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func tryGet(ctx context.Context, endpoint, k string) (string, error) {
	cl, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, Logger: zap.NewNop()})
	if err != nil {
		return "", err
	}
	defer cl.Close()
	actx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, err := cl.Get(actx, k)
	if err != nil {
		return "", err
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}
