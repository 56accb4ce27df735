package orchestrator_test

import (
	"bytes"
	"errors"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/orchestrator/simnode"
)

// syncBuffer is a bytes.Buffer for a logger that several goroutines write to.
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

// debugLogger returns a logger that writes every level, and what it wrote.
func debugLogger() (*slog.Logger, *syncBuffer) {
	var b syncBuffer
	return slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})), &b
}

func (s *sim) service(id string) *orchestrator.Service {
	s.t.Helper()
	svc, err := s.o.Service(s.ctx, id)
	if err != nil {
		s.t.Fatal(err)
	}
	return svc
}

func (s *sim) updateState(id string) orchestrator.UpdateState {
	return s.service(id).UpdateStatus.State
}

// crashImage crashes, on their nodes, the running tasks of image that have run for at
// least after (as first seen by it), once each. It returns how many it has crashed.
type crasher struct {
	s     *sim
	image string
	after time.Duration
	fail  func(n *simnode.Node, tk dao.Task)
	seen  map[string]time.Time
	done  map[string]bool
}

func newCrasher(s *sim, image string, after time.Duration) *crasher {
	return &crasher{s: s, image: image, after: after, seen: map[string]time.Time{}, done: map[string]bool{},
		fail: func(n *simnode.Node, tk dao.Task) { _ = n.Crash(tk.ID, 1) }}
}

func (c *crasher) step() {
	now := c.s.clock.Now()
	for _, n := range c.s.cluster.Nodes() {
		for _, tk := range n.Tasks() {
			if c.done[tk.ID] || tk.Status.State != dao.TaskRunning || tk.Status.PID == 0 {
				continue
			}
			full, err := c.s.o.Task(c.s.ctx, tk.ID)
			if err != nil || full.Spec.Image != c.image {
				continue
			}
			at, ok := c.seen[tk.ID]
			if !ok {
				c.seen[tk.ID] = now
				at = now
			}
			if now.Sub(at) >= c.after {
				c.done[tk.ID] = true
				c.fail(n, tk)
			}
		}
	}
}

// slotsOf returns the slots of the service that ever had a task of image.
func (s *sim) slotsOf(service, image string) []int {
	var out []int
	for _, tk := range s.tasks(orchestrator.TaskFilter{ServiceID: service}) {
		if tk.Spec.Image == image && !slices.Contains(out, tk.Slot) {
			out = append(out, tk.Slot)
		}
	}
	slices.Sort(out)
	return out
}

