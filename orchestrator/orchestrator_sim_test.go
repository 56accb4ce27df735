package orchestrator_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/clock"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/orchestrator/simnode"
	"github.com/opendao/dao/policy"
)

// sim is an orchestrator over a memory store driving simulated nodes, all on one manual
// clock.
type sim struct {
	t       *testing.T
	ctx     context.Context
	clock   *clock.Manual
	store   orchestrator.Store
	o       *orchestrator.Orchestrator
	cluster *simnode.Cluster
	extra   []*simnode.Node
}

const (
	simTimeout = 3 * time.Second
	simGrace   = 5 * time.Second
)

func newSim(t *testing.T, nodes int, shapes ...simnode.Shape) *sim {
	t.Helper()
	return newSimWith(t, simConfig{nodes: nodes, shapes: shapes})
}

// simConfig is what a sim may change: the store (a memory store by default, closed with
// the sim either way), options of the nodes and of the orchestrator, and a function told
// of every status report before the orchestrator.
type simConfig struct {
	nodes    int
	shapes   []simnode.Shape
	store    orchestrator.Store
	nodeOpts []simnode.Option
	opts     []orchestrator.Option
	onStatus func(node string, u orchestrator.TaskUpdate)
	// beforeRun, when set, runs once the nodes are added, before Run starts.
	beforeRun func(s *sim)
}

func newSimWith(t *testing.T, cfg simConfig) *sim {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &sim{t: t, ctx: ctx, clock: clock.NewManual(time.Unix(1_700_000_000, 0))}
	store := cfg.store
	if store == nil {
		var err error
		if store, err = orchestrator.NewMemoryStore(); err != nil {
			t.Fatal(err)
		}
	}
	s.store = store
	opts := append([]orchestrator.Option{orchestrator.WithClock(s.clock),
		orchestrator.WithHeartbeatTimeout(simTimeout), orchestrator.WithGrace(simGrace),
		orchestrator.WithReplaceDelay(500 * time.Millisecond),
		orchestrator.WithAdmission(policy.DisallowPrivileged())}, cfg.opts...)
	var err error
	s.o, err = orchestrator.New(store, opts...)
	if err != nil {
		t.Fatal(err)
	}
	report := s.o.ReportStatus
	if cfg.onStatus != nil {
		report = func(node string, u orchestrator.TaskUpdate) {
			cfg.onStatus(node, u)
			s.o.ReportStatus(node, u)
		}
	}
	nodeOpts := append([]simnode.Option{simnode.WithClock(s.clock), simnode.WithStartLatency(simnode.Fixed(100 * time.Millisecond))},
		cfg.nodeOpts...)
	s.cluster, err = simnode.NewCluster(cfg.nodes, simnode.WithClusterSeed(1), simnode.WithShapes(cfg.shapes...),
		simnode.WithNodeOptions(nodeOpts...),
		simnode.WithClusterStatusFunc(report),
		simnode.WithClusterHeartbeat(time.Second, func(id string, _ time.Time) { _ = s.o.Heartbeat(id) }))
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range s.cluster.Infos() {
		if err := s.o.AddNode(ctx, info, s.cluster.Node(info.ID)); err != nil {
			t.Fatal(err)
		}
	}
	if cfg.beforeRun != nil {
		cfg.beforeRun(s)
	}
	done := make(chan error, 1)
	go func() { done <- s.o.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
		s.cluster.Close()
		for _, n := range s.extra {
			n.Close()
		}
		store.Close()
	})
	return s
}

// addNode makes one more simulated node and adds it.
func (s *sim) addNode(id string, labels map[string]string) *simnode.Node {
	s.t.Helper()
	n, err := simnode.New(dao.Node{ID: id, Labels: labels,
		Capacity:    dao.Resources{MilliCPU: 4000, Memory: 8 * dao.GiB},
		Allocatable: dao.Resources{MilliCPU: 4000, Memory: 8 * dao.GiB}},
		simnode.WithClock(s.clock), simnode.WithStartLatency(simnode.Fixed(100*time.Millisecond)),
		simnode.WithStatusFunc(func(u orchestrator.TaskUpdate) { s.o.ReportStatus(id, u) }),
		simnode.WithHeartbeat(time.Second, func(time.Time) { _ = s.o.Heartbeat(id) }))
	if err != nil {
		s.t.Fatal(err)
	}
	s.extra = append(s.extra, n)
	if err := s.o.AddNode(s.ctx, n.Info(), n); err != nil {
		s.t.Fatal(err)
	}
	return n
}

