package orchestrator_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"

	"github.com/opendao/dao"
	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/orchestrator"
)

// plane is an orchestrator on a bbolt store with one edge node in the same process: the
// smallest real control plane.
type plane struct {
	o     *orchestrator.Orchestrator
	store *orchestrator.BoltStore
	agent *edge.Agent
	stop  func()
}

func startPlane(t *testing.T, ctx context.Context, c *testutil.Containerd, dir string) *plane {
	t.Helper()
	store, err := orchestrator.OpenBoltStore(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	o, err := orchestrator.New(store, orchestrator.WithReplaceDelay(200*time.Millisecond),
		orchestrator.WithHeartbeatTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := edge.New(c.Address, edge.WithNamespace(testutil.Namespace), edge.WithLogDir(filepath.Join(dir, "logs")))
	if err != nil {
		t.Fatal(err)
	}
	agent, err := edge.NewAgent(rt, edge.WithStateDir(filepath.Join(dir, "agent")),
		edge.WithResyncInterval(time.Second),
		edge.WithStatusFunc(func(u edge.TaskUpdate) { o.ReportStatus("local", u) }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := agent.Run(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("agent.Run: %v", err)
		}
	})
	wg.Go(func() {
		if err := o.Run(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("orchestrator.Run: %v", err)
		}
	})
	node := dao.Node{ID: "local", Allocatable: dao.Resources{MilliCPU: 8000, Memory: 8 * dao.GiB}}
	if err := o.AddNode(ctx, node, agent); err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { // an in-process node beats with a ticker
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				_ = o.Heartbeat("local")
			}
		}
	})
	p := &plane{o: o, store: store, agent: agent}
	var once sync.Once
	p.stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			rt.Close()
			store.Close()
		})
	}
	t.Cleanup(p.stop)
	return p
}

// containers returns the PID of every running task in the test namespace, by container ID.
func containers(t *testing.T, ctx context.Context, c *testutil.Containerd) map[string]uint32 {
	t.Helper()
	ctx = c.Context(ctx)
	cs, err := c.Client.Containers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint32{}
	for _, ct := range cs {
		task, err := ct.Task(ctx, nil)
		if err != nil {
			continue
		}
		st, err := task.Status(ctx)
		if err == nil && st.Status == client.Running {
			out[ct.ID()] = task.Pid()
		}
	}
	return out
}

func waitReal(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// healthy returns the live tasks of web that run and are healthy, by ID.
func healthy(t *testing.T, ctx context.Context, o *orchestrator.Orchestrator) map[string]orchestrator.Task {
	ts, err := o.Tasks(ctx, orchestrator.TaskFilter{ServiceID: "web", Live: true})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]orchestrator.Task{}
	for _, tk := range ts {
		if tk.Status.State == dao.TaskRunning && tk.Status.Health == dao.HealthHealthy {
			out[tk.ID] = tk
		}
	}
	return out
}

func TestContainerdServiceHealsRollsBackAndSurvivesRestart(t *testing.T) {
	c := testutil.StartContainerd(t)
	image := testutil.TestAppImage(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	p := startPlane(t, ctx, c, dir)

	check := &dao.HealthCheck{
		Command:  []string{"/testapp", "-check", "http://127.0.0.1:8080/healthz"},
		Interval: dao.Duration(300 * time.Millisecond),
		Timeout:  dao.Duration(time.Second),
		Retries:  2,
	}
	spec := dao.ServiceSpec{Name: "web", Replicas: 3,
		Container: dao.ContainerSpec{Image: image, Args: []string{"-listen", "127.0.0.1:8080"}, HealthCheck: check},
		Update:    dao.UpdatePolicy{Parallelism: 1, Monitor: dao.Duration(time.Second), FailureAction: dao.ActionRollback}}
	if _, err := p.o.CreateService(ctx, spec); err != nil {
		t.Fatal(err)
	}

	// 1. Three replicas run.
	waitReal(t, 30*time.Second, "3 healthy tasks", func() bool { return len(healthy(t, ctx, p.o)) == 3 })
	pids := containers(t, ctx, c)
	if len(pids) != 3 {
		t.Fatalf("containerd runs %d containers, want 3: %v", len(pids), pids)
	}
	for id := range healthy(t, ctx, p.o) {
		if pids[id] == 0 {
			t.Errorf("task %s has no running container", id)
		}
	}

	// 2. A killed container is restarted by the node, in place.
	var victim string
	for id := range pids {
		victim = id
		break
	}
	ct, err := c.Client.LoadContainer(c.Context(ctx), victim)
	if err != nil {
		t.Fatal(err)
	}
	task, err := ct.Task(c.Context(ctx), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Kill(c.Context(ctx), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitReal(t, 30*time.Second, "the killed container restarted", func() bool {
		h := healthy(t, ctx, p.o)
		now := containers(t, ctx, c)
		return len(h) == 3 && h[victim].Status.Restarts >= 1 && now[victim] != 0 && now[victim] != pids[victim]
	})
	pids = containers(t, ctx, c)
	if len(pids) != 3 {
		t.Fatalf("containerd runs %d containers after the kill, want 3: %v", len(pids), pids)
	}

	// 3. A bad version (health check fails) is rolled back; the old tasks keep serving.
	bad := spec
	bad.Container.Args = []string{"-listen", "127.0.0.1:8080", "-unhealthy"}
	if _, err := p.o.UpdateService(ctx, "web", bad); err != nil {
		t.Fatal(err)
	}
	waitReal(t, 40*time.Second, "rolled back", func() bool {
		svc, err := p.o.Service(ctx, "web")
		return err == nil && svc.UpdateStatus.State == orchestrator.UpdateRolledBack
	})
	waitReal(t, 30*time.Second, "3 healthy tasks after the rollback", func() bool { return len(healthy(t, ctx, p.o)) == 3 })
	after := containers(t, ctx, c)
	kept := 0
	for id, pid := range pids {
		if after[id] == pid {
			kept++
		}
	}
	if kept < 2 || len(after) != 3 {
		t.Errorf("after the rollback %d of 3 old containers kept their PID (want >= 2, parallelism 1); running %v", kept, after)
	}
	for _, tk := range healthy(t, ctx, p.o) {
		if len(tk.Spec.Args) != 2 {
			t.Errorf("task %s runs %v after the rollback", tk.ID, tk.Spec.Args)
		}
	}

	// 4. Stop the program and start it again on the same bbolt file and node state.
	p.stop()
	p2 := startPlane(t, ctx, c, dir)
	time.Sleep(3 * time.Second) // let it converge, if it were going to change anything
	again := containers(t, ctx, c)
	if len(again) != 3 {
		t.Errorf("after the restart containerd runs %d containers, want 3: %v", len(again), again)
	}
	for id, pid := range after {
		if again[id] != pid {
			t.Errorf("container %s: PID %d before the restart, %d after", id, pid, again[id])
		}
	}
	waitReal(t, 20*time.Second, "3 healthy tasks after the restart", func() bool { return len(healthy(t, ctx, p2.o)) == 3 })
	ts, _ := p2.o.Tasks(ctx, orchestrator.TaskFilter{ServiceID: "web", Live: true})
	if len(ts) != 3 {
		t.Errorf("%d live tasks after the restart, want 3", len(ts))
	}
}
