package orchestrator

import (
	"context"
	"errors"
	"fmt"
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
// started over (an in-memory one after a restart) in spite of their lower revisions.
// Tasks no node would take are left out: those in undefined states (which the reconciler
// ends), and those a node refused as invalid (see assignValid). Assign is called with no
// lock held; an agent that fails is tried again on its next heartbeat.
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
		var a Assignment
		err := o.store.View(ctx, func(tx ReadTx) error {
			a = assignmentOf(tx, tg.id, o.store.ID(), o.refused, tg.size)
			return nil
		})
		if err == nil {
			// Sorted once the read is over, so that writers do not wait for it.
			slices.SortFunc(a.Tasks, func(x, y dao.Task) int { return strings.Compare(x.ID, y.ID) })
			err = tg.agent.Assign(a)
			if errors.Is(err, dao.ErrInvalid) {
				err = o.assignValid(ctx, tg.id, tg.agent, &a, err)
			}
		}
		if err == nil && o.debugEnabled() {
			o.opts.log.Debug(fmt.Sprintf("dispatcher: node %s assigned %d tasks at revision %d", tg.id, len(a.Tasks), a.Revision),
				"node", tg.id)
		}
		o.mu.Lock()
		if c := o.nodes[tg.id]; c != nil && c.agent == tg.agent {
			c.failed = err != nil
			c.assigned = len(a.Tasks)
			if err == nil {
				c.sent = a.Revision
			}
		}
		o.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			o.opts.log.Warn("orchestrator: assign", "node", tg.id, "revision", a.Revision, "err", err)
		}
	}
}

// assignmentOf returns the assignment of a node as the read transaction has it: every
// task on the node that has not ended, in the order the store yields them (the
// dispatcher sorts them by ID), at the transaction's revision, in the store's epoch. It leaves out the tasks no node would take: those in undefined
// states (which the reconciler ends) and those refused names at the revision a node
// refused them, since a node refuses a whole assignment for one task it cannot take.
// size is about how many tasks the node had last time, to size the list.
func assignmentOf(tx ReadTx, nodeID, epoch string, refused map[string]refusal, size int) Assignment {
	a := Assignment{Epoch: epoch, Revision: tx.Revision(), Tasks: make([]dao.Task, 0, size+size/8)}
	for t := range tx.TasksByNode(nodeID) {
		if t.Status.State.Terminal() {
			continue
		}
		if badTask(&t.Task) != "" || (len(refused) > 0 && refused[t.ID].revision == t.Revision) {
			continue
		}
		a.Tasks = append(a.Tasks, t.Task)
	}
	return a
}

// refusal is a stored task that a node would refuse: its revision, and why.
type refusal struct {
	revision uint64
	why      string
}

// assignValid is called when a node refused assignment a as invalid (err): it checks each
// task as the node does (dao.Task.Validate), leaves out those that fail, remembering them
// (by ID and revision) so that later assignments leave them out too and the reconciler
// ends them, and sends the rest.
// A stored task that no node would take (written by an older version, or by other code)
// must not keep a node from every other task it has. It returns the error of the second
// Assign, or err when every task is valid.
func (o *Orchestrator) assignValid(ctx context.Context, nodeID string, agent NodeAgent, a *Assignment, err error) error {
	valid := a.Tasks[:0:0]
	for i := range a.Tasks {
		t := &a.Tasks[i]
		if verr := t.Validate(); verr != nil {
			o.opts.log.Warn("orchestrator: invalid stored task left out of its node's assignment",
				"node", nodeID, "task", t.ID, "err", verr)
			o.refused[t.ID] = refusal{revision: o.taskRevision(ctx, t.ID), why: verr.Error()}
			if t.ServiceID != "" {
				// For the reconciler to end it, and fill its slot.
				o.mu.Lock()
				o.dirtySvc[t.ServiceID] = true
				o.mu.Unlock()
				o.poke()
			}
			continue
		}
		valid = append(valid, *t)
	}
	if len(valid) == len(a.Tasks) {
		return err
	}
	a.Tasks = valid
	return agent.Assign(*a)
}

// taskRevision returns the stored revision of a task, 0 when it has none.
func (o *Orchestrator) taskRevision(ctx context.Context, id string) uint64 {
	var rev uint64
	_ = o.store.View(ctx, func(tx ReadTx) error {
		t, err := tx.Task(id)
		rev = t.Revision
		return err
	})
	return rev
}
