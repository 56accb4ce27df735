package edge_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/errdefs"

	"github.com/opendao/dao"
	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/internal/testutil/edgetest"
)

// env is one test's containerd, runtime and images.
type env struct {
	t       *testing.T
	ctrd    *testutil.Containerd
	rt      *edge.Runtime
	busybox string
	app     string
	ctx     context.Context
}

func newEnv(t *testing.T, opts ...edge.Option) *env {
	t.Helper()
	c := testutil.StartContainerd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	e := &env{t: t, ctrd: c, ctx: ctx}
	e.busybox = testutil.BusyboxImage(t, c)
	e.app = testutil.TestAppImage(t, c)
	e.rt = e.runtime(opts...)
	return e
}

// runtime opens a Runtime over the test's containerd, in the test namespace.
func (e *env) runtime(opts ...edge.Option) *edge.Runtime {
	e.t.Helper()
	return edgetest.NewRuntime(e.t, e.ctrd, opts...)
}

func (e *env) run(id string, spec dao.ContainerSpec) edge.ContainerStatus {
	e.t.Helper()
	st, err := e.rt.Run(e.ctx, id, spec)
	if err != nil {
		e.t.Fatalf("Run(%s): %v", id, err)
	}
	return st
}

func (e *env) wait(id string, within time.Duration) edge.ContainerStatus {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, within)
	defer cancel()
	st, err := e.rt.Wait(ctx, id)
	if err != nil {
		e.t.Fatalf("Wait(%s): %v (status %+v)", id, err, st)
	}
	return st
}

func (e *env) logs(id string) string {
	e.t.Helper()
	r, err := e.rt.Logs(e.ctx, id, edge.LogOptions{})
	if err != nil {
		e.t.Fatalf("Logs(%s): %v", id, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		e.t.Fatalf("read logs of %s: %v", id, err)
	}
	return string(b)
}

// task returns containerd's own view of the container's task.
func (e *env) task(id string) (client.Task, client.Status) {
	e.t.Helper()
	ctx := e.ctrd.Context(e.ctx)
	c, err := e.ctrd.Client.LoadContainer(ctx, id)
	if err != nil {
		e.t.Fatalf("containerd LoadContainer(%s): %v", id, err)
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		e.t.Fatalf("containerd Task(%s): %v", id, err)
	}
	st, err := task.Status(ctx)
	if err != nil {
		e.t.Fatalf("containerd task Status(%s): %v", id, err)
	}
	return task, st
}

func TestRunCapturesOutputAndExitCode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.run("hello", dao.ContainerSpec{
		Image:   e.busybox,
		Command: []string{"sh", "-c", "echo hello from stdout; echo hello from stderr >&2; exit 3"},
	})
	st := e.wait("hello", 30*time.Second)
	if st.State != edge.StateStopped || st.ExitCode != 3 || st.OOMKilled {
		t.Errorf("status = %s exit %d oom %v, want stopped exit 3 without OOM", st.State, st.ExitCode, st.OOMKilled)
	}
	if got, want := st.Reason(), "exited with code 3"; got != want {
		t.Errorf("Reason() = %q, want %q", got, want)
	}
	_, cst := e.task("hello")
	if cst.Status != client.Stopped || cst.ExitStatus != 3 {
		t.Errorf("containerd says %s exit %d, want stopped exit 3", cst.Status, cst.ExitStatus)
	}
	logs := e.logs("hello")
	for _, want := range []string{"hello from stdout", "hello from stderr"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs = %q, want them to contain %q", logs, want)
		}
	}
}

