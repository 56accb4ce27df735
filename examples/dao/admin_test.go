package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/opendao/dao"
	"github.com/opendao/dao/cluster"
	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/orchestrator/simnode"
)

// inProcess is a long-lived dao command (dao control-plane) run in the test's process.
type inProcess struct {
	t      *testing.T
	name   string
	out    syncBuffer
	cancel context.CancelFunc
	done   chan int
}

func runInProcess(t *testing.T, name string, args ...string) *inProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &inProcess{t: t, name: name, cancel: cancel, done: make(chan int, 1)}
	go func() { p.done <- runContext(ctx, args, strings.NewReader(""), &p.out, &p.out) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("output of %s:\n%s", name, p.out.String())
		}
	})
	return p
}

// stop ends the command as SIGTERM would and waits for it.
func (p *inProcess) stop() {
	p.cancel()
	select {
	case status := <-p.done:
		p.done <- status
	case <-time.After(15 * time.Second):
		p.t.Errorf("%s did not stop within 15s", p.name)
	}
}

func (p *inProcess) waitOutput(re string, within time.Duration) []string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(within)
	for {
		if m := rx.FindStringSubmatch(p.out.String()); m != nil {
			return m
		}
		select {
		case status := <-p.done:
			p.done <- status
			p.t.Fatalf("%s exited (%d) before printing %q", p.name, status, re)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s did not print %q within %s", p.name, re, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// simRemote is a simulated node behind the real node protocol, as dao agent is one over
// containerd.
type simRemote struct {
	id     string
	node   *simnode.Node
	client *cluster.Client
	done   chan error
}

func connectSimNode(t *testing.T, addr, token, id string) *simRemote {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ident, err := cluster.Join(ctx, addr, token, id)
	if err != nil {
		t.Fatalf("join %s: %v", id, err)
	}
	r := &simRemote{id: id, done: make(chan error, 1)}
	info := dao.Node{ID: id, Hostname: "host-" + id, Platform: dao.Platform{OS: "linux", Architecture: "amd64"},
		Capacity:    dao.Resources{MilliCPU: 4000, Memory: 8 * dao.GiB},
		Allocatable: dao.Resources{MilliCPU: 4000, Memory: 8 * dao.GiB}}
	r.node, err = simnode.New(info, simnode.WithStartLatency(simnode.Fixed(20*time.Millisecond)),
		simnode.WithStatusFunc(func(u orchestrator.TaskUpdate) { r.client.Report(u) }))
	if err != nil {
		t.Fatal(err)
	}
	r.client, err = cluster.NewClient(addr, ident, info, r.node, cluster.WithBackoff(50*time.Millisecond, 500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- r.client.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
		r.node.Close()
	})
	return r
}

// running counts the tasks the simulated node runs.
func (r *simRemote) running() int {
	n := 0
	for _, t := range r.node.Tasks() {
		if t.Status.State == dao.TaskRunning {
			n++
		}
	}
	return n
}

func waitUntil(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// adminJSON runs a listing with -o json and decodes its lines.
func adminJSON[T any](t *testing.T, args ...string) []T {
	t.Helper()
	status, out, errOut := runDao(t, append(args, "-o", "json")...)
	if status != exitOK {
		t.Fatalf("dao %v: status %d, stderr %q", args, status, errOut)
	}
	var list []T
	for line := range strings.Lines(out) {
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("dao %v: line %q: %v", args, line, err)
		}
		list = append(list, v)
	}
	return list
}

func running(t *testing.T, stateDir, service string) int {
	t.Helper()
	for _, s := range adminJSON[serviceEntry](t, "service", "ls", "--state-dir", stateDir) {
		if s.Name == service {
			return s.Running
		}
	}
	return -1
}

func writeSpec(t *testing.T, replicas int) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "web.json")
	spec := fmt.Sprintf(`{"name": "web", "replicas": %d, "container": {"image": "example.com/web:1",
		"resources": {"milliCPU": 100, "memory": %d}}}`, replicas, 32*dao.MiB)
	if err := os.WriteFile(f, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestAdminCommands runs dao control-plane, two simulated nodes behind the real node
// protocol, and drives dao node and dao service against it as an operator would.
func TestAdminCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cp")
	cp := runInProcess(t, "control-plane", "control-plane", "--listen", "127.0.0.1:0", "--state-dir", dir, "--service", writeSpec(t, 2))
	addr := cp.waitOutput(`serving nodes on (\S+);`, 20*time.Second)[1]
	token := cp.waitOutput(`dao agent --join (\S+) `, 10*time.Second)[1]
	cp.waitOutput(regexp.QuoteMeta("admin API on "+filepath.Join(dir, "admin.sock")+" (mode 0600)"), time.Second)

	// The socket is the control plane's user's alone.
	fi, err := os.Stat(filepath.Join(dir, adminSocketName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("admin socket mode %v, want a socket of mode 0600", fi.Mode())
	}

	n1 := connectSimNode(t, addr, token, "n1")
	n2 := connectSimNode(t, addr, token, "n2")
	waitUntil(t, "2 tasks of web running", 20*time.Second, func() bool { return running(t, dir, "web") == 2 })

	nodes := adminJSON[nodeEntry](t, "node", "ls", "--state-dir", dir)
	if len(nodes) != 2 || nodes[0].ID != "n1" || nodes[1].ID != "n2" {
		t.Fatalf("dao node ls: %+v, want n1 and n2", nodes)
	}
	for _, n := range nodes {
		if n.Status != "ready" || n.Availability != "active" || n.Hostname != "host-"+n.ID || n.Platform != "linux/amd64" ||
			n.MilliCPU != 4000 || n.LastSeen == nil {
			t.Errorf("dao node ls: %+v", n)
		}
	}
	if nodes[0].Tasks+nodes[1].Tasks != 2 {
		t.Errorf("dao node ls: %d + %d tasks, want 2", nodes[0].Tasks, nodes[1].Tasks)
	}
	status, out, errOut := runDao(t, "node", "ls", "--state-dir", dir)
	if status != exitOK || !strings.HasPrefix(out, "ID  HOSTNAME  STATUS  AVAILABILITY  TASKS  PLATFORM     CPUS  MEMORY  LAST SEEN\n") ||
		!regexp.MustCompile(`(?m)^n1  host-n1   ready   active        \d      linux/amd64  4     8.59GB  \d+s ago$`).MatchString(out) {
		t.Errorf("dao node ls: status %d, stderr %q, table:\n%s", status, errOut, out)
	}

	// Scale up: the third task runs.
	status, out, errOut = runDao(t, "service", "scale", "web=3", "--state-dir", dir)
	if status != exitOK || !strings.HasPrefix(out, "service web scaled to 3 (") {
		t.Errorf("dao service scale web=3: status %d, stdout %q, stderr %q", status, out, errOut)
	}
	waitUntil(t, "3 tasks of web running", 20*time.Second, func() bool { return running(t, dir, "web") == 3 })
	status, out, _ = runDao(t, "service", "ls", "--state-dir", dir)
	if !regexp.MustCompile(`(?m)^NAME  MODE        REPLICAS  IMAGE              VERSION  UPDATED  UPDATE\nweb   replicated  3/3       example.com/web:1  \d        \d+s ago +-$`).MatchString(out) {
		t.Errorf("dao service ls: status %d, table:\n%q", status, out)
	}

	// Remove n1: drained first, its tasks go to n2, then its certificate is refused.
	onN1 := n1.running()
	status, out, errOut = runDao(t, "node", "rm", "n1", "--state-dir", dir)
	if want := fmt.Sprintf("node n1 drained (%s stopped) and removed; its certificate is refused from now on\n", plural(onN1, "task", "tasks")); status != exitOK || out != want {
		t.Errorf("dao node rm n1: status %d, stdout %q, stderr %q; want %q", status, out, errOut, want)
	}
	if got := n1.running(); got != 0 {
		t.Errorf("n1 runs %d tasks after it was drained, want 0", got)
	}
	select {
	case err := <-n1.done:
		n1.done <- err
		if !errdefs.IsPermissionDenied(err) && !errdefs.IsUnauthorized(err) {
			t.Errorf("n1's client ended with %v, want it refused", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("n1's client still runs 10s after the node was removed: it was not refused")
	}
	if _, err := cluster.Join(context.Background(), addr, token, "n1"); !errdefs.IsPermissionDenied(err) && !errdefs.IsUnauthorized(err) {
		t.Errorf("a new join as n1: %v, want it refused", err)
	}
	waitUntil(t, "3 tasks of web running on n2", 20*time.Second, func() bool { return n2.running() == 3 })
	if nodes := adminJSON[nodeEntry](t, "node", "ls", "--state-dir", dir); len(nodes) != 1 || nodes[0].ID != "n2" {
		t.Errorf("dao node ls after n1 was removed: %+v, want n2 alone", nodes)
	}

	// Mistakes say what to do, and change nothing.
	for _, tc := range []struct {
		args   []string
		status int
		want   string
	}{
		{[]string{"node", "rm", "n3", "--state-dir", dir}, exitFailure, `dao node rm: no node "n3" in the cluster: did you mean "n2"?` + "\n"},
		{[]string{"node", "rm", "edge-7", "--state-dir", dir}, exitFailure, `dao node rm: no node "edge-7" in the cluster (dao node ls lists them)` + "\n"},
		{[]string{"service", "rm", "wbe", "--state-dir", dir}, exitFailure, `dao service rm: no service "wbe": did you mean "web"?` + "\n"},
		{[]string{"service", "scale", "web=-1", "--state-dir", dir}, exitUsage, `dao service scale: "web=-1": want NAME=REPLICAS, such as web=3, with REPLICAS >= 0 (see 'dao help service scale')` + "\n"},
		{[]string{"node", "rm", "n2"}, exitUsage, "dao node rm: --state-dir is required: the control plane's state directory, where its admin socket is (see 'dao help node rm')\n"},
		{[]string{"node", "ls", "--state-dir", t.TempDir()}, exitFailure, "dao node ls: no control plane at "},
		{[]string{"node", "lss", "--state-dir", dir}, exitUsage, `dao node: unknown command "lss": did you mean "ls"? (see 'dao help node')` + "\n"},
	} {
		status, out, errOut := runDao(t, tc.args...)
		if status != tc.status || out != "" || !strings.HasPrefix(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("dao %v: status %d, stdout %q, stderr %q; want status %d and %q", tc.args, status, out, errOut, tc.status, tc.want)
		}
	}

	// A node cut off cannot be drained; without --force, a node whose tasks do not
	// stop stays drained and is not removed.
	n2.node.Close() // its tasks never report stopping now
	status, _, errOut = runDao(t, "node", "rm", "n2", "--timeout", "300ms", "--state-dir", dir)
	if status != exitFailure || !strings.Contains(errOut, "node n2 still runs 3 tasks after 300ms of draining; it stays drained") {
		t.Errorf("dao node rm n2 --timeout 300ms: status %d, stderr %q", status, errOut)
	}
	if nodes := adminJSON[nodeEntry](t, "node", "ls", "--state-dir", dir); len(nodes) != 1 || nodes[0].Availability != "drain" {
		t.Errorf("dao node ls after a drain that timed out: %+v, want n2 drained", nodes)
	}
	status, out, errOut = runDao(t, "node", "rm", "--force", "n2", "--state-dir", dir)
	if status != exitOK || out != "node n2 (ready) removed; 3 tasks to be replaced elsewhere; its certificate is refused from now on\n" {
		t.Errorf("dao node rm --force n2: status %d, stdout %q, stderr %q", status, out, errOut)
	}

	status, out, errOut = runDao(t, "service", "rm", "web", "--state-dir", dir)
	if status != exitOK || !regexp.MustCompile(`^service web removed; \d+ tasks? stopping\n$`).MatchString(out) {
		t.Errorf("dao service rm web: status %d, stdout %q, stderr %q", status, out, errOut)
	}
	if status, out, _ := runDao(t, "service", "ls", "--state-dir", dir); status != exitOK || out != "No services: create one with dao control-plane --service FILE.json.\n" {
		t.Errorf("dao service ls after rm: status %d, stdout %q", status, out)
	}

	// Stopped, the control plane takes its socket away; started again, it serves it again.
	cp.stop()
	if _, err := os.Stat(filepath.Join(dir, adminSocketName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the admin socket after the control plane stopped: %v, want it gone", err)
	}
}

// TestAdminRefusesOtherUsers: the socket's mode keeps others out; were it opened, the
// server still serves only its own user and root, as the kernel names the caller.
func TestAdminRefusesOtherUsers(t *testing.T) {
	a := &adminServer{uid: 4242, log: slog.New(slog.DiscardHandler)}
	h := a.handle(func(*http.Request) (any, error) { return "secret", nil })
	for _, tc := range []struct {
		uid  int
		want int
	}{{4242, http.StatusOK}, {0, http.StatusOK}, {1000, http.StatusForbidden}, {-1, http.StatusForbidden}} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/v1/nodes", nil)
		req = req.WithContext(context.WithValue(req.Context(), peerKey{}, tc.uid))
		h(rec, req)
		if rec.Code != tc.want || (tc.want != http.StatusOK && strings.Contains(rec.Body.String(), "secret")) {
			t.Errorf("uid %d: %d %q, want %d", tc.uid, rec.Code, rec.Body.String(), tc.want)
		}
	}

	// peerUID is the kernel's word.
	dir := t.TempDir()
	l, err := net.Listen("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan int, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- -2
			return
		}
		got <- peerUID(c)
		c.Close()
	}()
	c, err := net.Dial("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if uid := <-got; uid != os.Getuid() {
		t.Errorf("peerUID = %d, want %d", uid, os.Getuid())
	}
}

// TestAdminSocketPathTooLong: a state directory too deep for a unix socket is said so.
func TestAdminSocketPathTooLong(t *testing.T) {
	deep := "/" + strings.Repeat("d", 120)
	status, _, errOut := runDao(t, "node", "ls", "--state-dir", deep)
	if status != exitUsage || !strings.Contains(errOut, "more than a unix socket takes (107): give a shorter --state-dir") {
		t.Errorf("dao node ls --state-dir (deep): status %d, stderr %q", status, errOut)
	}
}

// TestAdminCommandsOnAnyReplica runs two replicas of a control plane on etcd and drives
// the admin commands at the one that stands by: they work there as at the leader.
func TestAdminCommandsOnAnyReplica(t *testing.T) {
	e := testutil.StartEtcd(t, 1)
	endpoints := strings.Join(e.Endpoints(), ",")
	spec := writeSpec(t, 2)
	dirs := []string{filepath.Join(t.TempDir(), "cp1"), filepath.Join(t.TempDir(), "cp2")}
	var replicas []*inProcess
	var addrs []string
	for i, dir := range dirs {
		r := runInProcess(t, fmt.Sprintf("replica %d", i+1), "control-plane", "--etcd", endpoints, "--listen", "127.0.0.1:0",
			"--state-dir", dir, "--lease-ttl", "2s", "--service", spec)
		addrs = append(addrs, r.waitOutput(`serving nodes on (\S+) `, 20*time.Second)[1])
		r.waitOutput(regexp.QuoteMeta("admin API on "+filepath.Join(dir, "admin.sock")), time.Second)
		replicas = append(replicas, r)
		if i == 0 {
			r.waitOutput(`dao control-plane: leading`, 20*time.Second)
		}
	}
	token := replicas[0].waitOutput(`dao agent --join (\S+) `, 10*time.Second)[1]
	standby := dirs[1]
	if strings.Contains(replicas[1].out.String(), "leading") {
		t.Fatal("the second replica leads: the test wants it standing by")
	}

	n1 := connectSimNode(t, strings.Join(addrs, ","), token, "n1")
	n2 := connectSimNode(t, strings.Join(addrs, ","), token, "n2")
	waitUntil(t, "2 tasks of web running", 30*time.Second, func() bool { return running(t, standby, "web") == 2 })
	if nodes := adminJSON[nodeEntry](t, "node", "ls", "--state-dir", standby); len(nodes) != 2 {
		t.Fatalf("dao node ls at the standby: %+v, want n1 and n2", nodes)
	}

	if status, out, errOut := runDao(t, "service", "scale", "web=3", "--state-dir", standby); status != exitOK {
		t.Fatalf("dao service scale at the standby: status %d, stdout %q, stderr %q", status, out, errOut)
	}
	waitUntil(t, "3 tasks of web running", 30*time.Second, func() bool { return running(t, standby, "web") == 3 })

	status, out, errOut := runDao(t, "node", "rm", "n1", "--state-dir", standby)
	if status != exitOK || !strings.HasPrefix(out, "node n1 drained (") {
		t.Fatalf("dao node rm n1 at the standby: status %d, stdout %q, stderr %q", status, out, errOut)
	}
	select {
	case err := <-n1.done:
		n1.done <- err
		if !errdefs.IsPermissionDenied(err) && !errdefs.IsUnauthorized(err) {
			t.Errorf("n1's client ended with %v, want it refused", err)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("n1's client still runs 15s after the node was removed at the standby: the leader did not refuse it")
	}
	waitUntil(t, "3 tasks of web running on n2", 30*time.Second, func() bool { return n2.running() == 3 })

	if status, out, errOut := runDao(t, "service", "rm", "web", "--state-dir", standby); status != exitOK {
		t.Fatalf("dao service rm at the standby: status %d, stdout %q, stderr %q", status, out, errOut)
	}
	waitUntil(t, "n2 runs nothing", 30*time.Second, func() bool { return n2.running() == 0 })
	if got := adminJSON[serviceEntry](t, "service", "ls", "--state-dir", dirs[0]); len(got) != 0 {
		t.Errorf("dao service ls at the leader after rm at the standby: %+v", got)
	}
}