// waitFor moves the clock 50ms at a time until cond holds, failing after 10s of real time.
// It returns how much simulated time passed.
func (s *sim) waitFor(what string, cond func() bool) time.Duration {
	s.t.Helper()
	start := s.clock.Now()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out (simulated %s) waiting for %s; tasks:\n%s", s.clock.Now().Sub(start), what, s.dump())
		}
		s.clock.Advance(50 * time.Millisecond)
		time.Sleep(200 * time.Microsecond)
	}
	return s.clock.Now().Sub(start)
}

// settle lets the loops run for d of simulated time.
func (s *sim) settle(d time.Duration) {
	for end := s.clock.Now().Add(d); s.clock.Now().Before(end); {
		s.clock.Advance(50 * time.Millisecond)
		time.Sleep(200 * time.Microsecond)
	}
}

func (s *sim) tasks(f orchestrator.TaskFilter) []orchestrator.Task {
	s.t.Helper()
	ts, err := s.o.Tasks(s.ctx, f)
	if err != nil {
		s.t.Fatal(err)
	}
	return ts
}

// running returns the live tasks of a service that run.
func (s *sim) running(service string) []orchestrator.Task {
	var out []orchestrator.Task
	for _, t := range s.tasks(orchestrator.TaskFilter{ServiceID: service, Live: true}) {
		if t.Status.State == dao.TaskRunning {
			out = append(out, t)
		}
	}
	return out
}

func (s *sim) dump() string {
	var b strings.Builder
	for _, t := range s.tasks(orchestrator.TaskFilter{}) {
		fmt.Fprintf(&b, "  %s v%d slot %d node %q desired %s: %s %q\n", t.ID, t.ServiceVersion, t.Slot, t.NodeID,
			t.DesiredState, t.Status.State, t.Status.Message)
	}
	return b.String()
}

func webSpec(replicas int) dao.ServiceSpec {
	return dao.ServiceSpec{Name: "web", Replicas: replicas, Container: dao.ContainerSpec{
		Image: "example.com/web:1", Resources: dao.Resources{MilliCPU: 100, Memory: 64 * dao.MiB}}}
}

// slotsCovered checks that the live tasks fill slots 1..n, one task each.
func slotsCovered(ts []orchestrator.Task, n int) bool {
	seen := map[int]int{}
	for _, t := range ts {
		seen[t.Slot]++
	}
	if len(seen) != n || len(ts) != n {
		return false
	}
	for i := 1; i <= n; i++ {
		if seen[i] != 1 {
			return false
		}
	}
	return true
}