func TestSpecReachesTheContainer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hostDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(hostDir, "from-host"), []byte("bound"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.run("spec", dao.ContainerSpec{
		Image:      e.busybox,
		Command:    []string{"sh", "-c", `echo "env=$GREETING"; echo "pwd=$(pwd)"; echo "id=$(id -u):$(id -g)"; cat /host/from-host; echo; touch /scratch/ok && echo tmpfs-ok; touch /rootfs-file 2>/dev/null && echo rootfs-writable || echo rootfs-readonly; grep NoNewPrivs /proc/self/status`},
		Env:        []string{"GREETING=hi there"},
		WorkingDir: "/tmp",
		User:       "1000:1000",
		Mounts: []dao.Mount{
			{Type: dao.MountBind, Source: hostDir, Target: "/host", ReadOnly: true},
			{Type: dao.MountTmpfs, Target: "/scratch", SizeBytes: 1 << 20},
		},
		ReadOnlyRootfs: true,
		Resources:      dao.Resources{MilliCPU: 250, Memory: 32 * dao.MiB, Pids: 64},
		Labels:         map[string]string{"team": "edge"},
	})
	st := e.wait("spec", 30*time.Second)
	logs := e.logs("spec")
	if st.ExitCode != 0 {
		t.Fatalf("exit code %d, logs:\n%s", st.ExitCode, logs)
	}
	for _, want := range []string{"env=hi there", "pwd=/tmp", "id=1000:1000", "bound", "tmpfs-ok", "rootfs-readonly", "NoNewPrivs:\t1"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}

	// containerd's record of the container holds the limits and the default capability set.
	ctx := e.ctrd.Context(e.ctx)
	c, err := e.ctrd.Client.LoadContainer(ctx, "spec")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res := spec.Linux.Resources
	if res.Memory == nil || res.Memory.Limit == nil || *res.Memory.Limit != 32*dao.MiB {
		t.Errorf("memory limit = %+v, want 32MiB", res.Memory)
	}
	if res.CPU == nil || res.CPU.Quota == nil || *res.CPU.Quota != 25000 || res.CPU.Period == nil || *res.CPU.Period != 100000 {
		t.Errorf("cpu = %+v, want quota 25000 per 100000", res.CPU)
	}
	if res.Pids == nil || res.Pids.Limit == nil || *res.Pids.Limit != 64 {
		t.Errorf("pids = %+v, want 64", res.Pids)
	}
	if !spec.Process.NoNewPrivileges {
		t.Errorf("NoNewPrivileges is off")
	}
	for _, capName := range spec.Process.Capabilities.Bounding {
		if capName == "CAP_SYS_ADMIN" {
			t.Errorf("unprivileged container has CAP_SYS_ADMIN")
		}
	}
	labels, _ := c.Labels(ctx)
	if labels["team"] != "edge" || labels[edge.LabelManaged] != "true" {
		t.Errorf("labels = %v, want team=edge and %s=true", labels, edge.LabelManaged)
	}
}

func TestPrivilegedOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.run("priv", dao.ContainerSpec{Image: e.busybox, Command: []string{"true"}, Privileged: true})
	e.wait("priv", 30*time.Second)
	ctx := e.ctrd.Context(e.ctx)
	c, _ := e.ctrd.Client.LoadContainer(ctx, "priv")
	spec, err := c.Spec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hasSysAdmin := false
	for _, capName := range spec.Process.Capabilities.Bounding {
		hasSysAdmin = hasSysAdmin || capName == "CAP_SYS_ADMIN"
	}
	if !hasSysAdmin {
		t.Errorf("privileged container lacks CAP_SYS_ADMIN")
	}
}

func TestInvalidSpecCreatesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	err := e.rt.Create(e.ctx, "bad", dao.ContainerSpec{
		Image:     e.busybox,
		Env:       []string{"NOEQUALS"},
		Resources: dao.Resources{Memory: 1024},
	})
	if !errors.Is(err, dao.ErrInvalid) {
		t.Fatalf("Create with invalid spec: err = %v, want dao.ErrInvalid", err)
	}
	for _, field := range []string{"resources.memory", "env[0]"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error %q does not name %s", err, field)
		}
	}
	err = e.rt.Create(e.ctx, "noimage", dao.ContainerSpec{Image: "dao.test/absent:1"})
	if !errors.Is(err, edge.ErrImageNotFound) {
		t.Errorf("Create with a missing image: err = %v, want ErrImageNotFound", err)
	}
	ctx := e.ctrd.Context(e.ctx)
	cs, err := e.ctrd.Client.Containers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 0 {
		t.Errorf("containerd has %d containers after refused creates, want 0", len(cs))
	}
	var snaps int
	_ = e.ctrd.Client.SnapshotService("overlayfs").Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if info.Name == "bad" || info.Name == "noimage" {
			snaps++
		}
		return nil
	})
	if snaps != 0 {
		t.Errorf("%d snapshots left by refused creates", snaps)
	}
}

