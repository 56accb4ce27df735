package orchestrator

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendao/dao"
	"github.com/opendao/dao/orchestrator/scheduler"
)

// The reconciler plans from a store's read transaction alone: these tests give it a
// snapshot and read its plan, with no Orchestrator, no loop and no write.

var reconcileNow = time.Unix(1_700_000_000, 0).UTC()

// reconcileFixture is a store holding the objects a test wrote, and a reconciler whose
// scheduler knows the store's nodes.
type reconcileFixture struct {
	store *MemoryStore
	rec   *reconciler
}

func newReconcileFixture(t *testing.T, write func(tx Tx) error) *reconcileFixture {
	t.Helper()
	s, err := NewMemoryStore()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Update(context.Background(), "test", write); err != nil {
		t.Fatal(err)
	}
	sched, err := scheduler.New()
	if err != nil {
		t.Fatal(err)
	}
	_ = s.View(context.Background(), func(tx ReadTx) error {
		for n := range tx.Nodes() {
			sched.SetNode(&n.Node)
		}
		return nil
	})
	o := defaultOptions()
	o.log = slog.New(slog.DiscardHandler)
	return &reconcileFixture{store: s, rec: newReconciler(&o, sched, map[string]refusal{})}
}

// plan plans the service and checks that planning wrote nothing.
func (f *reconcileFixture) plan(t *testing.T, id string) plan {
	t.Helper()
	var p plan
	var before, after uint64
	_ = f.store.View(context.Background(), func(tx ReadTx) error {
		before = tx.Revision()
		p = f.rec.plan(tx, id, reconcileNow)
		return nil
	})
	_ = f.store.View(context.Background(), func(tx ReadTx) error { after = tx.Revision(); return nil })
	if before != after {
		t.Errorf("planning changed the store's revision from %d to %d", before, after)
	}
	return p
}

func testService(id string, replicas int) *Service {
	return &Service{ID: id, Spec: dao.ServiceSpec{Name: id, Replicas: replicas,
		Container: dao.ContainerSpec{Image: "example.com/" + id + ":1"}}}
}

func testNode(id string, avail dao.Availability) *Node {
	r := dao.Resources{MilliCPU: 4000, Memory: 8 * dao.GiB}
	return &Node{Node: dao.Node{ID: id, Availability: avail, Capacity: r, Allocatable: r,
		Status: dao.NodeStatus{State: dao.NodeReady}}}
}

// runningTask is a task of svc's current spec in slot, running on node.
func runningTask(svc *Service, slot int, node string) *Task {
	t := newTask(svc, slot, "", reconcileNow.Add(-time.Minute))
	t.ID = svc.ID + "." + string(rune('0'+slot))
	t.NodeID = node
	t.Status = dao.TaskStatus{State: dao.TaskRunning, Timestamp: reconcileNow.Add(-time.Minute)}
	return t
}

func slotsOf(ts []*Task) []int {
	var out []int
	for _, t := range ts {
		out = append(out, t.Slot)
	}
	slices.Sort(out)
	return out
}

