package edge_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/opendao/dao"
	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/internal/daemon"
)

// agentRun is an Agent running in the background, with the updates it reported.
type agentRun struct {
	agent  *edge.Agent
	cancel context.CancelFunc
	done   chan error

	mu      sync.Mutex
	updates []edge.TaskUpdate
}

func (e *env) startAgent(rt *edge.Runtime, stateDir string, opts ...edge.AgentOption) *agentRun {
	e.t.Helper()
	ar := &agentRun{done: make(chan error, 1)}
	a, err := edge.NewAgent(rt, append([]edge.AgentOption{
		edge.WithStateDir(stateDir),
		edge.WithResyncInterval(time.Second),
		edge.WithStatusFunc(func(u edge.TaskUpdate) {
			ar.mu.Lock()
			ar.updates = append(ar.updates, u)
			ar.mu.Unlock()
		})}, opts...)...)
	if err != nil {
		e.t.Fatalf("NewAgent: %v", err)
	}
	ar.agent = a
	ctx, cancel := context.WithCancel(e.ctx)
	ar.cancel = cancel
	go func() { ar.done <- a.Run(ctx) }()
	e.t.Cleanup(func() {
		ar.stop()
		if err := a.Close(); err != nil {
			e.t.Errorf("Agent.Close: %v", err)
		}
	})
	return ar
}

// stop ends Run, as a program that exits would; containers keep running.
func (ar *agentRun) stop() {
	if ar.cancel != nil {
		ar.cancel()
		<-ar.done
		ar.cancel = nil
	}
}

func (ar *agentRun) updateCount() int {
	ar.mu.Lock()
	defer ar.mu.Unlock()
	return len(ar.updates)
}

