package orchestrator

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opendao/dao"
)

// The scheduling loop's work is a function of a read transaction: the live tasks on no
// node, by service version, but for those written after the scheduler's view of the
// nodes while that view is behind.
func TestPendingTasksOfASnapshot(t *testing.T) {
	t.Parallel()
	web, api := testService("web", 3), testService("api", 1)
	pendingTask := func(svc *Service, slot int) *Task { return newTask(svc, slot, "", reconcileNow) }
	var firstRev uint64
	f := newReconcileFixture(t, func(tx Tx) error {
		for _, s := range []*Service{web, api} {
			if err := tx.CreateService(s); err != nil {
				return err
			}
		}
		if err := tx.CreateNode(testNode("n1", dao.Active)); err != nil {
			return err
		}
		stopped := pendingTask(web, 2)
		stopped.DesiredState = dao.TaskShutdown
		undefined := pendingTask(web, 3)
		undefined.Status.State = dao.TaskState(99)
		for _, tk := range []*Task{pendingTask(web, 1), stopped, undefined, runningTask(api, 1, "n1")} {
			if err := tx.CreateTask(tk); err != nil {
				return err
			}
		}
		firstRev = tx.Revision() + 1
		return nil
	})
	late := pendingTask(api, 2)
	if err := f.store.Update(context.Background(), "test", func(tx Tx) error { return tx.CreateTask(late) }); err != nil {
		t.Fatal(err)
	}
	slotsBy := func(p pending) map[string][]int {
		out := map[string][]int{}
		for k, ts := range p.groups {
			for _, tk := range ts {
				out[k.svc] = append(out[k.svc], tk.Slot)
			}
			slices.Sort(out[k.svc])
		}
		return out
	}
	var caughtUp, behind pending
	_ = f.store.View(context.Background(), func(tx ReadTx) error {
		caughtUp = pendingTasks(tx, firstRev, false)
		behind = pendingTasks(tx, firstRev, true)
		return nil
	})
	if diff := cmp.Diff(map[string][]int{"web": {1}, "api": {2}}, slotsBy(caughtUp)); diff != "" || caughtUp.deferred {
		t.Errorf("view caught up: deferred %t, pending slots (-want +got):\n%s", caughtUp.deferred, diff)
	}
	if diff := cmp.Diff(map[string][]int{"web": {1}}, slotsBy(behind)); diff != "" || !behind.deferred {
		t.Errorf("view behind: deferred %t (want true), pending slots (-want +got):\n%s", behind.deferred, diff)
	}
	if behind.specs["web"] == nil || behind.specs["web"].Spec.Container.Image != "example.com/web:1" {
		t.Errorf("spec of web: %v, want the stored service", behind.specs["web"])
	}
}