func TestReconcilerPlansFromASnapshot(t *testing.T) {
	t.Parallel()
	t.Run("new service: a task per slot", func(t *testing.T) {
		t.Parallel()
		f := newReconcileFixture(t, func(tx Tx) error { return tx.CreateService(testService("web", 3)) })
		p := f.plan(t, "web")
		if diff := cmp.Diff([]int{1, 2, 3}, slotsOf(p.creates)); diff != "" {
			t.Errorf("created slots (-want +got):\n%s", diff)
		}
		for _, tk := range p.creates {
			if tk.NodeID != "" || tk.Status.State != dao.TaskPending || tk.Spec.Image != "example.com/web:1" {
				t.Errorf("created %s: node %q, state %s, image %s; want pending, on no node, of the spec", tk.ID, tk.NodeID, tk.Status.State, tk.Spec.Image)
			}
		}
		if len(p.updates)+len(p.deletes) != 0 || p.svc != nil {
			t.Errorf("plan updates %d tasks, deletes %d, writes the service %t; want none", len(p.updates), len(p.deletes), p.svc != nil)
		}
		if got, want := p.cause("web"), "reconciler: web: created tasks for slot 1, slot 2, slot 3"; got != want {
			t.Errorf("cause %q, want %q", got, want)
		}
	})
	t.Run("scale down: the highest slot shut down", func(t *testing.T) {
		t.Parallel()
		svc := testService("web", 2)
		f := newReconcileFixture(t, func(tx Tx) error {
			if err := tx.CreateService(svc); err != nil {
				return err
			}
			if err := tx.CreateNode(testNode("n1", dao.Active)); err != nil {
				return err
			}
			for slot := 1; slot <= 3; slot++ {
				if err := tx.CreateTask(runningTask(svc, slot, "n1")); err != nil {
					return err
				}
			}
			return nil
		})
		p := f.plan(t, "web")
		if len(p.creates) != 0 || len(p.updates) != 1 || p.updates[0].Slot != 3 || p.updates[0].DesiredState != dao.TaskShutdown {
			t.Fatalf("plan creates %d, updates %v; want slot 3 shut down only", len(p.creates), slotsOf(p.updates))
		}
		if !strings.Contains(p.cause("web"), "scale down to 2") {
			t.Errorf("cause %q does not say why", p.cause("web"))
		}
	})
	t.Run("drained node: its task shut down, and the slot waits for it", func(t *testing.T) {
		t.Parallel()
		svc := testService("web", 1)
		f := newReconcileFixture(t, func(tx Tx) error {
			if err := tx.CreateService(svc); err != nil {
				return err
			}
			if err := tx.CreateNode(testNode("n1", dao.Drain)); err != nil {
				return err
			}
			return tx.CreateTask(runningTask(svc, 1, "n1"))
		})
		p := f.plan(t, "web")
		if len(p.creates) != 0 || len(p.updates) != 1 || p.updates[0].DesiredState != dao.TaskShutdown {
			t.Errorf("plan creates %d, updates %d; want the drained node's task shut down and no new one yet (stop-first)", len(p.creates), len(p.updates))
		}
	})
	t.Run("failed task: replaced after the delay", func(t *testing.T) {
		t.Parallel()
		svc := testService("web", 1)
		failed := runningTask(svc, 1, "n1")
		failed.Status = dao.TaskStatus{State: dao.TaskFailed, ExitCode: 1, Timestamp: reconcileNow.Add(-100 * time.Millisecond)}
		f := newReconcileFixture(t, func(tx Tx) error {
			if err := tx.CreateService(svc); err != nil {
				return err
			}
			if err := tx.CreateNode(testNode("n1", dao.Active)); err != nil {
				return err
			}
			return tx.CreateTask(failed)
		})
		p := f.plan(t, "web")
		if !p.empty() {
			t.Errorf("plan within the replace delay creates %d tasks; want it to wait", len(p.creates))
		}
		if want := failed.Status.Timestamp.Add(DefaultReplaceDelay); !p.wake.Equal(want) {
			t.Errorf("wake at %v, want %v (the end of the replace delay)", p.wake, want)
		}
		f.rec.replaceDelay = 0
		p = f.plan(t, "web")
		if len(p.creates) != 1 || p.creates[0].Slot != 1 || !strings.Contains(p.cause("web"), "replaced: task web.1 failed") {
			t.Errorf("plan after the delay: creates %v, cause %q; want slot 1 replaced", slotsOf(p.creates), p.cause("web"))
		}
	})
	t.Run("removed service: ended tasks deleted", func(t *testing.T) {
		t.Parallel()
		svc := testService("web", 2)
		ended := runningTask(svc, 1, "n1")
		ended.DesiredState = dao.TaskShutdown
		ended.Status.State = dao.TaskShutdown
		stopping := runningTask(svc, 2, "n1")
		stopping.DesiredState = dao.TaskShutdown
		f := newReconcileFixture(t, func(tx Tx) error {
			if err := tx.CreateNode(testNode("n1", dao.Active)); err != nil {
				return err
			}
			if err := tx.CreateTask(ended); err != nil {
				return err
			}
			return tx.CreateTask(stopping)
		})
		p := f.plan(t, "web")
		if len(p.deletes) != 1 || p.deletes[0].ID != ended.ID || len(p.creates)+len(p.updates) != 0 {
			t.Errorf("plan deletes %d, creates %d, updates %d; want the ended task deleted only", len(p.deletes), len(p.creates), len(p.updates))
		}
	})
	t.Run("global service: a task per eligible node", func(t *testing.T) {
		t.Parallel()
		svc := testService("agent", 0)
		svc.Spec.Mode = dao.ModeGlobal
		f := newReconcileFixture(t, func(tx Tx) error {
			if err := tx.CreateService(svc); err != nil {
				return err
			}
			for _, n := range []*Node{testNode("n1", dao.Active), testNode("n2", dao.Drain), testNode("n3", dao.Active)} {
				if err := tx.CreateNode(n); err != nil {
					return err
				}
			}
			return nil
		})
		p := f.plan(t, "agent")
		var nodes []string
		for _, tk := range p.creates {
			nodes = append(nodes, tk.NodeID)
		}
		slices.Sort(nodes)
		if diff := cmp.Diff([]string{"n1", "n3"}, nodes); diff != "" {
			t.Errorf("global tasks on nodes (-want +got):\n%s", diff)
		}
	})
	t.Run("rolling update: the first batch stopped", func(t *testing.T) {
		t.Parallel()
		svc := testService("web", 3)
		svc.Spec.Update = dao.UpdatePolicy{Parallelism: 1}
		f := newReconcileFixture(t, func(tx Tx) error {
			if err := tx.CreateService(svc); err != nil {
				return err
			}
			if err := tx.CreateNode(testNode("n1", dao.Active)); err != nil {
				return err
			}
			for slot := 1; slot <= 3; slot++ {
				if err := tx.CreateTask(runningTask(svc, slot, "n1")); err != nil {
					return err
				}
			}
			return nil
		})
		// The update, in a transaction of its own: a new image, as UpdateService writes it.
		err := f.store.Update(context.Background(), "test", func(tx Tx) error {
			cur, err := tx.Service("web")
			if err != nil {
				return err
			}
			prev := cur.Spec
			cur.PreviousSpec = &prev
			cur.Spec.Container.Image = "example.com/web:2"
			cur.UpdateStatus = UpdateStatus{State: UpdateInProgress, StartedAt: reconcileNow}
			return tx.UpdateService(&cur)
		})
		if err != nil {
			t.Fatal(err)
		}
		p := f.plan(t, "web")
		if len(p.creates) != 0 || len(p.updates) != 1 || p.updates[0].DesiredState != dao.TaskShutdown {
			t.Fatalf("plan creates %d, updates %d; want one old task stopped (stop-first, parallelism 1)", len(p.creates), len(p.updates))
		}
		if !strings.Contains(p.cause("web"), "updater: update web") {
			t.Errorf("cause %q, want the updater's", p.cause("web"))
		}
		if _, ok := f.rec.upd.rollouts["web"]; !ok {
			t.Error("the updater does not follow the update")
		}
	})
}

