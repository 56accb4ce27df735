package orchestrator_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/typeurl/v2"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao"
	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/internal/daemon"
	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/registry/ctrd"
	regoci "github.com/opendao/dao/registry/oci"
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
	// The tests here are about healing and updates, not liveness: a long grace keeps a
	// heartbeat starved on a loaded machine from moving tasks under them.
	o, err := orchestrator.New(store, orchestrator.WithReplaceDelay(200*time.Millisecond),
		orchestrator.WithHeartbeatTimeout(5*time.Second), orchestrator.WithGrace(30*time.Second))
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
	out, err := daemon.RunningTasks(c.Context(ctx), c.Client)
	if err != nil {
		t.Fatal(err)
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

// ctrEvents records what the private containerd says of the containers of the test
// namespace: when each task started and exited (its own process, not an exec), and the
// image each container was created from.
type ctrEvents struct {
	mu     sync.Mutex
	starts map[string][]time.Time
	exits  map[string][]time.Time
	images map[string]string
}

// watchContainerd subscribes to containerd's events until ctx is done, and waits until
// the subscription is set up: an event it publishes of a container it creates and
// deletes is seen.
func watchContainerd(t *testing.T, ctx context.Context, c *testutil.Containerd) *ctrEvents {
	t.Helper()
	ev := &ctrEvents{starts: map[string][]time.Time{}, exits: map[string][]time.Time{}, images: map[string]string{}}
	ns := testutil.Namespace
	envs, errs := c.Client.Subscribe(ctx,
		fmt.Sprintf(`namespace==%s,topic=="/tasks/start"`, ns),
		fmt.Sprintf(`namespace==%s,topic=="/tasks/exit"`, ns),
		fmt.Sprintf(`namespace==%s,topic=="/containers/create"`, ns))
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-errs:
				return
			case env := <-envs:
				v, err := typeurl.UnmarshalAny(env.Event)
				if err != nil {
					continue
				}
				ev.mu.Lock()
				switch e := v.(type) {
				case *apievents.TaskStart:
					ev.starts[e.ContainerID] = append(ev.starts[e.ContainerID], env.Timestamp)
				case *apievents.TaskExit:
					if e.ID == e.ContainerID {
						ev.exits[e.ContainerID] = append(ev.exits[e.ContainerID], e.ExitedAt.AsTime())
					}
				case *apievents.ContainerCreate:
					ev.images[e.ID] = e.Image
				}
				ev.mu.Unlock()
			}
		}
	}()
	// A container created now is seen once the subscription works.
	probe := "probe-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cctx := c.Context(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		id := probe + strconv.Itoa(i)
		ct, err := c.Client.NewContainer(cctx, id, client.WithNewSpec(oci.WithRootFSPath("/probe")))
		if err != nil {
			t.Fatal(err)
		}
		_ = ct.Delete(cctx)
		time.Sleep(50 * time.Millisecond)
		ev.mu.Lock()
		_, seen := ev.images[id]
		ev.mu.Unlock()
		if seen {
			return ev
		}
		if time.Now().After(deadline) {
			t.Fatal("containerd events: the subscription never delivered")
		}
	}
}

func (ev *ctrEvents) get(id string) (starts, exits []time.Time, image string) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return slices.Clone(ev.starts[id]), slices.Clone(ev.exits[id]), ev.images[id]
}

