package orchestrator

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opendao/dao"
)

// The dispatcher's assignment of a node is a function of a read transaction: the node's
// tasks that have not ended, but for those no node would take.
func TestAssignmentOfANode(t *testing.T) {
	t.Parallel()
	svc := testService("web", 5)
	var refusedRev uint64
	f := newReconcileFixture(t, func(tx Tx) error {
		if err := tx.CreateService(svc); err != nil {
			return err
		}
		for _, n := range []*Node{testNode("n1", dao.Active), testNode("n2", dao.Active)} {
			if err := tx.CreateNode(n); err != nil {
				return err
			}
		}
		stopping := runningTask(svc, 2, "n1")
		stopping.DesiredState = dao.TaskShutdown
		ended := runningTask(svc, 3, "n1")
		ended.Status.State = dao.TaskFailed
		undefined := runningTask(svc, 4, "n1")
		undefined.Status.State = dao.TaskState(99)
		for _, tk := range []*Task{runningTask(svc, 1, "n1"), stopping, ended, undefined,
			runningTask(svc, 5, "n1"), runningTask(svc, 6, "n2")} {
			if err := tx.CreateTask(tk); err != nil {
				return err
			}
		}
		refusedRev = tx.Revision() + 1
		return nil
	})
	// web.5, as n1 refused it at its stored revision.
	refused := map[string]refusal{"web.5": {revision: refusedRev, why: "invalid"}}
	var a Assignment
	_ = f.store.View(context.Background(), func(tx ReadTx) error {
		a = assignmentOf(tx, "n1", "epoch-1", refused, 4)
		if a.Revision != tx.Revision() {
			t.Errorf("revision %d, want the transaction's %d", a.Revision, tx.Revision())
		}
		return nil
	})
	var ids []string
	for _, tk := range a.Tasks {
		ids = append(ids, tk.ID)
	}
	slices.SortFunc(ids, strings.Compare)
	// web.2 is in it, on its way out; web.3 ended; web.4 is in no state; web.5 was
	// refused; web.6 is on n2.
	if diff := cmp.Diff([]string{"web.1", "web.2"}, ids); diff != "" {
		t.Errorf("tasks of n1 (-want +got):\n%s", diff)
	}
	if a.Epoch != "epoch-1" {
		t.Errorf("epoch %q, want epoch-1", a.Epoch)
	}
}
