package edge_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"

	"github.com/opendao/dao"
	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/internal/testutil"
)

// crashLoopTask is a task whose container exits with code 1 at once, restarted always with
// a backoff of a few milliseconds: its node spends its time restarting it.
func crashLoopTask(e *env, id string) dao.Task {
	t := appTask(e, id)
	t.Spec.Args = []string{"-exit", "1"}
	t.Restart = dao.RestartPolicy{Condition: dao.RestartAlways, MaxDelay: dao.Duration(5 * time.Millisecond), ResetAfter: dao.Duration(time.Minute)}
	return t
}

// uniqueID returns a container ID that no other test on the machine uses: cgroup paths
// are shared by every containerd of the machine.
func uniqueID(prefix string, i int) string {
	return fmt.Sprintf("%s-%d-%d-%d", prefix, os.Getpid(), time.Now().UnixNano()%1e6, i)
}

// cgroupsPath reads linux.cgroupsPath of the container's OCI spec, or "" when the container
// cannot be read (it is gone already).
func (e *env) cgroupsPath(id string) string {
	ctx := e.ctrd.Context(e.ctx)
	c, err := e.ctrd.Client.LoadContainer(ctx, id)
	if err != nil {
		return ""
	}
	spec, err := c.Spec(ctx)
	if err != nil || spec.Linux == nil {
		return ""
	}
	return spec.Linux.CgroupsPath
}

// leftovers lists what of the removed container id is still on the machine: its container or
// task in containerd, a shim process of it, a mount or the task bundle under the daemon's
// directory, a cgroup directory (cgroupsPath, from its OCI spec; containerd's default when
// empty) and its log files.
func (e *env) leftovers(id, cgroupsPath string) []string {
	e.t.Helper()
	var out []string
	ctx := e.ctrd.Context(e.ctx)
	if _, err := e.ctrd.Client.LoadContainer(ctx, id); !errdefs.IsNotFound(err) {
		out = append(out, fmt.Sprintf("container in containerd (err %v)", err))
	}
	// The task service's Get needs the container; its List shows a task whose container is
	// gone too.
	if resp, err := e.ctrd.Client.TaskService().List(ctx, &tasksapi.ListTasksRequest{}); err == nil {
		for _, p := range resp.Tasks {
			if p.ID == id || p.ContainerID == id {
				out = append(out, fmt.Sprintf("task in containerd: pid %d status %s", p.Pid, p.Status))
			}
		}
	} else {
		out = append(out, fmt.Sprintf("list tasks: %v", err))
	}
	for _, pid := range shimsOf(e.ctrd.Address, id) {
		out = append(out, fmt.Sprintf("shim process %d", pid))
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(mi), "\n") {
			f := strings.Fields(line)
			if len(f) > 4 && strings.HasPrefix(f[4], e.ctrd.Dir) && strings.Contains(f[4], id) {
				out = append(out, "mount "+f[4])
			}
		}
	}
	bundle := filepath.Join(e.ctrd.Dir, "state", "io.containerd.runtime.v2.task", testutil.Namespace, id)
	if _, err := os.Stat(bundle); err == nil {
		out = append(out, "task bundle "+bundle)
	}
	if cgroupsPath == "" {
		cgroupsPath = "/" + testutil.Namespace + "/" + id
	}
	for _, ctl := range []string{"memory", "pids", "cpu", "cpuacct", "freezer", "devices", "blkio", "cpuset", "systemd", "unified"} {
		p := filepath.Join("/sys/fs/cgroup", ctl, cgroupsPath)
		if _, err := os.Stat(p); err == nil {
			out = append(out, "cgroup "+p)
		}
	}
	for _, suffix := range []string{".log", ".log.1"} {
		p := filepath.Join(e.rt.LogDir(), id+suffix)
		if _, err := os.Stat(p); err == nil {
			out = append(out, "log file "+p)
		}
	}
	return out
}

// shimsOf returns the PIDs of the containerd-shim-runc-v2 processes serving container id for
// the containerd at address.
func shimsOf(address, id string) []int {
	var pids []int
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range cmdlines {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte("containerd-shim-runc-v2")) {
			continue
		}
		args := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
		var gotID, gotAddr string
		for i := 0; i+1 < len(args); i++ {
			switch args[i] {
			case "-id":
				gotID = args[i+1]
			case "-address":
				gotAddr = args[i+1]
			}
		}
		if gotID == id && gotAddr == address {
			var pid int
			fmt.Sscan(filepath.Base(filepath.Dir(p)), &pid)
			pids = append(pids, pid)
		}
	}
	return pids
}