// waitTask waits until the agent reports the task in a status that satisfies ok.
func (ar *agentRun) waitTask(t *testing.T, id string, within time.Duration, what string, ok func(dao.TaskStatus) bool) dao.TaskStatus {
	t.Helper()
	deadline := time.Now().Add(within)
	var last dao.TaskStatus
	for time.Now().Before(deadline) {
		for _, task := range ar.agent.Tasks() {
			if task.ID == id {
				last = task.Status
				if ok(task.Status) {
					return task.Status
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("task %s: not %s within %s; last status %+v", id, what, within, last)
	return last
}

func running(s dao.TaskStatus) bool { return s.State == dao.TaskRunning && s.PID != 0 }

// assignApps gives the agent n testapp tasks, PREFIX-0 to PREFIX-(n-1), at revision 1.
func (ar *agentRun) assignApps(t *testing.T, e *env, prefix string, n int) []dao.Task {
	t.Helper()
	tasks := make([]dao.Task, n)
	for i := range tasks {
		tasks[i] = appTask(e, fmt.Sprintf("%s-%d", prefix, i))
	}
	if err := ar.agent.Assign(edge.Assignment{Revision: 1, Tasks: tasks}); err != nil {
		t.Fatal(err)
	}
	return tasks
}

func appTask(e *env, id string) dao.Task {
	return dao.Task{
		ID:           id,
		ServiceID:    "svc",
		Spec:         dao.ContainerSpec{Image: e.app, StopGracePeriod: dao.Duration(2 * time.Second)},
		Restart:      dao.RestartPolicy{ResetAfter: dao.Duration(time.Second)},
		DesiredState: dao.TaskRunning,
	}
}

// containerdRunning gives the PIDs of the tasks containerd runs in the test namespace, by container.
func (e *env) containerdRunning() map[string]uint32 {
	e.t.Helper()
	out, err := daemon.RunningTasks(e.ctrd.Context(e.ctx), e.ctrd.Client)
	if err != nil {
		e.t.Fatalf("containerd list: %v", err)
	}
	return out
}

func TestAgentConvergesAndRestarts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	state := t.TempDir()
	ar := e.startAgent(e.rt, state)
	tasks := []dao.Task{appTask(e, "web-1"), appTask(e, "web-2")}
	if err := ar.agent.Assign(edge.Assignment{Revision: 1, Tasks: tasks}); err != nil {
		t.Fatalf("Assign: %v", err)
	}
	first := ar.waitTask(t, "web-1", 30*time.Second, "running", running)
	ar.waitTask(t, "web-2", 30*time.Second, "running", running)
	if got := e.containerdRunning(); len(got) != 2 || got["web-1"] != first.PID {
		t.Fatalf("containerd runs %v, want web-1 (pid %d) and web-2", got, first.PID)
	}

	// Re-sending the same set changes nothing.
	before := ar.updateCount()
	if err := ar.agent.Assign(edge.Assignment{Revision: 1, Tasks: tasks}); err != nil {
		t.Fatalf("Assign again: %v", err)
	}
	time.Sleep(1500 * time.Millisecond) // past a resync
	if got := e.containerdRunning(); got["web-1"] != first.PID {
		t.Errorf("web-1 pid %d after re-sending the same set, want %d", got["web-1"], first.PID)
	}
	if after := ar.updateCount(); after != before {
		t.Errorf("%d status updates after re-sending the same set, want none", after-before)
	}
	if err := ar.agent.Assign(edge.Assignment{Revision: 0, Tasks: nil}); !errors.Is(err, edge.ErrStaleRevision) {
		t.Errorf("Assign of an older revision: err = %v, want ErrStaleRevision", err)
	}
	// A control plane whose store started over (another epoch) is listened to.
	if err := ar.agent.Assign(edge.Assignment{Epoch: "restarted", Revision: 0, Tasks: tasks}); err != nil {
		t.Errorf("Assign of revision 0 of a new epoch: %v, want it taken", err)
	}
	if got := e.containerdRunning(); got["web-1"] != first.PID {
		t.Errorf("web-1 pid %d after the same set came in a new epoch, want %d (not restarted)", got["web-1"], first.PID)
	}

	// A container killed from outside is restarted by the agent, on its own.
	if err := syscall.Kill(int(first.PID), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	again := ar.waitTask(t, "web-1", 10*time.Second, "restarted", func(s dao.TaskStatus) bool {
		return running(s) && s.PID != first.PID && s.Restarts == 1
	})
	if got := e.containerdRunning(); got["web-1"] != again.PID {
		t.Errorf("containerd pid of web-1 = %d, agent says %d", got["web-1"], again.PID)
	}
	if again.ExitCode != 137 {
		t.Errorf("reported exit code %d of the killed container, want 137", again.ExitCode)
	}

	// A task that is no longer assigned is stopped and removed.
	if err := ar.agent.Assign(edge.Assignment{Revision: 2, Tasks: tasks[:1]}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := e.ctrd.Client.LoadContainer(e.ctrd.Context(e.ctx), "web-2")
		if errdefs.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web-2 still in containerd after it was unassigned: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAgentRestartKeepsContainers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	state := t.TempDir()
	ar := e.startAgent(e.rt, state)
	if err := ar.agent.Assign(edge.Assignment{Revision: 5, Tasks: []dao.Task{appTask(e, "keep-1"), appTask(e, "keep-2")}}); err != nil {
		t.Fatal(err)
	}
	s1 := ar.waitTask(t, "keep-1", 30*time.Second, "running", running)
	s2 := ar.waitTask(t, "keep-2", 30*time.Second, "running", running)
	// keep-2 crashes once: its restart count must survive the agent's restart too.
	if err := syscall.Kill(int(s2.PID), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s2 = ar.waitTask(t, "keep-2", 10*time.Second, "restarted", func(s dao.TaskStatus) bool {
		return running(s) && s.PID != s2.PID && s.Restarts == 1
	})
	ar.stop()

	// A new program: new runtime, new agent, same state directory, no Assign call.
	rt2 := e.runtime()
	ar2 := e.startAgent(rt2, state)
	if got := ar2.agent.Revision(); got != 5 {
		t.Errorf("revision after restart = %d, want 5 from the state dir", got)
	}
	n1 := ar2.waitTask(t, "keep-1", 10*time.Second, "adopted", running)
	n2 := ar2.waitTask(t, "keep-2", 10*time.Second, "adopted", running)
	for _, c := range []struct{ before, after dao.TaskStatus }{{s1, n1}, {s2, n2}} {
		if c.after.PID != c.before.PID || !c.after.StartedAt.Equal(c.before.StartedAt) || c.after.Restarts != c.before.Restarts {
			t.Errorf("after the agent restarted: pid %d started %s restarts %d; before: pid %d started %s restarts %d",
				c.after.PID, c.after.StartedAt, c.after.Restarts, c.before.PID, c.before.StartedAt, c.before.Restarts)
		}
	}
}

// TestAgentSurvivesContainerd takes containerd away under a running agent: stopped and
// started again, and killed with SIGKILL while one container's process dies too, so that its
// exit may never reach an event stream. Either way, once containerd is back the agent
// restarts the container that died (after the restart, a kill of it is seen through the new
// event stream), leaves the others as they were, and duplicates nothing.
func TestAgentSurvivesContainerd(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// outage takes containerd away and back, and kills the process of pid on the way.
		outage func(e *env, pid uint32)
	}{{
		name: "restart",
		outage: func(e *env, pid uint32) {
			e.ctrd.Restart()
			time.Sleep(2 * time.Second) // a resync or two
			e.kill(pid)
		},
	}, {
		name: "crash",
		outage: func(e *env, pid uint32) {
			e.ctrd.Kill()
			e.kill(pid)
			time.Sleep(time.Second) // the agent sees containerd gone
			e.ctrd.Start()
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ar := e.startAgent(e.rt, t.TempDir())
			tasks := ar.assignApps(t, e, "c", 3)
			for _, task := range tasks {
				ar.waitTask(t, task.ID, 30*time.Second, "running", running)
			}
			before := e.containerdRunning()
			tc.outage(e, before["c-0"])
			ar.waitTask(t, "c-0", 20*time.Second, "restarted", func(s dao.TaskStatus) bool {
				return running(s) && s.PID != before["c-0"]
			})
			after := e.containerdRunning()
			if len(after) != 3 {
				t.Errorf("containerd runs %d containers after the outage, want 3: %v", len(after), after)
			}
			for _, id := range []string{"c-1", "c-2"} {
				if after[id] != before[id] {
					t.Errorf("%s pid %d after the outage, want %d (untouched)", id, after[id], before[id])
				}
			}
			cs, _ := e.ctrd.Client.Containers(e.ctrd.Context(e.ctx))
			if len(cs) != 3 {
				t.Errorf("containerd has %d containers, want 3 (no duplicates)", len(cs))
			}
		})
	}
}

// kill sends SIGKILL to a process from outside.
func (e *env) kill(pid uint32) {
	e.t.Helper()
	if err := syscall.Kill(int(pid), syscall.SIGKILL); err != nil {
		e.t.Fatal(err)
	}
}

func TestAgentRestartPolicyAndRejection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ar := e.startAgent(e.rt, t.TempDir())
	done := appTask(e, "done")
	done.Spec.Args = []string{"-exit", "0"}
	done.Restart = dao.RestartPolicy{Condition: dao.RestartOnFailure}
	crash := appTask(e, "crash")
	crash.Spec.Args = []string{"-exit", "2"}
	crash.Restart = dao.RestartPolicy{Condition: dao.RestartOnFailure, MaxAttempts: 2, Window: dao.Duration(time.Minute)}
	missing := appTask(e, "missing")
	missing.Spec.Image = "dao.test/no-such-image:1"
	if err := ar.agent.Assign(edge.Assignment{Revision: 1, Tasks: []dao.Task{done, crash, missing}}); err != nil {
		t.Fatal(err)
	}
	ar.waitTask(t, "done", 20*time.Second, "complete", func(s dao.TaskStatus) bool { return s.State == dao.TaskComplete })
	st := ar.waitTask(t, "crash", 30*time.Second, "failed", func(s dao.TaskStatus) bool { return s.State == dao.TaskFailed })
	if st.Restarts != 2 || st.ExitCode != 2 || st.Err == "" {
		t.Errorf("crash: restarts %d exit %d err %q; want 2 restarts, exit 2 and a reason", st.Restarts, st.ExitCode, st.Err)
	}
	if st.Restarting || !st.NextRestartAt.IsZero() {
		t.Errorf("crash: failed, but restarting %v at %s", st.Restarting, st.NextRestartAt)
	}
	st = ar.waitTask(t, "missing", 10*time.Second, "rejected", func(s dao.TaskStatus) bool { return s.State == dao.TaskRejected })
	if !errors.Is(errors.New(st.Err), edge.ErrImageNotFound) && !contains(st.Err, "image not found") {
		t.Errorf("rejection reason %q does not say the image is missing", st.Err)
	}
}

func TestAgentHealthChecks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ar := e.startAgent(e.rt, t.TempDir())
	check := &dao.HealthCheck{
		Command:  []string{"/testapp", "-check", "http://127.0.0.1:8080/healthz"},
		Interval: dao.Duration(200 * time.Millisecond),
		Timeout:  dao.Duration(2 * time.Second),
		Retries:  2,
	}
	good := appTask(e, "good")
	good.Spec.Args = []string{"-listen", "127.0.0.1:8080"}
	good.Spec.HealthCheck = check
	bad := appTask(e, "bad")
	bad.Spec.Args = []string{"-listen", "127.0.0.1:8080", "-unhealthy"}
	bad.Spec.HealthCheck = check
	if err := ar.agent.Assign(edge.Assignment{Revision: 1, Tasks: []dao.Task{good, bad}}); err != nil {
		t.Fatal(err)
	}
	ar.waitTask(t, "good", 30*time.Second, "healthy", func(s dao.TaskStatus) bool { return s.Health == dao.HealthHealthy })
	st := ar.waitTask(t, "bad", 30*time.Second, "unhealthy", func(s dao.TaskStatus) bool { return s.Health == dao.HealthUnhealthy })
	if !contains(st.Message, "health check") {
		t.Errorf("unhealthy message %q does not mention the health check", st.Message)
	}
}

// TestAgentRemovesWhileHealthChecksRun unassigns containers whose health check runs all the
// time, so that a check is in flight when the container is stopped: each must be gone
// within seconds. A check cut off half-way used to leave containerd 1.6's shim answering
// nothing for 30 s, and the container with it.
func TestAgentRemovesWhileHealthChecksRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ar := e.startAgent(e.rt, t.TempDir())
	check := &dao.HealthCheck{
		Command:  []string{"/testapp", "-check", "http://127.0.0.1:8080/healthz"},
		Interval: dao.Duration(20 * time.Millisecond),
		Timeout:  dao.Duration(2 * time.Second),
	}
	for round := range 6 {
		var tasks []dao.Task
		for i := range 2 {
			task := appTask(e, fmt.Sprintf("busy-%d-%d", round, i))
			task.Spec.Args = []string{"-listen", "127.0.0.1:8080"}
			task.Spec.HealthCheck = check
			// As in examples/pipeline, where the stall showed: a quarter of a core.
			task.Spec.Resources = dao.Resources{MilliCPU: 250, Pids: 64}
			tasks = append(tasks, task)
		}
		rev := uint64(2*round + 1)
		if err := ar.agent.Assign(edge.Assignment{Revision: rev, Tasks: tasks}); err != nil {
			t.Fatal(err)
		}
		for _, task := range tasks {
			ar.waitTask(t, task.ID, 30*time.Second, "healthy", func(s dao.TaskStatus) bool { return s.Health == dao.HealthHealthy })
		}
		begin := time.Now()
		if err := ar.agent.Assign(edge.Assignment{Revision: rev + 1}); err != nil {
			t.Fatal(err)
		}
		for {
			cs, err := e.ctrd.Client.Containers(e.ctrd.Context(e.ctx))
			if err != nil {
				t.Fatal(err)
			}
			if len(cs) == 0 {
				break
			}
			if time.Since(begin) > 15*time.Second {
				t.Fatalf("round %d: %d containers still there 15s after they were unassigned", round, len(cs))
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("round %d: removed in %s", round, time.Since(begin).Round(time.Millisecond))
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || len(s) >= len(sub) && (s == sub || indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

var _ = filepath.Join

func TestAgentConvergesThroughContainerdRestartMidCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ar := e.startAgent(e.rt, t.TempDir())
	tasks := ar.assignApps(t, e, "mid", 5)
	time.Sleep(100 * time.Millisecond) // some creates are under way
	e.ctrd.Restart()
	for _, task := range tasks {
		ar.waitTask(t, task.ID, 60*time.Second, "running", running)
	}
	got := e.containerdRunning()
	if len(got) != 5 {
		t.Errorf("containerd runs %d containers, want 5: %v", len(got), got)
	}
	cs, _ := e.ctrd.Client.Containers(e.ctrd.Context(e.ctx))
	if len(cs) != 5 {
		t.Errorf("containerd has %d containers, want 5 (no duplicates, none left half-made)", len(cs))
	}
}
