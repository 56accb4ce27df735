package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	eventstypes "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/typeurl/v2"
	"go.uber.org/goleak"

	"github.com/opendao/dao"
	"github.com/opendao/dao/cluster"
	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/internal/daemon"
	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/internal/testutil/controlplane"
	"github.com/opendao/dao/internal/testutil/netns"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/registry/ctrd"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if daoBinDir != "" {
		_ = os.RemoveAll(daoBinDir) // the dao program built for the tests
	}
	if code == 0 {
		err := goleak.Find(
			// containerd's client keeps these for the life of a connection.
			goleak.IgnoreTopFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
			goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		)
		if err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	daoBin    string
	daoBinDir string // made by daoProgram, removed by TestMain
	buildErr  error
)

// daoProgram builds the dao CLI once per test binary.
func daoProgram(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if bin := os.Getenv("DAO_E2E_PROGRAM"); bin != "" {
			daoBin = bin // a dao program built elsewhere
			return
		}
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "dao-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		daoBinDir = dir
		daoBin = filepath.Join(dir, "dao")
		cmd := exec.Command(goTool(), "build", "-o", daoBin, "./examples/dao")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./examples/dao: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return daoBin
}

func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// plane is a control plane in the test process, serving remote nodes on a lab's host
// address.
type plane struct {
	t     *testing.T
	ctx   context.Context
	o     *orchestrator.Orchestrator
	srv   *cluster.Server
	addr  string
	token string
	cp    *controlplane.Plane
}

func newPlane(t *testing.T, listenIP string, oopts ...orchestrator.Option) *plane {
	t.Helper()
	cp, err := controlplane.Start(controlplane.Config{ListenIP: listenIP, Options: oopts,
		ServerOptions: []cluster.ServerOption{cluster.WithHeartbeatInterval(250 * time.Millisecond)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Error(err)
		}
	})
	return &plane{t: t, ctx: cp.Ctx, o: cp.Orchestrator, srv: cp.Server, addr: cp.Addr, token: cp.Token, cp: cp}
}

// stop takes the control plane away (the test's cleanup then does nothing more).
func (p *plane) stop() {
	if err := p.cp.Stop(); err != nil {
		p.t.Error(err)
	}
}

func (p *plane) nodeState(id string) dao.NodeState {
	st, err := p.cp.NodeState(id)
	if err != nil {
		p.t.Fatal(err)
	}
	return st
}

func (p *plane) running(service string) []orchestrator.Task {
	ts, err := p.cp.Running(service)
	if err != nil {
		p.t.Fatal(err)
	}
	return ts
}

// agent is a dao agent program running in a network namespace.
type agent struct {
	t        *testing.T
	name     string
	ns       string // containerd namespace
	stateDir string
	cmd      *exec.Cmd
	log      *lockedBuffer
	exited   chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startAgent runs `dao agent` for node name inside host, against containerd at socket,
// in containerd namespace ns, keeping its state in stateDir; joining with token when it
// has no identity yet.
func startAgent(t *testing.T, host *netns.Host, name, addr, token, socket, ns, stateDir string, extra ...string) *agent {
	t.Helper()
	args := []string{"agent"}
	if token != "" {
		args = append(args, "--join", token)
	}
	args = append(args, addr, "--state-dir", stateDir, "--node-id", name,
		"--containerd", socket, "--namespace", ns, "-v")
	args = append(args, extra...)
	a := &agent{t: t, name: name, ns: ns, stateDir: stateDir, log: &lockedBuffer{}, exited: make(chan struct{})}
	a.cmd = host.Command(context.Background(), daoProgram(t), args...)
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.cmd.Wait(); close(a.exited) }()
	t.Cleanup(func() {
		a.kill()
		if t.Failed() || os.Getenv("DAO_E2E_LOGS") != "" {
			t.Logf("agent %s log:\n%s", name, a.log.String())
		}
	})
	return a
}

// kill ends the agent program at once, as a crash would.
func (a *agent) kill() {
	select {
	case <-a.exited:
		return
	default:
	}
	_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
	_ = a.cmd.Process.Kill()
	select {
	case <-a.exited:
	case <-time.After(10 * time.Second):
		a.t.Errorf("agent %s did not die within 10s of SIGKILL", a.name)
	}
}

// running returns the containers of containerd namespace ns whose task runs, by ID, with
// their process IDs.
func running(t *testing.T, cl *client.Client, ns string) map[string]uint32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), ns), 10*time.Second)
	defer cancel()
	out, err := daemon.RunningTasks(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// slots returns, for the service's containers running in the namespaces, how many run per
// slot (the task ID is <service>.<slot>.<n>, the slot label says it too).
func slotsRunning(t *testing.T, cl *client.Client, service string, nss ...string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, ns := range nss {
		ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), ns), 10*time.Second)
		cs, err := cl.Containers(ctx)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		for _, c := range cs {
			labels, err := c.Labels(ctx)
			if err != nil || labels[edge.LabelService] == "" {
				continue
			}
			task, err := c.Task(ctx, nil)
			if err != nil {
				continue
			}
			if st, err := task.Status(ctx); err == nil && st.Status == client.Running {
				parts := strings.Split(c.ID(), ".")
				if len(parts) >= 2 && strings.HasPrefix(c.ID(), service+".") {
					out[parts[1]]++
				}
			}
		}
		cancel()
	}
	return out
}

// creations counts container creations per containerd namespace, from containerd's own
// event stream, until the test ends.
type creations struct {
	mu     sync.Mutex
	counts map[string]int
	ids    map[string][]string
}

func countCreations(t *testing.T, cl *client.Client) *creations {
	t.Helper()
	c := &creations{counts: map[string]int{}, ids: map[string][]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	evs, errs := cl.EventService().Subscribe(ctx, `topic=="/containers/create"`)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case e := <-evs:
				v, err := typeurl.UnmarshalAny(e.Event)
				if err != nil {
					continue
				}
				if cc, ok := v.(*eventstypes.ContainerCreate); ok {
					c.mu.Lock()
					c.counts[e.Namespace]++
					c.ids[e.Namespace] = append(c.ids[e.Namespace], cc.ID)
					c.mu.Unlock()
				}
			case <-errs:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

func (c *creations) in(ns string) (int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[ns], slices.Clone(c.ids[ns])
}

// importApp imports the test program's image into containerd namespace ns, and returns its
// name.
func importApp(t *testing.T, c *testutil.Containerd, ns string) string {
	t.Helper()
	ctx := namespaces.WithNamespace(context.Background(), ns)
	if _, err := ctrd.Import(ctx, c.Client, testutil.TestAppImageName, testutil.BuildTestAppImage(t), ctrd.WithUnpack("overlayfs")); err != nil {
		t.Fatalf("import into %s: %v", ns, err)
	}
	return testutil.TestAppImageName
}

// waitFor polls cond every 50ms until it holds or within passes.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}
