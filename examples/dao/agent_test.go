package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"

	"github.com/opendao/dao"
	"github.com/opendao/dao/cluster/pki"
	"github.com/opendao/dao/internal/daemon"
	"github.com/opendao/dao/internal/testutil"
)

func TestAgentUsageErrors(t *testing.T) {
	addr := nowhere(t)
	dir := t.TempDir()
	const token = "DAO1-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	for _, tc := range []struct {
		args []string
		want string // the one line on stderr
	}{
		{[]string{"agent"}, "dao agent: want the control plane's ADDRESS (host:port) (see 'dao help agent')"},
		{[]string{"agent", "127.0.0.1:7450"}, "dao agent: --state-dir is required: the node keeps its identity and its assignment there"},
		{[]string{"agent", "--state-dir", dir, "a:1", "b:2"}, "dao agent: want one ADDRESS, got 2 arguments: a:1 b:2"},
		{[]string{"agent", "--state-dir", dir, "cp.example"}, `dao agent: address "cp.example": want host:port, such as 10.0.0.1:7450`},
		{[]string{"agent", "127.0.0.1:7450", "--state-dir", dir, "--label", "zone"}, `dao agent: --label "zone": want KEY=VALUE, such as zone=eu-1`},
		{[]string{"agent", "127.0.0.1:7450", "--state-dir", dir, "--label", "=eu"}, `dao agent: --label "=eu": want KEY=VALUE, such as zone=eu-1`},
		{[]string{"agent", "127.0.0.1:7450", "--state-dir", dir, "--label", "k=" + strings.Repeat("v", 5000)}, `dao agent: --label: invalid node: labels["k"]: label must be at most 4096 bytes`},
		{[]string{"agent", "127.0.0.1:7450", "--state-dir", dir, "--node-id", "edge 1"}, `dao agent: --node-id "edge 1" cannot name a node`},
		{[]string{"agent", "127.0.0.1:7450", "--state-dir", dir, "--namespace", "a/b"}, `dao agent: --namespace "a/b": want letters and digits`},
		{[]string{"agent", "--join", "secret", "127.0.0.1:7450", "--state-dir", dir}, "dao agent: --join: pki: parse join token: "},
		{[]string{"agent", "127.0.0.1:7450", "--state-dir", dir, "--frob"}, "dao agent: unknown flag: --frob (see 'dao help agent')"},
		{[]string{"agent", "--join", token}, "dao agent: want the control plane's ADDRESS"},
	} {
		args := append([]string{"--address", addr}, tc.args...)
		status, out, errOut := runDao(t, args...)
		if status != exitUsage {
			t.Errorf("dao %v: status %d, want %d (stderr %q)", tc.args, status, exitUsage, errOut)
		}
		if strings.Count(errOut, "\n") != 1 || out != "" {
			t.Errorf("dao %v: want one line on stderr and nothing on stdout, got stderr %q, stdout %q", tc.args, errOut, out)
		}
		if !strings.HasPrefix(errOut, tc.want) {
			t.Errorf("dao %v: stderr %q, want it to begin with %q", tc.args, errOut, tc.want)
		}
	}
}

// TestAgentNeedsAJoinFirst: without an identity and without a token, the agent says what to
// do before it reaches for containerd or the control plane.
func TestAgentNeedsAJoinFirst(t *testing.T) {
	dir := t.TempDir()
	status, out, errOut := runDao(t, "--address", nowhere(t), "agent", "127.0.0.1:1", "--state-dir", dir)
	want := "dao agent: no identity in " + filepath.Join(dir, "identity") + ": join the cluster first with --join TOKEN (dao control-plane prints one)\n"
	if status != exitFailure || out != "" || !strings.HasSuffix(errOut, want) {
		t.Errorf("status %d, stdout %q, stderr %q; want status 1 and stderr ending %q", status, out, errOut, want)
	}
}