func TestOOMKillIsReported(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	events := e.rt.Subscribe(e.ctx)
	e.run("oom", dao.ContainerSpec{
		Image:     e.app,
		Args:      []string{"-alloc", "256"},
		Resources: dao.Resources{Memory: 16 * dao.MiB},
	})
	st := e.wait("oom", 60*time.Second)
	if !st.OOMKilled || st.ExitCode != 137 {
		t.Errorf("status: exit %d oom %v, want exit 137 and OOM", st.ExitCode, st.OOMKilled)
	}
	if !strings.Contains(st.Reason(), "OOM") {
		t.Errorf("Reason() = %q, want it to say OOM", st.Reason())
	}
	// One OOM event, then the exit, whether containerd's shim saw the kill or the Runtime read
	// it from the cgroup at the exit (the shim misses kills that come right at the start).
	var ooms, exits int
	timeout := time.After(5 * time.Second)
	for ooms == 0 || exits == 0 {
		select {
		case ev := <-events:
			switch {
			case ev.ContainerID != "oom":
			case ev.Type == edge.EventOOM:
				ooms++
			case ev.Type == edge.EventExit:
				exits++
				if !ev.OOMKilled {
					t.Errorf("exit event %v does not say OOM", ev)
				}
			}
		case <-timeout:
			t.Fatalf("%d OOM and %d exit events from containerd's event stream, want 1 each", ooms, exits)
		}
	}
	select {
	case ev := <-events:
		if ev.Type == edge.EventOOM {
			t.Errorf("a second OOM event: %v", ev)
		}
	case <-time.After(200 * time.Millisecond):
	}
	// A new Runtime (a restarted program) still knows it was an OOM kill.
	st2, err := e.runtime().Status(e.ctx, "oom")
	if err != nil || !st2.OOMKilled {
		t.Errorf("new runtime: Status = %+v, %v; want OOMKilled", st2, err)
	}
}