// reapLeak kills and removes what a leak left behind, so that it does not outlive the test:
// containerd cannot reach a task whose container is gone, nor do its cleanups.
func (e *env) reapLeak(id, cgroupsPath string) {
	defer func() {
		time.Sleep(100 * time.Millisecond)
		if cgroupsPath == "" {
			cgroupsPath = "/" + testutil.Namespace + "/" + id
		}
		dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", cgroupsPath))
		for _, d := range dirs {
			_ = os.Remove(d)
		}
	}()
	ctx, cancel := context.WithTimeout(e.ctrd.Context(context.Background()), 10*time.Second)
	defer cancel()
	_, _ = e.ctrd.Client.TaskService().Kill(ctx, &tasksapi.KillRequest{ContainerID: id, Signal: uint32(syscall.SIGKILL), All: true})
	time.Sleep(50 * time.Millisecond)
	_, _ = e.ctrd.Client.TaskService().Delete(ctx, &tasksapi.DeleteTaskRequest{ContainerID: id})
	for _, pid := range shimsOf(e.ctrd.Address, id) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// TestAgentRemovesCrashLoopingContainersCompletely replaces crash-looping containers again
// and again, as a rollback does, at varied moments of their restart loop, and then checks
// that nothing of any of them is left: no container or task in containerd, no shim process,
// no mount, no cgroup, no log file. A local restart racing the removal used to re-create
// the task after, or while, Remove deleted the container, leaving its shim running.
func TestAgentRemovesCrashLoopingContainersCompletely(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ar := e.startAgent(e.rt, t.TempDir())
	rounds := 30
	if testing.Short() {
		rounds = 8
	}
	const perRound = 3
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	cgroups := map[string]string{}
	var all []string
	rev := uint64(0)
	for round := range rounds {
		tasks := make([]dao.Task, perRound)
		for i := range tasks {
			id := uniqueID("crash", round*perRound+i)
			tasks[i] = crashLoopTask(e, id)
			all = append(all, id)
		}
		rev++
		if err := ar.agent.Assign(edge.Assignment{Revision: rev, Tasks: tasks}); err != nil {
			t.Fatal(err)
		}
		// Let the restart loop turn for a while, reading each container's cgroup path
		// meanwhile.
		until := time.Now().Add(time.Duration(20+rnd.IntN(300)) * time.Millisecond)
		for time.Now().Before(until) {
			for _, task := range tasks {
				if cgroups[task.ID] == "" {
					cgroups[task.ID] = e.cgroupsPath(task.ID)
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	rev++
	if err := ar.agent.Assign(edge.Assignment{Revision: rev}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		cs, err := e.ctrd.Client.Containers(e.ctrd.Context(e.ctx))
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d containers still in containerd 15s after they were unassigned", len(cs))
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // a start that was under way has finished by now
	leaked := 0
	for _, id := range all {
		if left := e.leftovers(id, cgroups[id]); len(left) > 0 {
			leaked++
			t.Errorf("%s removed, but left behind: %s", id, strings.Join(left, "; "))
			e.reapLeak(id, cgroups[id])
		}
	}
	t.Logf("%d of %d crash-looping containers leaked something", leaked, len(all))
}

// TestRemoveRacingStart removes containers while starts of them, each cut off by its
// context at a random moment, go on: a start cut off half-way used to leave a shim that
// containerd could no longer reach once the container was deleted.
func TestRemoveRacingStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	n := 16
	if testing.Short() {
		n = 6
	}
	var ids []string
	cgroups := map[string]string{}
	for i := range n {
		id := uniqueID("race", i)
		ids = append(ids, id)
		if err := e.rt.Create(e.ctx, id, dao.ContainerSpec{Image: e.app, Args: []string{"-exit", "1"}}); err != nil {
			t.Fatal(err)
		}
		cgroups[id] = e.cgroupsPath(id)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { // a restart loop whose starts are cut off
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(e.ctx, time.Duration(rand.IntN(40))*time.Millisecond)
				_, _ = e.rt.Start(ctx, id)
				cancel()
			}
		}()
		time.Sleep(time.Duration(rnd.IntN(150)) * time.Millisecond)
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := e.rt.Stop(e.ctx, id, edge.WithGracePeriod(0)); err == nil {
				err = e.rt.Remove(e.ctx, id)
				if err == nil {
					break
				}
				if !errors.Is(err, edge.ErrRunning) {
					t.Fatalf("Remove(%s): %v", id, err)
				}
			} else if errors.Is(err, edge.ErrNotFound) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not removed within 10s", id)
			}
		}
		close(stop)
		<-done
	}
	time.Sleep(500 * time.Millisecond)
	leaked := 0
	for _, id := range ids {
		if left := e.leftovers(id, cgroups[id]); len(left) > 0 {
			leaked++
			t.Errorf("%s removed, but left behind: %s", id, strings.Join(left, "; "))
			e.reapLeak(id, cgroups[id])
		}
	}
	t.Logf("%d of %d containers leaked something", leaked, n)
}

// TestRemoveKillsCreatedTask removes a container whose task was created and never started
// (its process waits in runc init), and one whose process exited: both go whole.
func TestRemoveKillsCreatedTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	created, exited := uniqueID("created", 0), uniqueID("exited", 1)
	for _, id := range []string{created, exited} {
		if err := e.rt.Create(e.ctx, id, dao.ContainerSpec{Image: e.app, Args: []string{"-exit", "3"}}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := e.ctrd.Context(e.ctx)
	c, err := e.ctrd.Client.LoadContainer(ctx, created)
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := task.Status(ctx); st.Status != client.Created || task.Pid() == 0 {
		t.Fatalf("task of %s: %s pid %d, want created with a process", created, st.Status, task.Pid())
	}
	if _, err := e.rt.Start(e.ctx, exited); err != nil {
		t.Fatal(err)
	}
	if st := e.wait(exited, 10*time.Second); st.ExitCode != 3 {
		t.Fatalf("%s: exit code %d, want 3", exited, st.ExitCode)
	}
	// A Wait of the container that never started returns once it is removed: with the
	// status of its killed task if it looked between the kill and the removal, or with
	// ErrNotFound after.
	type waitResult struct {
		st  edge.ContainerStatus
		err error
	}
	waited := make(chan waitResult, 1)
	go func() {
		st, err := e.rt.Wait(e.ctx, created)
		waited <- waitResult{st, err}
	}()
	for _, id := range []string{created, exited} {
		cg := e.cgroupsPath(id)
		if err := e.rt.Remove(e.ctx, id); err != nil {
			t.Fatalf("Remove(%s): %v", id, err)
		}
		if left := e.leftovers(id, cg); len(left) > 0 {
			t.Errorf("%s removed, but left behind: %s", id, strings.Join(left, "; "))
			e.reapLeak(id, cg)
		}
	}
	select {
	case w := <-waited:
		stopped := w.err == nil && w.st.State == edge.StateStopped
		if !stopped && !errors.Is(w.err, edge.ErrNotFound) {
			t.Errorf("Wait of a removed container: %s, err = %v; want stopped or ErrNotFound", w.st.State, w.err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("Wait of a removed container still waits 5s after the removal")
	}
}

// TestAgentRemovesCrashLoopingNetworkedContainers is the crash loop of
// TestAgentRemovesCrashLoopingContainersCompletely on a bridge network: once every
// container is removed, no network namespace is left and no address is still allocated.
func TestAgentRemovesCrashLoopingNetworkedContainers(t *testing.T) {
	c := testutil.StartContainerd(t)
	state := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	e := &env{t: t, ctrd: c, ctx: ctx}
	e.app = testutil.TestAppImage(t, c)
	const bridge = "daoleak0"
	e.rt = e.runtime(edge.WithNetwork(edge.Network{
		Name:     "daoleak",
		Bridge:   bridge,
		Subnet:   "198.18.43.0/24",
		StateDir: filepath.Join(state, "cni"),
		NetNSDir: filepath.Join(state, "netns"),
	}))
	t.Cleanup(func() { _ = exec.Command("ip", "link", "delete", bridge).Run() })
	ar := e.startAgent(e.rt, t.TempDir())
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	rounds := 10
	if testing.Short() {
		rounds = 4
	}
	var all []string
	for round := range rounds {
		tasks := make([]dao.Task, 2)
		for i := range tasks {
			id := uniqueID("net", round*len(tasks)+i)
			tasks[i] = crashLoopTask(e, id)
			all = append(all, id)
		}
		if err := ar.agent.Assign(edge.Assignment{Revision: uint64(round + 1), Tasks: tasks}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(50+rnd.IntN(300)) * time.Millisecond)
	}
	if err := ar.agent.Assign(edge.Assignment{Revision: uint64(rounds + 1)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		cs, err := e.ctrd.Client.Containers(e.ctrd.Context(e.ctx))
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d containers still in containerd 15s after they were unassigned", len(cs))
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	nat, err := exec.Command("iptables", "-t", "nat", "-S").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables -t nat -S: %v: %s", err, nat)
	}
	for _, id := range all {
		left := e.leftovers(id, "")
		if n := strings.Count(string(nat), `id: \"`+id+`\"`); n > 0 {
			left = append(left, fmt.Sprintf("%d iptables nat rules", n))
		}
		if len(left) > 0 {
			t.Errorf("%s removed, but left behind: %s", id, strings.Join(left, "; "))
			e.reapLeak(id, "")
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(state, "netns")); len(entries) > 0 {
		t.Errorf("%d network namespaces left after every container was removed", len(entries))
	}
	ipam, _ := os.ReadDir(filepath.Join(state, "cni", "ipam", "daoleak"))
	for _, ent := range ipam {
		if strings.HasPrefix(ent.Name(), "198.18.43.") {
			t.Errorf("address %s still allocated after every container was removed", ent.Name())
		}
	}
}