func TestAgentHelp(t *testing.T) {
	status, out, _ := runDao(t, "help", "agent")
	if status != exitOK {
		t.Fatalf("status %d", status)
	}
	for _, want := range []string{"Usage: dao agent --join TOKEN ADDRESS --state-dir DIR", "--state-dir DIR", "--node-id ID", "--label KEY=VALUE", "--containerd SOCKET", "--namespace NS", "--verbose"} {
		if !strings.Contains(out, want) {
			t.Errorf("dao help agent lacks %q:\n%s", want, out)
		}
	}
	if _, out, _ := runDao(t, "agent", "-h"); !strings.HasPrefix(out, "Usage: dao agent") {
		t.Errorf("dao agent -h:\n%s", out)
	}
	_, out, _ = runDao(t, "--help")
	for _, want := range []string{"\n  agent          run this machine as a node", "\n  control-plane  run a control plane", "\n  help           show"} {
		if !strings.Contains(out, want) {
			t.Errorf("dao --help lacks %q:\n%s", want, out)
		}
	}
}

// TestAgentFlagsAfterArguments checks that flags go before and after the address, as the
// commands the control plane prints have them.
func TestAgentFlagsAfterArguments(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		rest       []string
		join, dir  string
		labels     []string
		verbose    bool
		wantErrSub string
	}{
		{args: []string{"--join", "T", "cp:1", "--state-dir", "/d"}, rest: []string{"cp:1"}, join: "T", dir: "/d"},
		{args: []string{"cp:1", "--state-dir", "/d", "-v"}, rest: []string{"cp:1"}, dir: "/d", verbose: true},
		{args: []string{"--label", "a=1", "cp:1", "--label", "b=2", "x"}, rest: []string{"cp:1", "x"}, labels: []string{"a=1", "b=2"}},
		{args: []string{"--state-dir", "/d", "--", "--join", "cp:1"}, rest: []string{"--join", "cp:1"}, dir: "/d"},
		{args: nil},
		{args: []string{"cp:1", "--join"}, wantErrSub: "flag needs an argument: --join"},
	} {
		var o agentOptions
		fs := pflag.NewFlagSet("agent", pflag.ContinueOnError)
		fs.SetOutput(io.Discard)
		o.flags(fs)
		err := fs.Parse(tc.args)
		rest := fs.Args()
		if tc.wantErrSub != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErrSub) {
				t.Errorf("%v: err %v, want %q", tc.args, err, tc.wantErrSub)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		got := fmt.Sprint(rest, o.join, o.stateDir, []string(o.labels), o.verbose)
		want := fmt.Sprint(tc.rest, tc.join, tc.dir, tc.labels, tc.verbose)
		if got != want {
			t.Errorf("%v: got %s, want %s", tc.args, got, want)
		}
	}
}

func TestMemTotal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"MemTotal:        4015024 kB\nMemFree:          123 kB\n", 4015024 << 10},
		{"MemFree: 1 kB\nMemTotal: 2 kB\n", 2 << 10},
		{"MemTotal: lots\n", 0},
		{"MemTotal: 2 MB\n", 0},
		{"", 0},
	} {
		if got := memTotal([]byte(tc.in)); got != tc.want {
			t.Errorf("memTotal(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
	if r := machineResources(); r.MilliCPU < 1000 || r.Memory < 64*dao.MiB {
		t.Errorf("machineResources() = %+v, want at least a CPU and some memory", r)
	}
}

// process is a dao program run by a test, its output kept, killed at the test's end.
type process struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	out  syncBuffer
	done chan struct{}
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func startDao(t *testing.T, bin, name string, args ...string) *process {
	t.Helper()
	return startDaoEnv(t, nil, bin, name, args...)
}

// startDaoEnv is startDao with env added to the environment.
func startDaoEnv(t *testing.T, env []string, bin, name string, args ...string) *process {
	t.Helper()
	p := &process{t: t, name: name, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.Env = append(append(os.Environ(), "NO_COLOR=1", "DAO_REGISTRIES_CONFIG="), env...)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("output of %s:\n%s", name, p.out.String())
		}
	})
	return p
}

// kill kills the process with SIGKILL, as a crash or a power cut would, and waits for it.
func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// stop sends SIGTERM and waits for the process to exit 0.
func (p *process) stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.t.Fatalf("%s did not exit within 15s of SIGTERM", p.name)
	}
	if p.err != nil {
		p.t.Errorf("%s: %v after SIGTERM, want exit status 0", p.name, p.err)
	}
}