// A plan is deaf to the news that tasks started only when nothing it decided waits for a
// start: not during a rolling update, not while a slot hands over to a new task.
func TestReconcilerDeafToStartsOnlyWhenNothingWaits(t *testing.T) {
	steady := testService("steady", 2)
	rolling := testService("rolling", 2)
	rolling.UpdateStatus = UpdateStatus{State: UpdateInProgress, StartedAt: reconcileNow}
	handover := testService("handover", 1)
	second := runningTask(handover, 1, "n1")
	second.ID = "handover.new"
	second.Status = dao.TaskStatus{State: dao.TaskStarting, Timestamp: reconcileNow}
	f := newReconcileFixture(t, func(tx Tx) error {
		if err := tx.CreateNode(testNode("n1", dao.Active)); err != nil {
			return err
		}
		for _, s := range []*Service{steady, rolling, handover} {
			if err := tx.CreateService(s); err != nil {
				return err
			}
		}
		for _, tk := range []*Task{runningTask(steady, 1, "n1"), runningTask(steady, 2, "n1"),
			runningTask(rolling, 1, "n1"), runningTask(handover, 1, "n1"), second} {
			if err := tx.CreateTask(tk); err != nil {
				return err
			}
		}
		return nil
	})
	for id, want := range map[string]bool{"steady": true, "rolling": false, "handover": false, "gone": false} {
		if got := f.plan(t, id).deaf; got != want {
			t.Errorf("plan(%s).deaf = %v, want %v", id, got, want)
		}
	}
}
