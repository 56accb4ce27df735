package edge_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/orchestrator"
)

// recordHandler is a slog.Handler that keeps every record, to see what was logged.
type recordHandler struct {
	mu   *sync.Mutex
	recs *[]slog.Record
}

func newRecordHandler() recordHandler {
	return recordHandler{mu: &sync.Mutex{}, recs: &[]slog.Record{}}
}

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h recordHandler) WithGroup(string) slog.Handler            { return h }

func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	*h.recs = append(*h.recs, r.Clone())
	h.mu.Unlock()
	return nil
}

// debug returns how many Debug records have each message.
func (h recordHandler) debug() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{}
	for _, r := range *h.recs {
		if r.Level == slog.LevelDebug {
			out[r.Message]++
		}
	}
	return out
}

// find reports whether a Debug record with message msg has attributes that satisfy ok.
func (h recordHandler) find(msg string, ok func(map[string]slog.Value) bool) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range *h.recs {
		if r.Level != slog.LevelDebug || r.Message != msg {
			continue
		}
		attrs := map[string]slog.Value{}
		r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.Resolve(); return true })
		if ok(attrs) {
			return true
		}
	}
	return false
}

// TestAgentCrashLoopUnderOrchestrator runs a service on an orchestrator with this node in
// the same process, updates it to a version whose containers exit at once, and rolls it
// back. While the containers crash-loop, the node's reports, the orchestrator's tasks and
// its task events say that they are down and restarting, with their last exit and the next
// attempt, and no longer so once started again. The rollback removes them whole. The
// agent's logger has a Debug record of every decision on the way.
func TestAgentCrashLoopUnderOrchestrator(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(e.ctx, time.Minute)
	defer cancel()
	store, err := orchestrator.NewMemoryStore()
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	o, err := orchestrator.New(store, orchestrator.WithReplaceDelay(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	logs := newRecordHandler()
	var (
		mu      sync.Mutex
		updates []edge.TaskUpdate
	)
	agent, err := edge.NewAgent(e.rt, edge.WithResyncInterval(time.Second),
		edge.WithAgentLogger(slog.New(logs)),
		edge.WithStatusFunc(func(u edge.TaskUpdate) {
			mu.Lock()
			updates = append(updates, u)
			mu.Unlock()
			o.ReportStatus("local", u)
		}))
	if err != nil {
		t.Fatal(err)
	}
	events, err := o.Watch(ctx, 0, orchestrator.WatchTypes(orchestrator.TaskObject))
	if err != nil {
		t.Fatal(err)
	}
	var causes []string
	var restartingEvents int
	var eventsMu sync.Mutex
	var wg sync.WaitGroup
	wg.Go(func() {
		for ev := range events {
			eventsMu.Lock()
			causes = append(causes, ev.Cause)
			if ev.Task != nil && ev.Task.Status.Restarting && strings.Contains(ev.Cause, "restarting (exit 1") {
				restartingEvents++
			}
			eventsMu.Unlock()
		}
	})
	runCtx, stopRun := context.WithCancel(ctx)
	wg.Go(func() {
		if err := agent.Run(runCtx); !errors.Is(err, context.Canceled) {
			t.Errorf("agent.Run: %v", err)
		}
	})
	wg.Go(func() {
		if err := o.Run(runCtx); !errors.Is(err, context.Canceled) {
			t.Errorf("orchestrator.Run: %v", err)
		}
	})
	defer func() {
		stopRun()
		cancel() // ends the watch
		wg.Wait()
	}()
	if err := o.AddNode(ctx, dao.Node{ID: "local", Allocatable: dao.Resources{MilliCPU: 8000, Memory: 8 * dao.GiB}}, agent); err != nil {
		t.Fatal(err)
	}
	beat := time.NewTicker(500 * time.Millisecond)
	defer beat.Stop()
	go func() {
		for {
			select {
			case <-runCtx.Done():
				return
			case <-beat.C:
				_ = o.Heartbeat("local")
			}
		}
	}()

	good := dao.ServiceSpec{Name: "web", Replicas: 2,
		Container: dao.ContainerSpec{Image: e.app, Args: []string{"-listen", "127.0.0.1:8080"},
			StopGracePeriod: dao.Duration(time.Second),
			HealthCheck: &dao.HealthCheck{Command: []string{"/testapp", "-check", "http://127.0.0.1:8080/healthz"},
				Interval: dao.Duration(200 * time.Millisecond), Timeout: dao.Duration(time.Second), Retries: 2}},
		Restart: dao.RestartPolicy{InitialDelay: dao.Duration(800 * time.Millisecond), MaxDelay: dao.Duration(800 * time.Millisecond)},
		Update:  dao.UpdatePolicy{Parallelism: 2, Monitor: dao.Duration(200 * time.Millisecond)},
	}
	if _, err := o.CreateService(ctx, good); err != nil {
		t.Fatal(err)
	}
	live := func() []orchestrator.Task {
		ts, err := o.Tasks(ctx, orchestrator.TaskFilter{ServiceID: "web", Live: true})
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	waitFor := func(within time.Duration, what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out after %s waiting for %s; tasks %+v", within, what, live())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	healthyTasks := func() int {
		n := 0
		for _, tk := range live() {
			if tk.Status.State == dao.TaskRunning && tk.Status.Health == dao.HealthHealthy {
				n++
			}
		}
		return n
	}
	waitFor(30*time.Second, "2 healthy tasks", func() bool { return healthyTasks() == 2 })

	bad := good
	bad.Container.Args = []string{"-exit", "1"}
	if _, err := o.UpdateService(ctx, "web", bad); err != nil {
		t.Fatal(err)
	}
	// The orchestrator's tasks show the crash loop.
	var looping orchestrator.Task
	waitFor(30*time.Second, "a task of the new version restarting", func() bool {
		for _, tk := range live() {
			if len(tk.Spec.Args) == 2 && tk.Spec.Args[0] == "-exit" && tk.Status.Restarting {
				looping = tk
				return true
			}
		}
		return false
	})
	st := looping.Status
	if st.State != dao.TaskRunning || st.PID != 0 || st.ExitCode != 1 || st.FinishedAt.IsZero() {
		t.Errorf("restarting task %s: state %s pid %d exit %d finished %s; want running, no pid, exit 1 and when",
			looping.ID, st.State, st.PID, st.ExitCode, st.FinishedAt)
	}
	if wait := st.NextRestartAt.Sub(st.FinishedAt); wait < 500*time.Millisecond || wait > 2*time.Second {
		t.Errorf("restarting task %s: next attempt %s after the exit, want about 800ms", looping.ID, wait)
	}
	if d := st.Describe(st.Timestamp); !strings.HasPrefix(d, "restarting (exit 1, ") || !strings.Contains(d, "next attempt in") {
		t.Errorf("restarting task described as %q", d)
	}
	// So does the container, for those who read containerd (dao ps).
	waitFor(5*time.Second, "the container's next restart label", func() bool {
		c, err := e.ctrd.Client.LoadContainer(e.ctrd.Context(ctx), looping.ID)
		if err != nil {
			return false
		}
		labels, err := c.Labels(e.ctrd.Context(ctx))
		if err != nil || labels[edge.LabelNextRestart] == "" {
			return false
		}
		if _, err := time.Parse(time.RFC3339Nano, labels[edge.LabelNextRestart]); err != nil {
			t.Errorf("label %s = %q: %v", edge.LabelNextRestart, labels[edge.LabelNextRestart], err)
		}
		return true
	})
	// ... until it is started again.
	waitFor(15*time.Second, "the looping task started again", func() bool {
		mu.Lock()
		defer mu.Unlock()
		seen := false
		for _, u := range updates {
			if u.TaskID != looping.ID {
				continue
			}
			switch {
			case u.Status.Restarting:
				seen = true
			case seen && u.Status.State == dao.TaskRunning && u.Status.PID != 0:
				if !u.Status.NextRestartAt.IsZero() || u.Status.Restarts < 1 {
					t.Errorf("started again: next restart %s, restarts %d; want none and at least 1",
						u.Status.NextRestartAt, u.Status.Restarts)
				}
				return true
			}
		}
		return false
	})
	waitFor(10*time.Second, "a task event saying restarting", func() bool {
		eventsMu.Lock()
		defer eventsMu.Unlock()
		return restartingEvents > 0
	})

	// Roll back: the crash-looping containers go, whole; the old version runs.
	var loopers []string
	for _, tk := range live() {
		if tk.Spec.Args[0] == "-exit" {
			loopers = append(loopers, tk.ID)
		}
	}
	cgroups := map[string]string{}
	for _, id := range loopers {
		cgroups[id] = e.cgroupsPath(id)
	}
	if _, err := o.RollbackService(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	waitFor(30*time.Second, "2 healthy tasks after the rollback", func() bool { return healthyTasks() == 2 })
	waitFor(15*time.Second, "the crash-looping containers removed", func() bool {
		running := e.containerdRunning()
		cs, _ := e.ctrd.Client.Containers(e.ctrd.Context(ctx))
		return len(running) == 2 && len(cs) == 2
	})
	time.Sleep(300 * time.Millisecond)
	for _, id := range loopers {
		if left := e.leftovers(id, cgroups[id]); len(left) > 0 {
			t.Errorf("%s removed in the rollback, but left behind: %s", id, strings.Join(left, "; "))
			e.reapLeak(id, cgroups[id])
		}
	}

	// Every decision is in the agent's log, at Debug.
	got := logs.debug()
	for _, msg := range []string{
		"agent running", "assignment received", "task worker started", "container created",
		"container started", "health changed", "container exited: restart scheduled",
		"restarting container", "task worker stopped: removing its container", "container stopped",
		"container removed", "status sent",
	} {
		if got[msg] == 0 {
			t.Errorf("no Debug record %q; the Debug records: %v", msg, got)
		}
	}
	if !logs.find("container exited: restart scheduled", func(a map[string]slog.Value) bool {
		return a["task"].String() == looping.ID && a["exitCode"].Int64() == 1 && a["backoff"].Duration() > 0
	}) {
		t.Errorf("no Debug record of %s's restart with its exit code and backoff", looping.ID)
	}
	if !logs.find("status sent", func(a map[string]slog.Value) bool {
		return a["task"].String() == looping.ID && strings.HasPrefix(a["status"].String(), "restarting (exit 1")
	}) {
		t.Errorf("no Debug record of %s's restarting status being sent", looping.ID)
	}
}

// TestAgentLogsDecisionsAtDebug runs an agent with a Debug logger through a healthy task, a
// crash-looping one and their removal: every decision is a Debug record.
func TestAgentLogsDecisionsAtDebug(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	logs := newRecordHandler()
	ar := e.startAgent(e.rt, t.TempDir(), edge.WithAgentLogger(slog.New(logs)))
	web := appTask(e, uniqueID("web", 0))
	web.Spec.Args = []string{"-listen", "127.0.0.1:8080"}
	web.Spec.HealthCheck = &dao.HealthCheck{Command: []string{"/testapp", "-check", "http://127.0.0.1:8080/healthz"},
		Interval: dao.Duration(100 * time.Millisecond), Timeout: dao.Duration(time.Second)}
	crash := crashLoopTask(e, uniqueID("crash", 1))
	if err := ar.agent.Assign(edge.Assignment{Revision: 1, Tasks: []dao.Task{web, crash}}); err != nil {
		t.Fatal(err)
	}
	ar.waitTask(t, web.ID, 30*time.Second, "healthy", func(s dao.TaskStatus) bool { return s.Health == dao.HealthHealthy })
	ar.waitTask(t, crash.ID, 30*time.Second, "restarted", func(s dao.TaskStatus) bool { return s.Restarts >= 2 })
	if err := ar.agent.Assign(edge.Assignment{Revision: 2}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for logs.debug()["container removed"] < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("containers not removed within 15s; Debug records: %v", logs.debug())
		}
		time.Sleep(20 * time.Millisecond)
	}
	ar.stop()
	got := logs.debug()
	for _, msg := range []string{
		"agent running", "assignment received", "task worker started", "container created",
		"container started", "health changed", "container exited: restart scheduled",
		"restarting container", "task worker stopped: removing its container", "container stopped",
		"container removed", "status sent", "agent stopped",
	} {
		if got[msg] == 0 {
			t.Errorf("no Debug record %q; the Debug records: %v", msg, got)
		}
	}
	if !logs.find("health changed", func(a map[string]slog.Value) bool {
		return a["task"].String() == web.ID && a["to"].String() == string(dao.HealthHealthy)
	}) {
		t.Errorf("no Debug record of %s turning healthy", web.ID)
	}
	if !logs.find("status sent", func(a map[string]slog.Value) bool {
		return a["task"].String() == crash.ID && strings.HasPrefix(a["status"].String(), "restarting (exit 1")
	}) {
		t.Errorf("no Debug record of %s's restarting status being sent", crash.ID)
	}
}

// TestAgentRunEndsAfterItsRemovals ends Run while a container no longer assigned is being
// stopped: Run returns once it is removed and its end reported, so that no goroutine of the
// agent acts on it afterwards (on a closed Runtime, say).
func TestAgentRunEndsAfterItsRemovals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ar := e.startAgent(e.rt, t.TempDir())
	slow := appTask(e, uniqueID("slow", 0))
	slow.Spec.Args = []string{"-ignore-term"}
	slow.Spec.StopGracePeriod = dao.Duration(time.Second)
	if err := ar.agent.Assign(edge.Assignment{Revision: 1, Tasks: []dao.Task{slow}}); err != nil {
		t.Fatal(err)
	}
	ar.waitTask(t, slow.ID, 30*time.Second, "running", running)
	time.Sleep(300 * time.Millisecond) // testapp has set itself up to ignore SIGTERM
	if err := ar.agent.Assign(edge.Assignment{Revision: 2}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the removal has begun: SIGTERM, ignored
	ar.stop()
	if _, err := e.ctrd.Client.LoadContainer(e.ctrd.Context(e.ctx), slow.ID); err == nil {
		t.Errorf("%s still in containerd after Run returned", slow.ID)
	}
	ar.mu.Lock()
	defer ar.mu.Unlock()
	if n := len(ar.updates); n == 0 || ar.updates[n-1].TaskID != slow.ID || ar.updates[n-1].Status.State != dao.TaskShutdown {
		t.Errorf("the last update before Run returned is not %s shut down: %+v", slow.ID, ar.updates[max(n-1, 0):])
	}
}