// waitOutput waits until the output matches re, and returns the submatches.
func (p *process) waitOutput(re string, within time.Duration) []string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(within)
	for {
		if m := rx.FindStringSubmatch(p.out.String()); m != nil {
			return m
		}
		select {
		case <-p.done:
			p.t.Fatalf("%s exited (%v) before printing %q", p.name, p.err, re)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s did not print %q within %s", p.name, re, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runningContainers returns the PID of every running container of the namespace, by ID.
func runningContainers(t *testing.T, ctx context.Context, c *client.Client) map[string]uint32 {
	t.Helper()
	out, err := daemon.RunningTasks(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func waitRunning(t *testing.T, ctx context.Context, c *client.Client, n int, within time.Duration) map[string]uint32 {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := runningContainers(t, ctx, c)
		if len(got) == n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d containers running after %s, want %d: %v", len(got), within, n, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestRemoteNode runs the two programs as an operator would: dao control-plane with a
// service of 2 replicas, and dao agent joining it from the same machine, on a private
// containerd. Then the agent is killed and the control plane stopped, and a container is
// removed as a reboot would lose it: the agent, started again without the control plane,
// runs its last assignment again from its state directory. Last, the control plane starts
// again from its state directory, and the node reconnects to it with nothing restarted; and
// once the node is removed from the cluster, the control plane refuses it and it runs on.
func TestRemoteNode(t *testing.T) {
	testutil.RequireIntegration(t, "go")
	// The directories first, so that they are removed after containerd's containers.
	cpDir, agentDir, work := t.TempDir(), t.TempDir(), t.TempDir()
	d := testutil.StartContainerd(t)
	image := testutil.TestAppImage(t, d)
	ctx, cancel := context.WithTimeout(d.Context(context.Background()), 2*time.Minute)
	defer cancel()

	bin := filepath.Join(work, "dao")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	spec := fmt.Sprintf(`{"name": "web", "replicas": 2, "container": {"image": %q,
		"resources": {"milliCPU": 100, "memory": %d}, "stopGracePeriod": "2s"}}`, image, 32*dao.MiB)
	specFile := filepath.Join(work, "web.json")
	if err := os.WriteFile(specFile, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}

	addr := freeAddr(t)
	cp := startDao(t, bin, "control-plane", "control-plane", "--listen", addr, "--state-dir", cpDir, "--service", specFile)
	m := cp.waitOutput(`dao agent --join (\S+) (\S+) --state-dir /var/lib/dao-agent\n`, 20*time.Second)
	token, advertised := m[1], m[2]
	if advertised != addr {
		t.Errorf("the printed command joins %s, want %s", advertised, addr)
	}
	cp.waitOutput(`service web created: 2 replicas of `+regexp.QuoteMeta(image), time.Second)

	agentArgs := []string{"--address", d.Address, "agent", addr, "--state-dir", agentDir,
		"--node-id", "edge-1", "--namespace", testutil.Namespace, "--label", "zone=test"}
	began := time.Now()
	agent := startDao(t, bin, "agent", slices.Insert(slices.Clone(agentArgs), 3, "--join", token)...)
	agent.waitOutput(`msg="dao agent starting" node=edge-1 control_plane=`+regexp.QuoteMeta(addr), 10*time.Second)
	agent.waitOutput(`no assignment on disk`, time.Second)
	pids := waitRunning(t, ctx, d.Client, 2, 20*time.Second)
	t.Logf("2 containers running %s after the agent started", time.Since(began).Round(time.Millisecond))
	cp.waitOutput(`node edge-1 joined: host \S+, linux/\w+, \d+ CPUs, [\d.]+ GiB, zone=test`, 5*time.Second)
	cp.waitOutput(`task web\.\S+ on edge-1: running(?s:.*)task web\.\S+ on edge-1: running`, 10*time.Second)
	for _, f := range []string{"identity/ca.crt", "identity/node.pem", "assignment/assignment.json"} {
		if _, err := os.Stat(filepath.Join(agentDir, f)); err != nil {
			t.Errorf("the agent's state: %v", err)
		}
	}

	// A crash of the agent, and the control plane gone: the containers run on.
	agent.kill()
	cp.stop()
	if got := runningContainers(t, ctx, d.Client); !cmp.Equal(got, pids) {
		t.Fatalf("after the agent was killed: running %v, want %v as before", got, pids)
	}
	// A reboot loses what containerd ran; here one of the two is lost.
	ids := slices.Sorted(func(yield func(string) bool) {
		for id := range pids {
			if !yield(id) {
				return
			}
		}
	})
	lost, kept := ids[0], ids[1]
	ct, err := d.Client.LoadContainer(ctx, lost)
	if err != nil {
		t.Fatal(err)
	}
	if task, err := ct.Task(ctx, nil); err == nil {
		if _, err := task.Delete(ctx, client.WithProcessKill); err != nil {
			t.Fatal(err)
		}
	}
	if err := ct.Delete(ctx, client.WithSnapshotCleanup); err != nil {
		t.Fatal(err)
	}

	// The agent again, with no token, and the control plane away.
	again := startDao(t, bin, "agent (restarted)", agentArgs...)
	again.waitOutput(`msg="restored the last assignment from disk[^"]*" revision=\d+ tasks=2`, 10*time.Second)
	now := waitRunning(t, ctx, d.Client, 2, 20*time.Second)
	if now[kept] != pids[kept] {
		t.Errorf("container %s: pid %d, want %d: a running container was restarted", kept, now[kept], pids[kept])
	}
	if now[lost] == 0 || now[lost] == pids[lost] {
		t.Errorf("container %s was not started again: %v", lost, now)
	}
	if strings.Contains(again.out.String(), "level=ERROR") {
		t.Errorf("the restarted agent logged an error:\n%s", again.out.String())
	}

	// The control plane again, from its state directory: the node reconnects, and the
	// control plane takes its tasks as it finds them.
	cp2 := startDao(t, bin, "control-plane (restarted)", "control-plane", "--listen", addr, "--state-dir", cpDir, "--service", specFile)
	cp2.waitOutput(`CA loaded \S+ \(pin \w+\), 1 service, 1 node in the store`, 20*time.Second)
	cp2.waitOutput(`service web unchanged \(version 1\)`, time.Second)
	if m := cp2.waitOutput(`dao agent --join (\S+) `, 5*time.Second); m[1] == token {
		t.Errorf("the restarted control plane printed the same token")
	}
	again.waitOutput(`cluster: connected to the control plane`, 20*time.Second)
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if got := runningContainers(t, ctx, d.Client); !cmp.Equal(got, now) {
			t.Fatalf("after the node reconnected: running %v, want %v as before", got, now)
		}
	}
	again.stop()
	cp2.stop()
	if got := runningContainers(t, ctx, d.Client); !cmp.Equal(got, now) {
		t.Errorf("after SIGTERM of the agent: running %v, want %v as before", got, now)
	}

	// The node removed from the cluster while it was away (as cluster.Server.RemoveNode
	// does): the control plane refuses it for good, and it runs on by itself.
	ca, err := pki.LoadCA(filepath.Join(cpDir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	ca.RemoveNode("edge-1")
	if err := ca.Save(filepath.Join(cpDir, "ca")); err != nil {
		t.Fatal(err)
	}
	cp3 := startDao(t, bin, "control-plane (node removed)", "control-plane", "--listen", addr, "--state-dir", cpDir)
	cp3.waitOutput(`CA loaded`, 20*time.Second)
	removed := startDao(t, bin, "agent (removed)", agentArgs...)
	removed.waitOutput(`level=ERROR msg="the control plane refuses this node for good[^"]*" node=edge-1 err=`, 20*time.Second)
	if got := runningContainers(t, ctx, d.Client); !cmp.Equal(got, now) {
		t.Errorf("after the control plane refused the node: running %v, want %v as before", got, now)
	}
	removed.stop()
	cp3.stop()
	t.Logf("control plane:\n%s\nagent:\n%s\nagent restarted:\n%s\ncontrol plane restarted:\n%s\nagent removed:\n%s", cp.out.String(), agent.out.String(), again.out.String(), cp2.out.String(), removed.out.String())
}
