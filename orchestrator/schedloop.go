package orchestrator

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/opendao/dao"
)

// groupKey names a group of identical pending tasks: one service version.
type groupKey struct {
	svc string
	ver uint64
}

// pending is what the scheduling loop has to place, as pendingTasks reads it.
type pending struct {
	// groups holds the tasks to place, by service version; specs the services they are
	// of (those the store has).
	groups map[groupKey][]*Task
	specs  map[string]*Service
	// deferred is set when some tasks wait for the pass after (see pendingTasks).
	deferred bool
}

// pendingTasks reads the tasks to place from a read transaction: those on no node that
// are wanted running and in a defined state. While the scheduler's view of the nodes is
// behind the store's (nodesBehind: a node write it has not taken in yet), tasks written
// after the last revision it took in (observed) wait for the pass after: placed now, they
// could miss a node added before them.
func pendingTasks(tx ReadTx, observed uint64, nodesBehind bool) pending {
	p := pending{groups: map[groupKey][]*Task{}, specs: map[string]*Service{}}
	for t := range tx.TasksByNode("") {
		if !live(&t.Task) || badTask(&t.Task) != "" {
			continue // ended, or for the reconciler to end
		}
		if nodesBehind && t.Revision > observed {
			// Its event is on its way; place it in the pass after.
			p.deferred = true
			continue
		}
		k := groupKey{t.ServiceID, t.ServiceVersion}
		p.groups[k] = append(p.groups[k], &t)
		if _, ok := p.specs[t.ServiceID]; !ok && t.ServiceID != "" {
			if s, err := tx.Service(t.ServiceID); err == nil {
				p.specs[t.ServiceID] = &s
			}
		}
	}
	return p
}

// schedule places the pending tasks: those on no node that are wanted running. It groups
// them by service version, places each group with the scheduler, and writes the placed
// tasks (NodeID, state assigned) in one transaction, and the refusals of the others (the
// placement error's summary in Status.Message) in another. It runs when tasks became
// pending, or when the cluster changed so that a refused task may fit now (a node was
// added or changed, a task ended or was removed): never on a timer.
func (o *Orchestrator) schedule(ctx context.Context) error {
	o.mu.Lock()
	observed := o.observed
	o.mu.Unlock()
	// Only while a node write is not taken in yet can the scheduler's nodes be behind.
	nodesBehind := o.nodeWritten.Load() > observed
	var pend pending
	err := o.store.View(withSharedReads(ctx), func(tx ReadTx) error {
		pend = pendingTasks(tx, observed, nodesBehind)
		return nil
	})
	groups, specs, deferred := pend.groups, pend.specs, pend.deferred
	if deferred {
		o.mu.Lock()
		o.pendingWork = true
		o.mu.Unlock()
	}
	if err != nil || len(groups) == 0 {
		return err
	}
	keys := make([]groupKey, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b groupKey) int {
		return cmp.Or(strings.Compare(a.svc, b.svc), cmp.Compare(a.ver, b.ver))
	})
	var placed []*Task
	refused := map[string]string{} // task ID -> message
	revs := map[string]uint64{}
	placedBy := map[string]int{}
	for _, k := range keys {
		tasks := groups[k]
		slices.SortFunc(tasks, func(a, b *Task) int { return cmp.Compare(a.Slot, b.Slot) })
		var placement dao.Placement
		ver := k.ver
		if s := specs[k.svc]; s != nil {
			placement, ver = s.Spec.Placement, s.Version
		}
		p, err := o.sched.Placer(k.svc, ver, placement)
		if err != nil {
			for _, t := range tasks {
				refused[t.ID], revs[t.ID] = "unschedulable: "+err.Error(), t.Revision
			}
			continue
		}
		dts := make([]*dao.Task, len(tasks))
		for i, t := range tasks {
			dts[i] = &t.Task
		}
		for i, d := range o.sched.Place(p, dts) {
			t := tasks[i]
			if d.Err != nil {
				refused[t.ID], revs[t.ID] = "unschedulable: "+d.Err.Error(), t.Revision
				continue
			}
			t.NodeID = d.NodeID
			placed = append(placed, t)
			placedBy[k.svc]++
		}
	}
	if len(placed) > 0 {
		names := make([]string, 0, len(placedBy))
		for s, n := range placedBy {
			names = append(names, fmt.Sprintf("%s: %d", s, n))
		}
		slices.Sort(names)
		cause := fmt.Sprintf("scheduler: placed %d tasks (%s)", len(placed), strings.Join(names, ", "))
		if len(placed) == 1 {
			cause = fmt.Sprintf("scheduler: task %s placed on node %s", placed[0].ID, placed[0].NodeID)
		}
		now := o.opts.clock.Now()
		var skipped []*Task
		var err error
		// In transactions the store takes whole; each leaves a state like any other
		// (some of the tasks placed).
		for _, b := range batches(len(placed), txnLimit(o.store)) {
			part := placed[b[0]:b[1]]
			var last *Task
			var left []*Task
			err = o.store.Update(withSharedReads(ctx), cause, func(tx Tx) error {
				left = left[:0]
				for _, t := range part {
					cur, err := tx.Task(t.ID)
					if err != nil || cur.Revision != t.Revision || cur.NodeID != "" || !live(&cur.Task) {
						left = append(left, t) // changed since: decide again next time
						continue
					}
					cur.NodeID = t.NodeID
					cur.Status = dao.TaskStatus{State: dao.TaskAssigned, Message: "placed on node " + t.NodeID, Timestamp: now}
					if err := tx.UpdateTask(&cur); err != nil {
						return err
					}
					last = &cur
				}
				return nil
			})
			if err != nil {
				skipped = append(skipped, placed[b[0]:]...)
				break
			}
			skipped = append(skipped, left...)
			if last != nil {
				o.wrote(last.Revision) // the commit's revision, which the store set
			}
		}
		for _, t := range skipped {
			o.sched.Uncount(t.ID)
		}
		if o.debugEnabled() {
			o.opts.log.Debug(cause)
			left := make(map[*Task]bool, len(skipped))
			for _, t := range skipped {
				left[t] = true
			}
			for _, t := range placed {
				if !left[t] {
					o.opts.log.Debug(fmt.Sprintf("scheduler: task %s placed on node %s", t.ID, t.NodeID),
						"service", t.ServiceID, "task", t.ID, "node", t.NodeID)
				}
			}
		}
		if len(skipped) > 0 {
			o.mu.Lock()
			o.pendingWork = true
			o.mu.Unlock()
		}
		if err != nil {
			return err
		}
	}
	if len(refused) == 0 {
		return nil
	}
	ids := make([]string, 0, len(refused))
	for id := range refused {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	cause := fmt.Sprintf("scheduler: %d tasks unschedulable: %s", len(ids), refused[ids[0]])
	if len(ids) == 1 {
		cause = fmt.Sprintf("scheduler: task %s %s", ids[0], refused[ids[0]])
	}
	if o.debugEnabled() {
		for _, id := range ids {
			o.opts.log.Debug(fmt.Sprintf("scheduler: task %s %s", id, refused[id]), "task", id)
		}
	}
	for _, b := range batches(len(ids), txnLimit(o.store)) {
		err := o.store.Update(ctx, cause, func(tx Tx) error {
			for _, id := range ids[b[0]:b[1]] {
				cur, err := tx.Task(id)
				if err != nil || cur.Revision != revs[id] || cur.Status.Message == refused[id] {
					continue
				}
				cur.Status.Message = refused[id]
				cur.Status.Timestamp = o.opts.clock.Now()
				if err := tx.UpdateTask(&cur); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