// overlaps lists, for each slot (each node, for a global service) of the tasks given, the
// tasks that started before the task they replaced had ended.
func overlaps(ts []orchestrator.Task, global bool) []string {
	bySlot := map[string][]orchestrator.Task{}
	for _, tk := range ts {
		k := "slot " + strconv.Itoa(tk.Slot)
		if global {
			k = "node " + tk.NodeID
		}
		bySlot[k] = append(bySlot[k], tk)
	}
	var out []string
	for k, ts := range bySlot {
		slices.SortFunc(ts, func(a, b orchestrator.Task) int { return a.CreatedAt.Compare(b.CreatedAt) })
		for i := 1; i < len(ts); i++ {
			prev, next := ts[i-1], ts[i]
			if next.Status.StartedAt.IsZero() {
				continue
			}
			switch {
			case prev.Status.FinishedAt.IsZero() && !prev.Status.State.Terminal():
				out = append(out, k+": "+next.ID+" started while "+prev.ID+" still ran")
			case next.Status.StartedAt.Before(prev.Status.FinishedAt):
				out = append(out, k+": "+next.ID+" started "+prev.Status.FinishedAt.Sub(next.Status.StartedAt).String()+
					" before "+prev.ID+" ended")
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestStopFirstStartsTheNewTaskOnceTheOldEnded: with the default update order, and when a
// drain moves a task, a slot's new task starts only after its old one has stopped, on
// nodes that take a second to stop a task.
func TestStopFirstStartsTheNewTaskOnceTheOldEnded(t *testing.T) {
	s := newSimWith(t, simConfig{nodes: 2, nodeOpts: []simnode.Option{simnode.WithStopLatency(simnode.Fixed(time.Second))}})
	web := webSpec(3)
	web.Update = dao.UpdatePolicy{Parallelism: 1, Monitor: dao.Duration(500 * time.Millisecond)}
	agent := webSpec(0)
	agent.Name, agent.Mode, agent.Update = "agent", dao.ModeGlobal, web.Update
	for _, spec := range []dao.ServiceSpec{web, agent} {
		if _, err := s.o.CreateService(s.ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	s.waitFor("web and agent running", func() bool {
		return slotsCovered(s.running("web"), 3) && len(s.running("agent")) == 2
	})
	for _, spec := range []dao.ServiceSpec{web, agent} {
		spec.Container.Image = "example.com/web:2"
		if _, err := s.o.UpdateService(s.ctx, spec.Name, spec); err != nil {
			t.Fatal(err)
		}
	}
	s.waitFor("both updates completed", func() bool {
		return s.updateState("web") == orchestrator.UpdateCompleted && s.updateState("agent") == orchestrator.UpdateCompleted
	})
	for _, spec := range []dao.ServiceSpec{web, agent} {
		ts := s.tasks(orchestrator.TaskFilter{ServiceID: spec.Name})
		if o := overlaps(ts, spec.Mode == dao.ModeGlobal); len(o) > 0 {
			t.Errorf("%s: stop-first update ran a slot's old and new tasks at once:\n%s\n%s", spec.Name, strings.Join(o, "\n"), s.dump())
		}
		for _, tk := range s.running(spec.Name) {
			if tk.Spec.Image != "example.com/web:2" {
				t.Errorf("%s: task %s runs %s after the update", spec.Name, tk.ID, tk.Spec.Image)
			}
		}
	}

	// A drain moves web's tasks off node-0001, each once it has stopped there.
	if err := s.o.DrainNode(s.ctx, "node-0001"); err != nil {
		t.Fatal(err)
	}
	s.waitFor("web off the drained node", func() bool {
		live := s.running("web")
		for _, tk := range live {
			if tk.NodeID == "node-0001" {
				return false
			}
		}
		return slotsCovered(live, 3)
	})
	if o := overlaps(s.tasks(orchestrator.TaskFilter{ServiceID: "web"}), false); len(o) > 0 {
		t.Errorf("a drain ran a slot's old and new tasks at once:\n%s\n%s", strings.Join(o, "\n"), s.dump())
	}
}

// TestUpdateBatchWaitsForItsMonitorWindow: with Parallelism 1 and no Delay, each batch
// must run for the whole monitor window before the next starts, so that an image whose
// tasks fail a second after they run reaches one slot only before the rollback; and a
// healthy rollout takes a monitor window per batch.
func TestUpdateBatchWaitsForItsMonitorWindow(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(s *sim, n *simnode.Node, tk dao.Task)
	}{
		{"the container crashes", func(s *sim, n *simnode.Node, tk dao.Task) { _ = n.Crash(tk.ID, 1) }},
		{"the node reports it restarting", func(s *sim, n *simnode.Node, tk dao.Task) {
			st := tk.Status
			st.Restarting, st.NextRestartAt, st.PID = true, s.clock.Now().Add(time.Second), 0
			st.Timestamp = s.clock.Now()
			s.o.ReportStatus(n.ID(), orchestrator.TaskUpdate{TaskID: tk.ID, Status: st})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const monitor = 2 * time.Second
			s := newSim(t, 3)
			spec := webSpec(3)
			spec.Update = dao.UpdatePolicy{Parallelism: 1, Monitor: dao.Duration(monitor), FailureAction: dao.ActionRollback}
			if _, err := s.o.CreateService(s.ctx, spec); err != nil {
				t.Fatal(err)
			}
			s.waitFor("3 running", func() bool { return slotsCovered(s.running("web"), 3) })

			good := spec
			good.Container.Image = "example.com/web:2"
			if _, err := s.o.UpdateService(s.ctx, "web", good); err != nil {
				t.Fatal(err)
			}
			took := s.waitFor("healthy update completed", func() bool { return s.updateState("web") == orchestrator.UpdateCompleted })
			// Three batches, each through its window (and about 200ms of starting).
			if took < 3*monitor || took > 3*(monitor+time.Second) {
				t.Errorf("a healthy 3-task rollout with a %s monitor window took %s, want 3 windows and a little", monitor, took)
			}
			t.Logf("healthy 3-task rollout, Parallelism 1, monitor %s: %s simulated", monitor, took)

			bad := good
			bad.Container.Image = "example.com/web:3-broken"
			if _, err := s.o.UpdateService(s.ctx, "web", bad); err != nil {
				t.Fatal(err)
			}
			c := newCrasher(s, bad.Container.Image, time.Second)
			c.fail = func(n *simnode.Node, tk dao.Task) { tc.fail(s, n, tk) }
			s.waitFor("rolled back", func() bool {
				c.step()
				return s.updateState("web") == orchestrator.UpdateRolledBack
			})
			if got := s.slotsOf("web", bad.Container.Image); len(got) != 1 {
				t.Errorf("slots that got the failing version: %v, want one:\n%s", got, s.dump())
			}
			live := s.running("web")
			if !slotsCovered(live, 3) {
				t.Fatalf("slots after the rollback:\n%s", s.dump())
			}
			for _, tk := range live {
				if tk.Spec.Image != good.Container.Image {
					t.Errorf("task %s runs %s after the rollback", tk.ID, tk.Spec.Image)
				}
			}
		})
	}
}

// TestDeployReturnsOnceTheRollbackFinished: Deploy of an image whose tasks crash returns
// once the rollback has finished, with an error that says so; one whose update pauses
// says that; and a scale while an update runs does not end Deploy.
func TestDeployReturnsOnceTheRollbackFinished(t *testing.T) {
	s := newSim(t, 3)
	spec := webSpec(3)
	spec.Update = dao.UpdatePolicy{Parallelism: 1, Monitor: dao.Duration(time.Second), FailureAction: dao.ActionRollback}
	if _, err := s.o.CreateService(s.ctx, spec); err != nil {
		t.Fatal(err)
	}
	s.waitFor("3 running", func() bool { return slotsCovered(s.running("web"), 3) })
	deploy := func(image string, during func()) error {
		done := make(chan error, 1)
		go func() { done <- s.o.Deploy(s.ctx, "web", image) }()
		var err error
		s.waitFor("Deploy "+image, func() bool {
			if during != nil {
				during()
			}
			select {
			case err = <-done:
				return true
			default:
				return false
			}
		})
		return err
	}

	// A scale while the update runs: Deploy still waits for it, and succeeds.
	scaled := false
	err := deploy("example.com/web:2", func() {
		if !scaled && len(s.slotsOf("web", "example.com/web:2")) == 1 {
			scaled = true
			if _, err := s.o.ScaleService(s.ctx, "web", 4); err != nil {
				t.Error(err)
			}
		}
	})
	if err != nil || !scaled {
		t.Errorf("Deploy web:2 with a scale during the update: %v (scaled %v)", err, scaled)
		s.waitFor("the update to web:2 completed", func() bool { return s.updateState("web") == orchestrator.UpdateCompleted })
	}
	if st := s.updateState("web"); st != orchestrator.UpdateCompleted {
		t.Errorf("update state %s once Deploy returned, want completed", st)
	}

	// A crashing image: Deploy returns once the rollback has finished.
	c := newCrasher(s, "example.com/web:3-broken", 0)
	err = deploy("example.com/web:3-broken", c.step)
	svc := s.service("web")
	if svc.UpdateStatus.State != orchestrator.UpdateRolledBack {
		t.Errorf("Deploy returned with the service %s (%s), want it rolled back", svc.UpdateStatus.State, svc.UpdateStatus.Message)
	}
	live := s.running("web")
	if !slotsCovered(live, 4) {
		t.Errorf("Deploy returned before the rollback replaced the failed tasks:\n%s", s.dump())
	}
	for _, tk := range live {
		if tk.Spec.Image != "example.com/web:2" {
			t.Errorf("task %s runs %s once Deploy returned", tk.ID, tk.Spec.Image)
		}
	}
	var ue *orchestrator.UpdateError
	switch {
	case !errors.Is(err, orchestrator.ErrUpdateFailed) || !errors.Is(err, orchestrator.ErrRolledBack) ||
		errors.Is(err, orchestrator.ErrUpdatePaused):
		t.Errorf("Deploy of a crashing image: %v, want ErrUpdateFailed and ErrRolledBack", err)
	case !errors.As(err, &ue):
		t.Errorf("Deploy of a crashing image: %T, want *UpdateError", err)
	case ue.State != orchestrator.UpdateRolledBack || !strings.Contains(ue.Reason, "failed within") ||
		ue.Image != "example.com/web:3-broken" || ue.Service != "web":
		t.Errorf("UpdateError %+v: want rolled back, with why", *ue)
	}
	t.Logf("Deploy of a crashing image: %v", err)

	// An update that pauses: Deploy says so.
	pausing := s.service("web").Spec
	pausing.Update.FailureAction = dao.ActionPause
	if _, err := s.o.UpdateService(s.ctx, "web", pausing); err != nil {
		t.Fatal(err)
	}
	s.waitFor("policy changed", func() bool { return s.updateState("web") == orchestrator.UpdateCompleted })
	c = newCrasher(s, "example.com/web:4-broken", 0)
	err = deploy("example.com/web:4-broken", c.step)
	if !errors.Is(err, orchestrator.ErrUpdatePaused) || !errors.Is(err, orchestrator.ErrUpdateFailed) ||
		errors.Is(err, orchestrator.ErrRolledBack) || !errors.As(err, &ue) || ue.State != orchestrator.UpdatePaused {
		t.Errorf("Deploy of an update that pauses: %v, want ErrUpdatePaused", err)
	}
	if st := s.updateState("web"); st != orchestrator.UpdatePaused {
		t.Errorf("update state %s, want paused", st)
	}
}

// TestBadStoredObjectsAreSkipped writes what no API call admits straight into a store (a
// memory store, and a bbolt file opened again as after a restart), then runs the
// orchestrator: it keeps running, serves the good service, reports and skips the bad
// services, and ends the bad tasks.
func TestBadStoredObjectsAreSkipped(t *testing.T) {
	ok := func(name string, replicas int) dao.ServiceSpec {
		s := webSpec(replicas)
		s.Name = name
		return s
	}
	var bad []orchestrator.Service
	add := func(id string, change func(*orchestrator.Service)) {
		s := orchestrator.Service{ID: id, Spec: ok(id, 2)}
		change(&s)
		bad = append(bad, s)
	}
	add("huge", func(s *orchestrator.Service) { s.Spec.Replicas = 1_000_000_000 })
	add("maxint", func(s *orchestrator.Service) { s.Spec.Replicas = math.MaxInt })
	add("negative", func(s *orchestrator.Service) { s.Spec.Replicas = -5 })
	add("sideways", func(s *orchestrator.Service) { s.Spec.Mode = "sideways" })
	add("globalreplicas", func(s *orchestrator.Service) { s.Spec.Mode = dao.ModeGlobal; s.Spec.Replicas = 3 })
	add("noimage", func(s *orchestrator.Service) { s.Spec.Container.Image = "" })
	add("nonsense-update", func(s *orchestrator.Service) {
		// An update in progress with no previous spec, a negative parallelism and delay.
		s.UpdateStatus = orchestrator.UpdateStatus{State: orchestrator.UpdateInProgress}
		s.Spec.Update = dao.UpdatePolicy{Parallelism: -3, Delay: -1}
	})
	good := ok("good", 3)
	// A service in an update state that is none runs, its update paused.
	exploding := orchestrator.Service{ID: "exploding", Spec: ok("exploding", 1),
		UpdateStatus: orchestrator.UpdateStatus{State: "exploding"}}
	// A service whose previous spec is bad runs: only a rollback would read it.
	prevBad := orchestrator.Service{ID: "prevbad", Spec: ok("prevbad", 1)}
	prev := ok("prevbad", -1)
	prevBad.PreviousSpec = &prev

	writeServices := func(t *testing.T, store orchestrator.Store) {
		err := store.Update(t.Context(), "test: bad services", func(tx orchestrator.Tx) error {
			for i := range bad {
				if err := tx.CreateService(&bad[i]); err != nil {
					return err
				}
			}
			if err := tx.CreateService(&prevBad); err != nil {
				return err
			}
			if err := tx.CreateService(&exploding); err != nil {
				return err
			}
			return tx.CreateService(&orchestrator.Service{ID: "good", Spec: good})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	badSpec := good.Container
	badSpec.Image = ""
	badSpec.Resources.Memory = -1
	task := func(id string, slot int, node string, change func(*dao.Task)) *orchestrator.Task {
		tk := &orchestrator.Task{Task: dao.Task{ID: id, ServiceID: "good", ServiceVersion: 1, Slot: slot, NodeID: node,
			Spec: good.Container, DesiredState: dao.TaskRunning, Status: dao.TaskStatus{State: dao.TaskAssigned},
			CreatedAt: time.Unix(1_700_000_000, 0)}}
		change(&tk.Task)
		return tk
	}

	for _, kind := range []string{"memory", "bolt"} {
		t.Run(kind, func(t *testing.T) {
			var store orchestrator.Store
			// Tasks a node refuses: a spec that fails Validate; and, for the memory store
			// only (bbolt does not encode them), undefined states.
			tasks := []*orchestrator.Task{task("good.3.badspec", 3, "node-0002", func(tk *dao.Task) { tk.Spec = badSpec })}
			if kind == "memory" {
				m, err := orchestrator.NewMemoryStore()
				if err != nil {
					t.Fatal(err)
				}
				writeServices(t, m)
				store = m
				tasks = append(tasks,
					task("good.1.badstate", 1, "node-0001", func(tk *dao.Task) { tk.Status.State = 42 }),
					task("good.2.baddesired", 2, "node-0002", func(tk *dao.Task) { tk.DesiredState = 99 }))
			} else {
				path := filepath.Join(t.TempDir(), "state.db")
				b, err := orchestrator.OpenBoltStore(path)
				if err != nil {
					t.Fatal(err)
				}
				writeServices(t, b)
				if err := b.Close(); err != nil {
					t.Fatal(err)
				}
				// As after a restart of the program: the control plane starts on the file.
				if store, err = orchestrator.OpenBoltStore(path); err != nil {
					t.Fatal(err)
				}
			}
			logger, logs := debugLogger()
			s := newSimWith(t, simConfig{nodes: 2, store: store, opts: []orchestrator.Option{orchestrator.WithLogger(logger)},
				beforeRun: func(s *sim) {
					err := s.store.Update(s.ctx, "test: bad tasks", func(tx orchestrator.Tx) error {
						for _, tk := range tasks {
							if err := tx.CreateTask(tk); err != nil {
								return err
							}
						}
						return nil
					})
					if err != nil {
						t.Fatal(err)
					}
				}})
			s.waitFor("good, prevbad and exploding running", func() bool {
				return slotsCovered(s.running("good"), 3) && slotsCovered(s.running("prevbad"), 1) &&
					slotsCovered(s.running("exploding"), 1)
			})
			if st := s.service("exploding").UpdateStatus; st.State != orchestrator.UpdatePaused || !strings.Contains(st.Message, "invalid stored update state") {
				t.Errorf("service in an undefined update state: %+v, want paused with why", st)
			}
			s.waitFor("every bad service reported", func() bool {
				for _, b := range bad {
					st := s.service(b.ID).UpdateStatus
					if st.State != orchestrator.UpdatePaused || !strings.Contains(st.Message, "invalid stored service") {
						return false
					}
				}
				return true
			})
			for _, b := range bad {
				if n := len(s.tasks(orchestrator.TaskFilter{ServiceID: b.ID})); n != 0 {
					t.Errorf("bad service %s has %d tasks", b.ID, n)
				}
				if !strings.Contains(logs.String(), "service="+b.ID) {
					t.Errorf("no warning names bad service %s", b.ID)
				}
			}
			t.Logf("huge: %s", s.service("huge").UpdateStatus.Message)
			for _, tk := range tasks {
				got, err := s.o.Task(s.ctx, tk.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.Status.State != dao.TaskOrphaned || !(strings.Contains(got.Status.Message, "invalid stored task") ||
					strings.Contains(got.Status.Message, "refused by node")) {
					t.Errorf("bad task %s: %s %q, want it ended with why", tk.ID, got.Status.State, got.Status.Message)
				}
			}
			if s.updateState("good") != "" {
				t.Errorf("good service: update state %q", s.updateState("good"))
			}
		})
	}
}

// TestDecisionsAreLoggedAtDebug runs a rollout that rolls back and a node that goes down
// with a Debug logger: every kind of decision is in the log.
func TestDecisionsAreLoggedAtDebug(t *testing.T) {
	logger, logs := debugLogger()
	s := newSimWith(t, simConfig{nodes: 3, opts: []orchestrator.Option{orchestrator.WithLogger(logger)},
		nodeOpts: []simnode.Option{simnode.WithStopLatency(simnode.Fixed(300 * time.Millisecond))}})
	spec := webSpec(3)
	spec.Update = dao.UpdatePolicy{Parallelism: 1, Monitor: dao.Duration(time.Second), FailureAction: dao.ActionRollback}
	if _, err := s.o.CreateService(s.ctx, spec); err != nil {
		t.Fatal(err)
	}
	big := webSpec(1)
	big.Name = "big"
	big.Container.Resources.MilliCPU = 1_000_000
	if _, err := s.o.CreateService(s.ctx, big); err != nil {
		t.Fatal(err)
	}
	s.waitFor("3 running", func() bool { return slotsCovered(s.running("web"), 3) })
	bad := spec
	bad.Container.Image = "example.com/web:2-broken"
	if _, err := s.o.UpdateService(s.ctx, "web", bad); err != nil {
		t.Fatal(err)
	}
	c := newCrasher(s, bad.Container.Image, 200*time.Millisecond)
	s.waitFor("rolled back", func() bool { c.step(); return s.updateState("web") == orchestrator.UpdateRolledBack })
	s.cluster.Node("node-0001").Down()
	s.waitFor("node-0001 down, its tasks replaced", func() bool {
		ns, _ := s.o.Nodes(s.ctx)
		for _, tk := range s.running("web") {
			if tk.NodeID == "node-0001" {
				return false
			}
		}
		return ns[0].Status.State == dao.NodeDown && slotsCovered(s.running("web"), 3)
	})
	out := logs.String()
	for _, want := range []string{
		"level=DEBUG",
		"placed on node",                      // placement
		"unschedulable",                       // refusal
		"updater: update web: stopping slot",  // batch start
		"waits: ",                             // gate wait
		"updater: rollback web: ",             // rollback
		"updater: rollback web to version",    // completion
		"liveness: node node-0001 down",       // node down
		"replaced: task",                      // task replaced
		"dispatcher: node node-0002 assigned", // assignment
		"reconciler: web: created tasks for",  // creation
		"task web.1.", "waits for task web.",  // stop-first wait
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the debug log has no %q", want)
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", out)
	}
}
