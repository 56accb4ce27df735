package orchestrator

import (
	"context"
	"slices"
	"strings"

	"github.com/opendao/dao"
)

// dispatch sends their assignment to the nodes marked since the last pass, one Assign per
// node however many of its tasks changed. An assignment is built on demand from the store
// (nothing of it is kept in memory): every task on the node that has not ended, with its
// desired state (so a task being shut down is in it with DesiredState shutdown until the
// node reports it ended; ended tasks are left out, and the node removes what is left of
// them). Its revision is the store revision it was read at, which is at least that of the
// latest change of the node's tasks, and goes up across restarts of a store that keeps its
// data; its epoch is the store's ID, so that a node takes the assignments of a store that
// started over (an in-memory one after a restart) in spite of their lower revisions. Assign is called with no lock held; an agent that fails is tried again on its next
// heartbeat.
func (o *Orchestrator) dispatch(ctx context.Context) {
	o.mu.Lock()
	type target struct {
		id    string
		agent NodeAgent
		size  int // of its last assignment: the next one is about as long
	}
	var targets []target
	for id := range o.dirtyNodes {
		c := o.nodes[id]
		if c == nil || c.agent == nil {
			delete(o.dirtyNodes, id) // sent when the node is added
			continue
		}
		if c.state == dao.NodeDown || c.state == dao.NodeDisconnected {
			c.failed = true // sent when it beats again
			delete(o.dirtyNodes, id)
			continue
		}
		targets = append(targets, target{id, c.agent, c.assigned})
		delete(o.dirtyNodes, id)
	}
	o.mu.Unlock()
	slices.SortFunc(targets, func(a, b target) int { return strings.Compare(a.id, b.id) })
	for _, tg := range targets {
		a := Assignment{Epoch: o.store.ID(), Tasks: make([]dao.Task, 0, tg.size+tg.size/8)}
		err := o.store.View(ctx, func(tx ReadTx) error {
			a.Revision = tx.Revision()
			for t := range tx.TasksByNode(tg.id) {
				if !t.Status.State.Terminal() {
					a.Tasks = append(a.Tasks, t.Task)
				}
			}
			return nil
		})
		if err == nil {
			slices.SortFunc(a.Tasks, func(x, y dao.Task) int { return strings.Compare(x.ID, y.ID) })
			err = tg.agent.Assign(a)
		}
		o.mu.Lock()
		if c := o.nodes[tg.id]; c != nil && c.agent == tg.agent {
			c.failed = err != nil
			c.assigned = len(a.Tasks)
		}
		o.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			o.opts.log.Warn("orchestrator: assign", "node", tg.id, "revision", a.Revision, "err", err)
		}
	}
}