func TestReplicasConvergeScaleRemove(t *testing.T) {
	s := newSim(t, 3)
	if _, err := s.o.CreateService(s.ctx, webSpec(5)); err != nil {
		t.Fatal(err)
	}
	s.waitFor("5 running", func() bool { return slotsCovered(s.running("web"), 5) })

	if _, err := s.o.ScaleService(s.ctx, "web", 8); err != nil {
		t.Fatal(err)
	}
	s.waitFor("8 running", func() bool { return slotsCovered(s.running("web"), 8) })
	if _, err := s.o.ScaleService(s.ctx, "web", 2); err != nil {
		t.Fatal(err)
	}
	s.waitFor("2 running, the rest shut down", func() bool {
		all := s.tasks(orchestrator.TaskFilter{ServiceID: "web"})
		for _, t := range all {
			if t.Slot > 2 && t.Status.State != dao.TaskShutdown {
				return false
			}
		}
		return slotsCovered(s.running("web"), 2)
	})
	svc, err := s.o.Service(s.ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if svc.UpdateStatus.State != "" {
		t.Errorf("scale started an update: %+v", svc.UpdateStatus)
	}

	if err := s.o.RemoveService(s.ctx, "web"); err != nil {
		t.Fatal(err)
	}
	s.waitFor("every task deleted", func() bool { return len(s.tasks(orchestrator.TaskFilter{})) == 0 })
	for _, n := range s.cluster.Nodes() {
		for _, tk := range n.Tasks() {
			if !tk.Status.State.Terminal() {
				t.Errorf("node %s still runs %s (%s)", n.ID(), tk.ID, tk.Status.State)
			}
		}
	}
}

func TestNodeDownMovesTasksNoDuplicates(t *testing.T) {
	s := newSim(t, 3)
	events, err := s.o.Watch(s.ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.o.CreateService(s.ctx, webSpec(6)); err != nil {
		t.Fatal(err)
	}
	s.waitFor("6 running", func() bool { return slotsCovered(s.running("web"), 6) })
	victim := s.cluster.Node("node-0001")
	var onVictim int
	for _, tk := range s.running("web") {
		if tk.NodeID == victim.ID() {
			onVictim++
		}
	}
	if onVictim == 0 {
		t.Fatal("no task on node-0001")
	}
	total := len(s.tasks(orchestrator.TaskFilter{ServiceID: "web"}))

	victim.Disconnect()
	s.waitFor("node disconnected", func() bool {
		ns, _ := s.o.Nodes(s.ctx)
		return ns[0].Status.State == dao.NodeDisconnected
	})
	// Within the grace period, nothing is duplicated.
	s.settle(simGrace - time.Second)
	if n := len(s.tasks(orchestrator.TaskFilter{ServiceID: "web"})); n != total {
		t.Fatalf("%d tasks while the node is merely disconnected, want %d:\n%s", n, total, s.dump())
	}
	moved := s.waitFor("tasks moved off the down node", func() bool {
		live := s.running("web")
		for _, tk := range live {
			if tk.NodeID == victim.ID() {
				return false
			}
		}
		return slotsCovered(live, 6)
	})
	if moved > 2*time.Second+simTimeout {
		t.Errorf("tasks moved %s after the grace period ended, want soon after", moved)
	}
	ns, _ := s.o.Nodes(s.ctx)
	if ns[0].Status.State != dao.NodeDown {
		t.Errorf("node-0001 is %s, want down", ns[0].Status.State)
	}
	// The node comes back: what it ran is stopped there, not run twice.
	victim.Up()
	s.waitFor("old tasks stopped on the returning node", func() bool {
		for _, tk := range victim.Tasks() {
			if !tk.Status.State.Terminal() {
				return false
			}
		}
		ns, _ := s.o.Nodes(s.ctx)
		return ns[0].Status.State == dao.NodeReady
	})
	if !slotsCovered(s.running("web"), 6) {
		t.Errorf("slots not covered once the node returned:\n%s", s.dump())
	}
	// The watch says why.
	var sawDown, sawReplace bool
	for len(events) > 0 {
		e := <-events
		sawDown = sawDown || strings.HasPrefix(e.Cause, "liveness: node node-0001 down")
		sawReplace = sawReplace || (strings.HasPrefix(e.Cause, "reconciler: web slot") && strings.Contains(e.Cause, "orphaned"))
	}
	if !sawDown || !sawReplace {
		t.Errorf("events: saw down %v, saw replacement %v", sawDown, sawReplace)
	}
}

func TestGlobalServiceFollowsNodes(t *testing.T) {
	s := newSim(t, 2)
	spec := webSpec(0)
	spec.Name, spec.Mode = "agent", dao.ModeGlobal
	if _, err := s.o.CreateService(s.ctx, spec); err != nil {
		t.Fatal(err)
	}
	nodesOf := func() map[string]bool {
		m := map[string]bool{}
		for _, tk := range s.running("agent") {
			if m[tk.NodeID] {
				return nil // two on one node
			}
			m[tk.NodeID] = true
		}
		return m
	}
	has := func(want ...string) func() bool {
		return func() bool {
			m := nodesOf()
			if len(m) != len(want) {
				return false
			}
			for _, w := range want {
				if !m[w] {
					return false
				}
			}
			return true
		}
	}
	s.waitFor("one task per node", has("node-0001", "node-0002"))
	s.addNode("node-0003", nil)
	s.waitFor("a task on the new node", has("node-0001", "node-0002", "node-0003"))
	if err := s.o.DrainNode(s.ctx, "node-0001"); err != nil {
		t.Fatal(err)
	}
	s.waitFor("none on the drained node", has("node-0002", "node-0003"))
	if err := s.o.RemoveNode(s.ctx, "node-0002"); err != nil {
		t.Fatal(err)
	}
	s.waitFor("none on the removed node", has("node-0003"))
	if err := s.o.ActivateNode(s.ctx, "node-0001"); err != nil {
		t.Fatal(err)
	}
	s.waitFor("back on the activated node", has("node-0001", "node-0003"))
}

func TestUnschedulableReportsWhyAndIsPlacedLater(t *testing.T) {
	s := newSim(t, 1) // 4 CPUs
	spec := webSpec(2)
	spec.Container.Resources.MilliCPU = 3000
	if _, err := s.o.CreateService(s.ctx, spec); err != nil {
		t.Fatal(err)
	}
	s.waitFor("one running, one refused", func() bool {
		ts := s.tasks(orchestrator.TaskFilter{ServiceID: "web", Live: true})
		var run, refused int
		for _, tk := range ts {
			switch {
			case tk.Status.State == dao.TaskRunning:
				run++
			case tk.NodeID == "" && strings.Contains(tk.Status.Message, "insufficient cpu"):
				refused++
			}
		}
		return run == 1 && refused == 1
	})
	// No busy loop: the refusal is written once, and not again while nothing changes.
	rev := func() uint64 {
		var r uint64
		_ = s.store.View(s.ctx, func(tx orchestrator.ReadTx) error { r = tx.Revision(); return nil })
		return r
	}
	before := rev()
	time.Sleep(50 * time.Millisecond) // real time: the loops would spin if they were going to
	if after := rev(); after != before {
		t.Errorf("store revision moved from %d to %d with nothing happening", before, after)
	}
	s.addNode("node-big", nil)
	s.waitFor("both running", func() bool { return slotsCovered(s.running("web"), 2) })
}

func TestRollingUpdateRollsBackOnFailures(t *testing.T) {
	s := newSim(t, 3)
	spec := webSpec(4)
	spec.Update = dao.UpdatePolicy{Parallelism: 1, Delay: dao.Duration(time.Second), Monitor: dao.Duration(2 * time.Second),
		FailureAction: dao.ActionRollback, MaxFailureRatio: 0.2}
	if _, err := s.o.CreateService(s.ctx, spec); err != nil {
		t.Fatal(err)
	}
	s.waitFor("4 running", func() bool { return slotsCovered(s.running("web"), 4) })
	old := map[string]bool{}
	for _, tk := range s.running("web") {
		old[tk.ID] = true
	}

	// A good update first: every slot replaced, one at a time.
	good := spec
	good.Container.Image = "example.com/web:2"
	if _, err := s.o.UpdateService(s.ctx, "web", good); err != nil {
		t.Fatal(err)
	}
	s.waitFor("update completed", func() bool {
		svc, _ := s.o.Service(s.ctx, "web")
		return svc.UpdateStatus.State == orchestrator.UpdateCompleted
	})
	v2 := map[string]bool{}
	for _, tk := range s.running("web") {
		if tk.Spec.Image != good.Container.Image || old[tk.ID] {
			t.Errorf("task %s runs %s after the update", tk.ID, tk.Spec.Image)
		}
		v2[tk.ID] = true
	}
	if len(v2) != 4 {
		t.Fatalf("%d tasks after the update:\n%s", len(v2), s.dump())
	}

	// A bad one: the new tasks crash.
	bad := good
	bad.Container.Image = "example.com/web:3-broken"
	if _, err := s.o.UpdateService(s.ctx, "web", bad); err != nil {
		t.Fatal(err)
	}
	crashed := map[string]bool{}
	s.waitFor("rolled back", func() bool {
		for _, n := range s.cluster.Nodes() {
			for _, tk := range n.Tasks() {
				full, err := s.o.Task(s.ctx, tk.ID)
				if err == nil && full.Spec.Image == bad.Container.Image && tk.Status.State == dao.TaskRunning && !crashed[tk.ID] {
					crashed[tk.ID] = true
					_ = n.Crash(tk.ID, 1)
				}
			}
		}
		svc, _ := s.o.Service(s.ctx, "web")
		return svc.UpdateStatus.State == orchestrator.UpdateRolledBack
	})
	svc, _ := s.o.Service(s.ctx, "web")
	if svc.Spec.Container.Image != good.Container.Image || !strings.Contains(svc.UpdateStatus.Message, "all") {
		t.Errorf("service after rollback: image %s, status %+v", svc.Spec.Container.Image, svc.UpdateStatus)
	}
	live := s.running("web")
	if !slotsCovered(live, 4) {
		t.Fatalf("slots after rollback:\n%s", s.dump())
	}
	badSlots := map[int]bool{}
	for _, tk := range s.tasks(orchestrator.TaskFilter{ServiceID: "web"}) {
		if tk.Spec.Image == bad.Container.Image {
			badSlots[tk.Slot] = true
		}
	}
	kept := 0
	for _, tk := range live {
		if tk.Spec.Image != good.Container.Image {
			t.Errorf("task %s runs %s after the rollback", tk.ID, tk.Spec.Image)
		}
		if v2[tk.ID] {
			kept++
		}
	}
	if len(badSlots) != 1 || kept != 4-len(badSlots) {
		t.Errorf("%d slots got the bad version, %d healthy old tasks kept; want every untouched one kept:\n%s",
			len(badSlots), kept, s.dump())
	}
	if len(crashed) == 0 {
		t.Error("no new task was crashed")
	}
}

func TestAdmissionErrorsAreTyped(t *testing.T) {
	s := newSim(t, 1)
	spec := webSpec(1)
	spec.Container.Privileged = true
	_, err := s.o.CreateService(s.ctx, spec)
	var ae *policy.AdmissionError
	if !errors.As(err, &ae) || !errors.Is(err, policy.ErrNotAdmitted) {
		t.Fatalf("CreateService(privileged) = %v, want a *policy.AdmissionError", err)
	}
	if len(ae.Violations) != 1 || ae.Violations[0].Rule != "disallow-privileged" {
		t.Errorf("violations %+v", ae.Violations)
	}
	spec.Container.Privileged = false
	spec.Placement.Constraints = []string{"node.labels.zone =="}
	if _, err := s.o.CreateService(s.ctx, spec); !errors.As(err, &ae) {
		t.Errorf("bad constraint: %v, want a *policy.AdmissionError", err)
	}
	spec.Name = "Bad Name"
	if _, err := s.o.CreateService(s.ctx, spec); !errors.Is(err, dao.ErrInvalid) {
		t.Errorf("bad name: %v, want dao.ErrInvalid", err)
	}
	if _, err := s.o.RollbackService(s.ctx, "nope"); !errors.Is(err, orchestrator.ErrNotFound) {
		t.Errorf("rollback of a missing service: %v", err)
	}
}

func TestDeployWaitsForTheRollingUpdate(t *testing.T) {
	s := newSim(t, 3)
	spec := webSpec(3)
	spec.Update = dao.UpdatePolicy{Parallelism: 1, Monitor: dao.Duration(time.Second),
		FailureAction: dao.ActionRollback, MaxFailureRatio: 0.2}
	if _, err := s.o.CreateService(s.ctx, spec); err != nil {
		t.Fatal(err)
	}
	s.waitFor("3 running", func() bool { return slotsCovered(s.running("web"), 3) })

	deploy := func(image string) <-chan error {
		done := make(chan error, 1)
		go func() { done <- s.o.Deploy(s.ctx, "web", image) }()
		return done
	}
	var err error
	finished := func(done <-chan error) func() bool {
		return func() bool {
			select {
			case err = <-done:
				return true
			default:
				return false
			}
		}
	}

	// A good image: Deploy returns once every task runs it.
	s.waitFor("deploy of web:2", finished(deploy("example.com/web:2")))
	if err != nil {
		t.Fatalf("Deploy web:2: %v", err)
	}
	for _, tk := range s.running("web") {
		if tk.Spec.Image != "example.com/web:2" {
			t.Errorf("task %s runs %s after Deploy returned", tk.ID, tk.Spec.Image)
		}
	}
	// The same image again: nothing to do.
	if err := s.o.Deploy(s.ctx, "web", "example.com/web:2"); err != nil {
		t.Fatalf("Deploy of the running image: %v", err)
	}

	// A bad image: its tasks crash, the update rolls back, Deploy says so.
	done := deploy("example.com/web:3-broken")
	crashed := map[string]bool{}
	s.waitFor("deploy of a broken image", func() bool {
		for _, n := range s.cluster.Nodes() {
			for _, tk := range n.Tasks() {
				full, err := s.o.Task(s.ctx, tk.ID)
				if err == nil && full.Spec.Image == "example.com/web:3-broken" && tk.Status.State == dao.TaskRunning && !crashed[tk.ID] {
					crashed[tk.ID] = true
					_ = n.Crash(tk.ID, 1)
				}
			}
		}
		return finished(done)()
	})
	if !errors.Is(err, orchestrator.ErrUpdateFailed) {
		t.Fatalf("Deploy of a crashing image: err = %v, want ErrUpdateFailed", err)
	}
	t.Logf("Deploy of a crashing image: %v", err)

	if err := s.o.Deploy(s.ctx, "nope", "example.com/web:2"); !errors.Is(err, orchestrator.ErrNotFound) {
		t.Errorf("Deploy to a missing service: err = %v, want ErrNotFound", err)
	}
}

// TestDisconnectReplaceIsPerService: a service whose DisconnectPolicy says so has the tasks
// of a disconnected node replaced at once; the others wait for the node to be down. When
// the node comes back, its replaced tasks are stopped there.
func TestDisconnectReplaceIsPerService(t *testing.T) {
	s := newSim(t, 3)
	eager := webSpec(6)
	eager.Name = "eager"
	eager.Disconnect.Replace = true
	for _, spec := range []dao.ServiceSpec{webSpec(6), eager} {
		if _, err := s.o.CreateService(s.ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	s.waitFor("12 running", func() bool {
		return slotsCovered(s.running("web"), 6) && slotsCovered(s.running("eager"), 6)
	})
	victim := s.cluster.Node("node-0001")
	on := func(service string) (n int) {
		for _, tk := range s.running(service) {
			if tk.NodeID == victim.ID() {
				n++
			}
		}
		return n
	}
	if on("web") == 0 || on("eager") == 0 {
		t.Fatalf("node-0001 runs %d web and %d eager tasks; want some of each:\n%s", on("web"), on("eager"), s.dump())
	}
	webTasks := len(s.tasks(orchestrator.TaskFilter{ServiceID: "web"}))

	victim.Disconnect()
	took := s.waitFor("eager's tasks replaced while the node is only disconnected", func() bool {
		live := s.running("eager")
		for _, tk := range live {
			if tk.NodeID == victim.ID() {
				return false
			}
		}
		return slotsCovered(live, 6)
	})
	if ns, _ := s.o.Nodes(s.ctx); ns[0].Status.State != dao.NodeDisconnected {
		t.Fatalf("node-0001 is %s once eager's tasks moved, want disconnected (took %s)", ns[0].Status.State, took)
	}
	if n := len(s.tasks(orchestrator.TaskFilter{ServiceID: "web"})); n != webTasks {
		t.Errorf("web has %d tasks while the node is disconnected, want %d: its policy waits for down", n, webTasks)
	}

	victim.Up()
	s.waitFor("the node's replaced eager tasks stopped there", func() bool {
		ns, _ := s.o.Nodes(s.ctx)
		if ns[0].Status.State != dao.NodeReady {
			return false
		}
		for _, tk := range victim.Tasks() {
			full, err := s.o.Task(s.ctx, tk.ID)
			if err == nil && full.ServiceID == "eager" && !tk.Status.State.Terminal() {
				return false
			}
		}
		return true
	})
	if !slotsCovered(s.running("eager"), 6) || !slotsCovered(s.running("web"), 6) {
		t.Errorf("slots not covered once the node returned:\n%s", s.dump())
	}
	if n := on("web"); n == 0 {
		t.Errorf("web's tasks on the returning node were replaced: it was never down")
	}
}

// TestNodesAddedWhileRunningAreAllUsed adds nodes to a running orchestrator and creates a
// service right after: the scheduler must see every node that was added before the
// service's tasks were created, not only those whose events it had taken in.
func TestNodesAddedWhileRunningAreAllUsed(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, err := orchestrator.NewMemoryStore()
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	clk := clock.NewManual(time.Unix(1_700_000_000, 0))
	o, err := orchestrator.New(store, orchestrator.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	const nodes, replicas = 2000, 4000
	cluster, err := simnode.NewCluster(nodes, simnode.WithClusterSeed(1),
		simnode.WithNodeOptions(simnode.WithClock(clk)), simnode.WithClusterStatusFunc(o.ReportStatus))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for _, info := range cluster.Infos() {
		if err := o.AddNode(ctx, info, cluster.Node(info.ID)); err != nil {
			t.Fatal(err)
		}
	}
	spec := webSpec(replicas)
	spec.Container.Resources = dao.Resources{MilliCPU: 10, Memory: 4 * dao.MiB}
	if _, err := o.CreateService(ctx, spec); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ts, err := o.Tasks(ctx, orchestrator.TaskFilter{ServiceID: "web"})
		if err != nil {
			t.Fatal(err)
		}
		perNode := map[string]int{}
		for _, tk := range ts {
			if tk.NodeID != "" {
				perNode[tk.NodeID]++
			}
		}
		placed := 0
		for _, n := range perNode {
			placed += n
		}
		if placed == replicas {
			if len(perNode) != nodes {
				hi := 0
				for _, n := range perNode {
					hi = max(hi, n)
				}
				t.Errorf("%d tasks placed on %d of %d nodes (up to %d on one): nodes added before the service were left out",
					replicas, len(perNode), nodes, hi)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d tasks placed after 30s", placed, replicas)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDisconnectStartsTheGraceAtOnce: a node whose connection closed (its agent died) is
// disconnected at once and down after the grace, without waiting for the heartbeat timeout;
// a heartbeat before then makes it ready again with nothing moved.
func TestDisconnectStartsTheGraceAtOnce(t *testing.T) {
	s := newSim(t, 2)
	if _, err := s.o.CreateService(s.ctx, webSpec(4)); err != nil {
		t.Fatal(err)
	}
	s.waitFor("4 running", func() bool { return slotsCovered(s.running("web"), 4) })
	victim := s.cluster.Node("node-0001")
	state := func() dao.NodeState {
		ns, _ := s.o.Nodes(s.ctx)
		for _, n := range ns {
			if n.ID == victim.ID() {
				return n.Status.State
			}
		}
		return ""
	}
	total := len(s.tasks(orchestrator.TaskFilter{ServiceID: "web"}))

	// Closed and back within the grace: nothing moves.
	if err := s.o.Disconnect(victim.ID(), "connection closed by the node"); err != nil {
		t.Fatal(err)
	}
	if d := s.waitFor("disconnected", func() bool { return state() == dao.NodeDisconnected }); d >= simTimeout {
		t.Errorf("disconnected %s after the connection closed, want before the heartbeat timeout %s", d, simTimeout)
	}
	if err := s.o.Heartbeat(victim.ID()); err != nil {
		t.Fatal(err)
	}
	s.waitFor("ready again", func() bool { return state() == dao.NodeReady })
	s.settle(simGrace + simTimeout)
	if n := len(s.tasks(orchestrator.TaskFilter{ServiceID: "web"})); n != total {
		t.Fatalf("%d tasks after a reconnect within the grace, want %d:\n%s", n, total, s.dump())
	}

	// Closed for good: down after the grace alone.
	victim.Disconnect()
	if err := s.o.Disconnect(victim.ID(), "connection closed by the node"); err != nil {
		t.Fatal(err)
	}
	down := s.waitFor("down", func() bool { return state() == dao.NodeDown })
	if down >= simTimeout+simGrace || down < simGrace {
		t.Errorf("down %s after the connection closed, want after the grace %s and before timeout+grace %s", down, simGrace, simTimeout+simGrace)
	}
	ns, _ := s.o.Nodes(s.ctx)
	for _, n := range ns {
		if n.ID == victim.ID() && !strings.Contains(n.Status.Message, "connection closed by the node") {
			t.Errorf("status message %q does not say why", n.Status.Message)
		}
	}
	s.waitFor("tasks moved off the down node", func() bool {
		live := s.running("web")
		for _, tk := range live {
			if tk.NodeID == victim.ID() {
				return false
			}
		}
		return slotsCovered(live, 4)
	})
}

// runThenLoseANode creates the service web of n replicas, waits for them to run, then
// takes node-0001 away and waits until its tasks run elsewhere; it returns that node.
func (s *sim) runThenLoseANode(n int) *simnode.Node {
	s.t.Helper()
	if _, err := s.o.CreateService(s.ctx, webSpec(n)); err != nil {
		s.t.Fatal(err)
	}
	s.waitFor(fmt.Sprintf("%d running", n), func() bool { return slotsCovered(s.running("web"), n) })
	victim := s.cluster.Node("node-0001")
	victim.Disconnect()
	s.waitFor("tasks moved off the down node", func() bool {
		live := s.running("web")
		for _, tk := range live {
			if tk.NodeID == victim.ID() {
				return false
			}
		}
		return slotsCovered(live, n)
	})
	return victim
}

// Most of the nodes silent at once are held as they are (WithMassSilence): none is
// disconnected or down, nothing is replaced, however long it lasts. When enough come back,
// those still silent are judged as always: down, their tasks moved.
func TestMassSilenceHoldsNodes(t *testing.T) {
	s := newSim(t, 12)
	if _, err := s.o.CreateService(s.ctx, webSpec(24)); err != nil {
		t.Fatal(err)
	}
	s.waitFor("24 running", func() bool { return slotsCovered(s.running("web"), 24) })
	total := len(s.tasks(orchestrator.TaskFilter{ServiceID: "web"}))
	nodes := s.cluster.Nodes()
	for _, n := range nodes[:8] { // 8 of 12: over 0.55
		n.Disconnect()
	}
	s.settle(3 * (simTimeout + simGrace))
	ns, err := s.o.Nodes(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if n.Status.State != dao.NodeReady {
			t.Errorf("node %s is %s while 8 of 12 are silent, want held ready", n.ID, n.Status.State)
		}
	}
	if n := len(s.tasks(orchestrator.TaskFilter{ServiceID: "web"})); n != total {
		t.Fatalf("%d tasks while 8 of 12 nodes are silent, want %d (nothing replaced):\n%s", n, total, s.dump())
	}
	for _, n := range nodes[:6] { // 2 of 12 still silent: judged as always
		n.Up()
	}
	s.waitFor("the two still silent nodes down, their tasks elsewhere", func() bool {
		down := s.nodesIn(dao.NodeDown)
		live := s.running("web")
		for _, tk := range live {
			if tk.NodeID == nodes[6].ID() || tk.NodeID == nodes[7].ID() {
				return false
			}
		}
		return down == 2 && slotsCovered(live, 24)
	})
}

// With WithMassSilence(0), every silent node goes down as it would alone.
func TestMassSilenceOff(t *testing.T) {
	s := newSimWith(t, simConfig{nodes: 12, opts: []orchestrator.Option{orchestrator.WithMassSilence(0)}})
	if _, err := s.o.CreateService(s.ctx, webSpec(12)); err != nil {
		t.Fatal(err)
	}
	s.waitFor("12 running", func() bool { return slotsCovered(s.running("web"), 12) })
	for _, n := range s.cluster.Nodes()[:8] {
		n.Disconnect()
	}
	s.waitFor("8 nodes down", func() bool {
		return s.nodesIn(dao.NodeDown) == 8
	})
}

// nodesIn counts the nodes the store has in state.
func (s *sim) nodesIn(state dao.NodeState) int {
	ns, err := s.o.Nodes(s.ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	n := 0
	for _, nd := range ns {
		if nd.Status.State == state {
			n++
		}
	}
	return n
}