// slotOfTaskID returns the slot in a task ID of the reconciler's ("web.3.1a2b3c4d").
func slotOfTaskID(id string) int {
	parts := strings.Split(id, ".")
	if len(parts) != 3 {
		return -1
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil {
		return -1
	}
	return n
}

func waitUpdate(t *testing.T, ctx context.Context, o *orchestrator.Orchestrator, service string, want orchestrator.UpdateState) {
	t.Helper()
	waitReal(t, 60*time.Second, service+" "+string(want), func() bool {
		svc, err := o.Service(ctx, service)
		return err == nil && svc.UpdateStatus.State == want
	})
}

func runningTasks(t *testing.T, ctx context.Context, o *orchestrator.Orchestrator, service string) []orchestrator.Task {
	ts, err := o.Tasks(ctx, orchestrator.TaskFilter{ServiceID: service, Live: true})
	if err != nil {
		t.Fatal(err)
	}
	var out []orchestrator.Task
	for _, tk := range ts {
		if tk.Status.State == dao.TaskRunning && tk.Status.PID != 0 {
			out = append(out, tk)
		}
	}
	return out
}

// TestContainerdStopFirstNoOverlap updates, stop-first (the default), a service whose
// program takes a second to drain on SIGTERM, and one whose program ignores it (killed
// after its 1.5s grace period): containerd's own timestamps show each slot's new
// container started only after the old one had exited.
func TestContainerdStopFirstNoOverlap(t *testing.T) {
	c := testutil.StartContainerd(t)
	image := testutil.TestAppImage(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := startPlane(t, ctx, c, t.TempDir())
	ev := watchContainerd(t, ctx, c)

	const monitor = 500 * time.Millisecond
	update := dao.UpdatePolicy{Parallelism: 1, Monitor: dao.Duration(monitor)}
	drains := dao.ServiceSpec{Name: "web", Replicas: 2, Update: update,
		Container: dao.ContainerSpec{Image: image, Args: []string{"-term-delay", "1s"}, StopGracePeriod: dao.Duration(5 * time.Second)}}
	stubborn := dao.ServiceSpec{Name: "stubborn", Replicas: 1, Update: update,
		Container: dao.ContainerSpec{Image: image, Args: []string{"-ignore-term"}, StopGracePeriod: dao.Duration(1500 * time.Millisecond)}}
	for _, spec := range []dao.ServiceSpec{drains, stubborn} {
		if _, err := p.o.CreateService(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	waitReal(t, 30*time.Second, "3 running", func() bool {
		return len(runningTasks(t, ctx, p.o, "web")) == 2 && len(runningTasks(t, ctx, p.o, "stubborn")) == 1
	})
	start := time.Now()
	for _, spec := range []dao.ServiceSpec{drains, stubborn} {
		spec.Container.Args = append(slices.Clone(spec.Container.Args), "-version", "v2")
		if _, err := p.o.UpdateService(ctx, spec.Name, spec); err != nil {
			t.Fatal(err)
		}
	}
	waitUpdate(t, ctx, p.o, "web", orchestrator.UpdateCompleted)
	t.Logf("2 replicas that drain for 1s, Parallelism 1, monitor %s: update completed in %s", monitor, time.Since(start).Round(time.Millisecond))
	waitUpdate(t, ctx, p.o, "stubborn", orchestrator.UpdateCompleted)

	for _, service := range []string{"web", "stubborn"} {
		var ts []orchestrator.Task
		waitReal(t, 10*time.Second, service+"'s old tasks ended", func() bool {
			var err error
			if ts, err = p.o.Tasks(ctx, orchestrator.TaskFilter{ServiceID: service}); err != nil {
				t.Fatal(err)
			}
			for _, tk := range ts {
				if !slices.Contains(tk.Spec.Args, "v2") && !tk.Status.State.Terminal() {
					return false
				}
			}
			return true
		})
		bySlot := map[int][]orchestrator.Task{}
		for _, tk := range ts {
			bySlot[tk.Slot] = append(bySlot[tk.Slot], tk)
		}
		for slot, ts := range bySlot {
			var oldID, newID string
			for _, tk := range ts {
				if slices.Contains(tk.Spec.Args, "v2") {
					newID = tk.ID
				} else {
					oldID = tk.ID
				}
			}
			_, exits, _ := ev.get(oldID)
			starts, _, _ := ev.get(newID)
			if oldID == "" || newID == "" || len(exits) == 0 || len(starts) == 0 {
				t.Errorf("%s slot %d: old task %q (exits %v), new task %q (starts %v)", service, slot, oldID, exits, newID, starts)
				continue
			}
			exited, started := exits[len(exits)-1], starts[0]
			if !started.After(exited) {
				t.Errorf("%s slot %d: new container %s started %s before the old one %s exited", service, slot, newID,
					exited.Sub(started).Round(time.Millisecond), oldID)
			} else {
				t.Logf("%s slot %d: new container started %s after the old one exited", service, slot, started.Sub(exited).Round(time.Millisecond))
			}
		}
	}
}

// TestContainerdCrashingDeployRollsBackOneSlot deploys, with Parallelism 1 and no delay,
// an image whose program exits at once: exactly one slot ever gets it before the
// rollback, and Deploy returns once the rollback has finished, saying so.
func TestContainerdCrashingDeployRollsBackOneSlot(t *testing.T) {
	c := testutil.StartContainerd(t)
	image := testutil.TestAppImage(t, c)
	base := testutil.BuildTestAppImage(t)
	crashing, err := regoci.NewImage(base.Layers(), ocispec.ImageConfig{Entrypoint: []string{"/testapp", "-exit", "1"}})
	if err != nil {
		t.Fatal(err)
	}
	const crashImage = "dao.test/testapp:crash"
	if _, err := ctrd.Import(c.Context(context.Background()), c.Client, crashImage, crashing, ctrd.WithUnpack("overlayfs")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := startPlane(t, ctx, c, t.TempDir())
	ev := watchContainerd(t, ctx, c)

	spec := dao.ServiceSpec{Name: "web", Replicas: 3, Container: dao.ContainerSpec{Image: image},
		Update: dao.UpdatePolicy{Parallelism: 1, Monitor: dao.Duration(2 * time.Second), FailureAction: dao.ActionRollback}}
	if _, err := p.o.CreateService(ctx, spec); err != nil {
		t.Fatal(err)
	}
	waitReal(t, 30*time.Second, "3 running", func() bool { return len(runningTasks(t, ctx, p.o, "web")) == 3 })

	err = p.o.Deploy(ctx, "web", crashImage)
	t.Logf("Deploy: %v", err)
	svc, serr := p.o.Service(ctx, "web")
	if serr != nil {
		t.Fatal(serr)
	}
	if svc.UpdateStatus.State != orchestrator.UpdateRolledBack {
		t.Errorf("Deploy returned with the update %s (%s), want rolled back", svc.UpdateStatus.State, svc.UpdateStatus.Message)
	}
	if !errors.Is(err, orchestrator.ErrRolledBack) || !errors.Is(err, orchestrator.ErrUpdateFailed) {
		t.Errorf("Deploy: %v, want ErrRolledBack", err)
	}
	if live := runningTasks(t, ctx, p.o, "web"); len(live) != 3 {
		t.Errorf("%d tasks run once Deploy returned, want 3", len(live))
	} else {
		for _, tk := range live {
			if tk.Spec.Image != image {
				t.Errorf("task %s runs %s once Deploy returned", tk.ID, tk.Spec.Image)
			}
		}
	}
	// What containerd was asked to create from the crashing image, once the rollback has
	// finished (if Deploy returned before).
	waitUpdate(t, ctx, p.o, "web", orchestrator.UpdateRolledBack)
	var slots []int
	ev.mu.Lock()
	for id, img := range ev.images {
		if strings.Contains(img, "testapp:crash") && !slices.Contains(slots, slotOfTaskID(id)) {
			slots = append(slots, slotOfTaskID(id))
		}
	}
	ev.mu.Unlock()
	if len(slots) != 1 {
		t.Errorf("containers of the crashing image were created for slots %v, want one slot", slots)
	}
}