func TestMemoryLimitIsEnforced(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.run("capped", dao.ContainerSpec{Image: e.app, Args: []string{"-alloc", "8"}, Resources: dao.Resources{Memory: 24 * dao.MiB}})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(e.logs("capped"), "allocated 8 MiB") {
		if time.Now().After(deadline) {
			t.Fatalf("container did not allocate; logs: %q", e.logs("capped"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	s, err := e.rt.Stats(e.ctx, "capped")
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if s.MemoryLimit != uint64(24*dao.MiB) {
		t.Errorf("cgroup memory limit = %d, want %d", s.MemoryLimit, 24*dao.MiB)
	}
	if s.MemoryUsage < 8<<20 || s.MemoryUsage > uint64(24*dao.MiB) {
		t.Errorf("memory usage = %d, want between 8MiB and the 24MiB limit", s.MemoryUsage)
	}
	if s.Pids == 0 || s.CPUUsage <= 0 {
		t.Errorf("stats = %+v, want pids and CPU usage", s)
	}
}

func TestStopHonoursGracePeriod(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.run("polite", dao.ContainerSpec{Image: e.app, StopGracePeriod: dao.Duration(10 * time.Second)})
	e.run("stubborn", dao.ContainerSpec{Image: e.app, Args: []string{"-ignore-term"}, StopGracePeriod: dao.Duration(time.Second)})
	waitLog(t, e, "polite", "") // started
	time.Sleep(200 * time.Millisecond)

	begin := time.Now()
	st, err := e.rt.Stop(e.ctx, "polite")
	if err != nil {
		t.Fatalf("Stop(polite): %v", err)
	}
	if took := time.Since(begin); took > 3*time.Second {
		t.Errorf("a SIGTERM-honouring container took %s to stop", took)
	}
	if st.State != edge.StateStopped || st.ExitCode != 0 {
		t.Errorf("polite: %s exit %d, want stopped exit 0", st.State, st.ExitCode)
	}
	if !strings.Contains(e.logs("polite"), "received terminated") {
		t.Errorf("polite did not see SIGTERM; logs %q", e.logs("polite"))
	}

	begin = time.Now()
	st, err = e.rt.Stop(e.ctx, "stubborn")
	if err != nil {
		t.Fatalf("Stop(stubborn): %v", err)
	}
	took := time.Since(begin)
	if took < time.Second || took > 5*time.Second {
		t.Errorf("a SIGTERM-ignoring container stopped after %s, want just after its 1s grace period", took)
	}
	if st.ExitCode != 128+int(syscall.SIGKILL) {
		t.Errorf("stubborn exit code %d, want %d (SIGKILL)", st.ExitCode, 128+int(syscall.SIGKILL))
	}
	_, cst := e.task("stubborn")
	if cst.Status != client.Stopped {
		t.Errorf("containerd says stubborn is %s", cst.Status)
	}
}

func TestRemoveDeletesContainerSnapshotAndLogs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.run("gone", dao.ContainerSpec{Image: e.busybox, Command: []string{"sleep", "60"}})
	if err := e.rt.Remove(e.ctx, "gone"); !errors.Is(err, edge.ErrRunning) {
		t.Errorf("Remove of a running container: err = %v, want ErrRunning", err)
	}
	if _, err := e.rt.Stop(e.ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.Remove(e.ctx, "gone"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	ctx := e.ctrd.Context(e.ctx)
	if _, err := e.ctrd.Client.LoadContainer(ctx, "gone"); !errdefs.IsNotFound(err) {
		t.Errorf("containerd still has the container: %v", err)
	}
	if _, err := e.ctrd.Client.SnapshotService("overlayfs").Stat(ctx, "gone"); !errdefs.IsNotFound(err) {
		t.Errorf("snapshot still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.rt.LogDir(), "gone.log")); !os.IsNotExist(err) {
		t.Errorf("log file still there: %v", err)
	}
	if _, err := e.rt.Status(e.ctx, "gone"); !errors.Is(err, edge.ErrNotFound) {
		t.Errorf("Status after Remove: err = %v, want ErrNotFound", err)
	}
}

func TestExitEventsComeFromContainerd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	events := e.rt.Subscribe(e.ctx)
	e.run("quick", dao.ContainerSpec{Image: e.busybox, Command: []string{"sh", "-c", "exit 7"}})
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Type == edge.EventExit && ev.ContainerID == "quick" {
				if ev.ExitCode != 7 {
					t.Errorf("exit event code %d, want 7", ev.ExitCode)
				}
				return
			}
		case <-timeout:
			t.Fatal("no exit event within 20s")
		}
	}
}

func TestNewRuntimeAdoptsRunningContainers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	first := e.run("long", dao.ContainerSpec{Image: e.app})
	if err := e.rt.Close(); err != nil {
		t.Fatal(err)
	}
	rt2 := e.runtime()
	list, err := rt2.List(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != "long" {
		t.Fatalf("List = %+v, want the one container", list)
	}
	got := list[0]
	if got.State != edge.StateRunning || got.PID != first.PID || !got.StartedAt.Equal(first.StartedAt) {
		t.Errorf("adopted: %s pid %d started %s; want running pid %d started %s",
			got.State, got.PID, got.StartedAt, first.PID, first.StartedAt)
	}
}

func TestExec(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.run("execd", dao.ContainerSpec{Image: e.busybox, Command: []string{"sleep", "60"}, Env: []string{"WHO=world"}})
	res, err := e.rt.Exec(e.ctx, "execd", []string{"sh", "-c", "echo hello $WHO; exit 4"}, 10*time.Second)
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if res.ExitCode != 4 || strings.TrimSpace(string(res.Output)) != "hello world" {
		t.Errorf("Exec = code %d output %q, want 4 and %q", res.ExitCode, res.Output, "hello world")
	}
	res, err = e.rt.Exec(e.ctx, "execd", []string{"sleep", "30"}, 300*time.Millisecond)
	if err != nil || !res.TimedOut {
		t.Errorf("Exec past its timeout = %+v, %v; want TimedOut", res, err)
	}
}

func TestLogsAreCappedAndFollowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, edge.WithLogMaxSize(16<<10), edge.WithLogCheckInterval(20*time.Millisecond))
	e.run("chatty", dao.ContainerSpec{
		Image:   e.busybox,
		Command: []string{"sh", "-c", `i=0; while [ $i -lt 400 ]; do echo "line $i ................................................................"; i=$((i+1)); sleep 0.005; done; echo done`},
	})
	r, err := e.rt.Logs(e.ctx, "chatty", edge.LogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var maxSize int64
	stopWatch := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			if info, err := os.Stat(filepath.Join(e.rt.LogDir(), "chatty.log")); err == nil && info.Size() > maxSize {
				maxSize = info.Size()
			}
			select {
			case <-stopWatch:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	b, err := io.ReadAll(r) // follows until the container exits
	close(stopWatch)
	<-watched
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(strings.TrimSpace(string(b)), "done") {
		t.Errorf("followed logs end with %q, want the last line", lastLine(string(b)))
	}
	if maxSize > 64<<10 {
		t.Errorf("log file grew to %d bytes with a 16KiB cap", maxSize)
	}
	if _, err := os.Stat(filepath.Join(e.rt.LogDir(), "chatty.log.1")); err != nil {
		t.Errorf("no rotated log file: %v", err)
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}

func waitLog(t *testing.T, e *env, id, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, cst := e.task(id); cst.Status == client.Running && strings.Contains(e.logs(id), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q in logs: %q", id, want, e.logs(id))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBridgeNetworkAndPublishedPorts(t *testing.T) {
	c := testutil.StartContainerd(t)
	state := t.TempDir()
	e := &env{t: t, ctrd: c, ctx: context.Background()}
	e.app = testutil.TestAppImage(t, c)
	rt := e.runtime(edge.WithNetwork(edge.Network{
		Name:     "daotest",
		Bridge:   "daotest0",
		Subnet:   "198.18.42.0/24",
		StateDir: filepath.Join(state, "cni"),
		NetNSDir: filepath.Join(state, "netns"),
	}))
	e.rt = rt
	t.Cleanup(func() { _ = exec.Command("ip", "link", "delete", "daotest0").Run() })
	st := e.run("web", dao.ContainerSpec{
		Image: e.app,
		Args:  []string{"-listen", ":8080", "-version", "net-v1"},
		Ports: []dao.PortMapping{{ContainerPort: 8080, HostPort: 18080}},
	})
	if len(st.Addresses) != 1 || !strings.HasPrefix(st.Addresses[0], "198.18.42.") {
		t.Fatalf("addresses = %v, want one in 198.18.42.0/24", st.Addresses)
	}
	get := func(url string) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := http.Get(url)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return string(b)
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s: %v", url, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if got := get("http://" + st.Addresses[0] + ":8080/"); !strings.HasPrefix(got, "net-v1") {
		t.Errorf("container address answered %q", got)
	}
	if got := get("http://127.0.0.1:18080/"); !strings.HasPrefix(got, "net-v1") {
		t.Errorf("published port answered %q", got)
	}
	// A second container reaches the first over the bridge.
	e.run("client", dao.ContainerSpec{Image: e.app, Args: []string{"-check", "http://" + st.Addresses[0] + ":8080/healthz"}})
	if cst := e.wait("client", 20*time.Second); cst.ExitCode != 0 {
		t.Errorf("container to container: health check exit %d; logs %q", cst.ExitCode, e.logs("client"))
	}

	if _, err := rt.Stop(e.ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if err := rt.Remove(e.ctx, "web"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(state, "netns"))
	if len(entries) != 1 { // the client's namespace is still there
		t.Errorf("%d network namespaces left after removing web, want 1", len(entries))
	}
	if _, err := os.Stat(filepath.Join(state, "cni", "ipam", "daotest", st.Addresses[0])); !os.IsNotExist(err) {
		t.Errorf("address %s still allocated: %v", st.Addresses[0], err)
	}
	if _, err := rt.Stop(e.ctx, "client"); err != nil {
		t.Fatal(err)
	}
	if err := rt.Remove(e.ctx, "client"); err != nil {
		t.Fatal(err)
	}
}

func TestPortsNeedANetwork(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	err := e.rt.Create(e.ctx, "ported", dao.ContainerSpec{Image: e.app, Ports: []dao.PortMapping{{ContainerPort: 80, HostPort: 8080}}})
	if !errors.Is(err, edge.ErrNoNetwork) {
		t.Errorf("Create with ports and no network: err = %v, want ErrNoNetwork", err)
	}
}

// TestStderrIsNotLostAtExit runs many short containers that write to stderr just before they
// exit: every line must reach the log (the shim's own file logging lost some).
func TestStderrIsNotLostAtExit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 30
	for i := range n {
		e.run(fmt.Sprintf("err-%d", i), dao.ContainerSpec{Image: e.busybox,
			Command: []string{"sh", "-c", "echo out-line; echo err-line >&2"}})
	}
	lost := 0
	for i := range n {
		id := fmt.Sprintf("err-%d", i)
		e.wait(id, 30*time.Second)
		logs := e.logs(id)
		if !strings.Contains(logs, "err-line") || !strings.Contains(logs, "out-line") {
			lost++
			t.Logf("%s: logs %q", id, logs)
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d containers lost output", lost, n)
	}
}

// TestWaitRidesOutAContainerdCrash waits for a container that exits while containerd is
// killed and down, through Runtimes made both ways: New, whose calls wait for containerd to
// come back, and NewFromClient over a plain client, whose calls fail while it is down. Wait
// returns the exit code in both, once containerd is back.
func TestWaitRidesOutAContainerdCrash(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	plain, err := client.New(e.ctrd.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	fromClient, err := edge.NewFromClient(plain, edge.WithNamespace(testutil.Namespace), edge.WithLogDir(filepath.Join(e.ctrd.Dir, "logs")))
	if err != nil {
		t.Fatal(err)
	}
	defer fromClient.Close()
	runtimes := map[string]*edge.Runtime{"new": e.rt, "fromclient": fromClient}
	for id, rt := range runtimes {
		spec := dao.ContainerSpec{Image: e.busybox, Args: []string{"sh", "-c", "echo up; sleep 0.6; echo down; exit 7"}}
		if _, err := rt.Run(e.ctx, id, spec); err != nil {
			t.Fatalf("Run(%s): %v", id, err)
		}
	}
	type result struct {
		id  string
		st  edge.ContainerStatus
		err error
	}
	results := make(chan result, len(runtimes))
	for id, rt := range runtimes {
		go func() {
			st, err := rt.Wait(e.ctx, id)
			results <- result{id, st, err}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	e.ctrd.Kill()
	time.Sleep(1500 * time.Millisecond) // both exit meanwhile
	e.ctrd.Start()
	for range runtimes {
		select {
		case r := <-results:
			if r.err != nil || r.st.State != edge.StateStopped || r.st.ExitCode != 7 {
				t.Errorf("%s: Wait = %+v, %v; want stopped with exit code 7", r.id, r.st, r.err)
			}
			if logs := e.logs(r.id); !strings.Contains(logs, "up") || !strings.Contains(logs, "down") {
				t.Errorf("%s: log %q, want both lines", r.id, logs)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Wait did not return 20s after containerd came back")
		}
	}
}

// TestStartRemovesAStaleTaskBundle starts a container whose task bundle a killed containerd
// left behind: containerd 1.6 then fails every new task of it with "mkdir BUNDLE: file
// exists", and does not clean it up when restarted.
func TestStartRemovesAStaleTaskBundle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.rt.Create(e.ctx, "stale", dao.ContainerSpec{Image: e.busybox, Args: []string{"sleep", "60"}}); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(e.ctrd.Dir, "state", "io.containerd.runtime.v2.task", testutil.Namespace, "stale")
	if err := os.MkdirAll(filepath.Join(bundle, "rootfs"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A restart does not help: containerd 1.6 leaves such a bundle where it is.
	e.ctrd.Restart()
	if _, err := os.Stat(bundle); err != nil {
		t.Fatalf("containerd removed the bundle on restart (%v): this test no longer shows anything", err)
	}
	st, err := e.rt.Start(e.ctx, "stale")
	if err != nil {
		t.Fatalf("Start over a stale bundle: %v", err)
	}
	if st.State != edge.StateRunning {
		t.Errorf("state %s, want running", st.State)
	}
	if got := e.containerdRunning(); len(got) != 1 || got["stale"] == 0 {
		t.Errorf("containerd runs %v, want stale only", got)
	}
}
