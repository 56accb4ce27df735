package orchestrator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opendao/dao"
)

// plan is what one pass of the reconciler decided for one service: written in one
// transaction, whose cause joins the reasons.
type plan struct {
	svc     *Service
	creates []*Task
	updates []*Task
	deletes []*Task
	reasons []string
	// updated lists the new tasks of a rolling update, counted once the write succeeds.
	updated []string
}

func (p *plan) empty() bool {
	return p.svc == nil && len(p.creates)+len(p.updates)+len(p.deletes) == 0
}

func (p *plan) why(format string, args ...any) {
	p.reasons = append(p.reasons, fmt.Sprintf(format, args...))
}

// shutdown asks a task's node to stop it.
func (p *plan) shutdown(t *Task) {
	t.DesiredState = dao.TaskShutdown
	p.updates = append(p.updates, t)
}

func (p *plan) cause(serviceID string) string {
	const most = 4
	rs := p.reasons
	if len(rs) == 0 {
		return "reconciler: " + serviceID
	}
	s := strings.Join(rs[:min(len(rs), most)], "; ")
	if len(rs) > most {
		s += fmt.Sprintf("; and %d more", len(rs)-most)
	}
	return s
}

// reconcile brings one service's tasks in line with its spec: one task per slot (or per
// eligible node, for a global service), replacing those that ended, shutting down those
// beyond the replica count or on drained nodes, rolling out a new spec (see planUpdate),
// and, for a removed service, shutting every task down and deleting it once it ended.
// It reads in a View and writes in one transaction that names the revisions it read, so a
// concurrent change makes it fail with ErrConflict and the pass runs again.
func (o *Orchestrator) reconcile(ctx context.Context, id string) error {
	var p plan
	now := o.opts.clock.Now()
	err := o.store.View(ctx, func(tx ReadTx) error {
		p = o.plan(tx, id, now)
		return nil
	})
	if err != nil || p.empty() {
		return err
	}
	err = o.store.Update(ctx, p.cause(id), func(tx Tx) error {
		if p.svc != nil {
			if err := tx.UpdateService(p.svc); err != nil {
				return err
			}
		}
		for _, t := range p.creates {
			if err := tx.CreateTask(t); err != nil {
				return err
			}
		}
		for _, t := range p.updates {
			if err := tx.UpdateTask(t); err != nil {
				return err
			}
		}
		for _, t := range p.deletes {
			if err := tx.DeleteTask(t.ID, t.Revision); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if ro := o.rollouts[id]; ro != nil {
		for _, tid := range p.updated {
			ro.updated[tid] = &updatedTask{}
		}
	}
	return nil
}

// slotKey names what a task fills: its slot in a replicated service, its node in a global
// one.
func slotKey(global bool, t *dao.Task) string {
	if global {
		return "node " + t.NodeID
	}
	return "slot " + strconv.Itoa(t.Slot)
}

// current reports whether a task runs the service's current spec. Specs, not version
// numbers, are compared, so that a rollback (a new version with the old spec) leaves the
// tasks of the old spec where they are, and a scale changes no task.
func current(t *dao.Task, s *Service) bool {
	if t.ServiceVersion == s.Version {
		return true
	}
	return reflect.DeepEqual(t.Spec, s.Spec.Container) && reflect.DeepEqual(t.Restart, s.Spec.Restart)
}

func (o *Orchestrator) plan(tx ReadTx, id string, now time.Time) plan {
	var p plan
	var tasks []*Task
	for t := range tx.TasksByService(id) {
		tasks = append(tasks, &t)
	}
	svc, err := tx.Service(id)
	if err != nil {
		delete(o.rollouts, id)
		o.planRemoved(tx, id, tasks, &p)
		return p
	}
	global := svc.Spec.Mode == dao.ModeGlobal
	nodes := map[string]*Node{}
	node := func(id string) *Node {
		if n, ok := nodes[id]; ok {
			return n
		}
		n, err := tx.Node(id)
		if err != nil {
			nodes[id] = nil
			return nil
		}
		nodes[id] = &n
		return &n
	}

	liveBy := map[string][]*Task{}
	deadBy := map[string][]*Task{}
	for _, t := range tasks {
		k := slotKey(global, &t.Task)
		switch {
		case t.Status.State.Terminal():
			deadBy[k] = append(deadBy[k], t)
		case t.DesiredState > dao.TaskRunning:
			// On its way out.
		case t.NodeID != "" && node(t.NodeID) == nil:
			// Its node was removed without its tasks: nothing will report them.
			t.Status.State, t.Status.Message = dao.TaskOrphaned, "node "+t.NodeID+" removed"
			p.updates = append(p.updates, t)
			deadBy[k] = append(deadBy[k], t)
		case t.NodeID != "" && node(t.NodeID).Availability == dao.Drain:
			p.shutdown(t)
			p.why("reconciler: %s %s: task %s shut down: node %s drained", id, k, t.ID, t.NodeID)
		case !global && t.Slot > svc.Spec.Replicas:
			p.shutdown(t)
			p.why("reconciler: %s: scale down to %d: task %s (slot %d) shut down", id, svc.Spec.Replicas, t.ID, t.Slot)
		default:
			liveBy[k] = append(liveBy[k], t)
		}
	}

	// The slots (or nodes) the service wants.
	type want struct {
		key    string
		slot   int
		nodeID string
	}
	var wants []want
	if global {
		probe := &dao.Task{ServiceID: svc.ID, ServiceVersion: svc.Version, Spec: svc.Spec.Container, DesiredState: dao.TaskRunning}
		pipe, perr := o.sched.Pipeline(svc.ID, svc.Version, svc.Spec.Placement)
		for n := range tx.Nodes() {
			k := "node " + n.ID
			if n.Availability == dao.Drain {
				continue
			}
			if len(liveBy[k]) == 0 {
				ni := o.sched.Node(n.ID)
				if perr != nil || ni == nil || pipe.Filter(probe, ni) != nil {
					continue
				}
			}
			wants = append(wants, want{key: k, nodeID: n.ID})
		}
		slices.SortFunc(wants, func(a, b want) int { return strings.Compare(a.nodeID, b.nodeID) })
	} else {
		for s := 1; s <= svc.Spec.Replicas; s++ {
			wants = append(wants, want{key: "slot " + strconv.Itoa(s), slot: s})
		}
	}

	// Fill the empty slots; replace what ended.
	var created []string
	for _, w := range wants {
		if len(liveBy[w.key]) > 0 {
			continue
		}
		why := "created"
		if dead := newest(deadBy[w.key]); dead != nil {
			st := dead.Status
			if st.State == dao.TaskFailed || st.State == dao.TaskRejected {
				if at := st.Timestamp.Add(o.opts.replaceDelay); now.Before(at) {
					o.wakeAt(id, at)
					continue
				}
			}
			why = fmt.Sprintf("replaced: task %s %s", dead.ID, st.State)
			if d := cmp.Or(st.Err, st.Message); d != "" {
				why += ": " + d
			}
		}
		t := newTask(&svc, w.slot, w.nodeID, now)
		p.creates = append(p.creates, t)
		liveBy[w.key] = append(liveBy[w.key], t)
		if why == "created" {
			created = append(created, w.key)
		} else {
			p.why("reconciler: %s %s %s", id, w.key, why)
		}
	}
	if len(created) > 0 {
		p.why("reconciler: %s: %s", id, summarize("created tasks for", created))
	}
	wanted := map[string]bool{}
	for _, w := range wants {
		wanted[w.key] = true
	}
	// A global service's tasks on nodes it no longer wants (constraints changed).
	if global {
		for k, ts := range liveBy {
			if !wanted[k] {
				for _, t := range ts {
					p.shutdown(t)
					p.why("reconciler: %s %s: task %s shut down: node no longer eligible", id, k, t.ID)
				}
				delete(liveBy, k)
			}
		}
	}

	keys := make([]string, 0, len(wants))
	for _, w := range wants {
		keys = append(keys, w.key)
	}
	o.planUpdate(&svc, keys, liveBy, tasks, &p, now)
	o.planHandover(&svc, liveBy, &p)

	// Keep a bounded history of ended tasks per slot.
	for _, dead := range deadBy {
		if len(dead) <= o.opts.history {
			continue
		}
		slices.SortFunc(dead, func(a, b *Task) int { return b.CreatedAt.Compare(a.CreatedAt) })
		for _, t := range dead[o.opts.history:] {
			if !slices.Contains(p.updates, t) {
				p.deletes = append(p.deletes, t)
			}
		}
	}
	return p
}

// planRemoved shuts down the tasks of a removed service, and deletes those that ended or
// that no node will report on.
func (o *Orchestrator) planRemoved(tx ReadTx, id string, tasks []*Task, p *plan) {
	var stopping, deleted int
	for _, t := range tasks {
		gone := t.NodeID == ""
		if !gone {
			n, err := tx.Node(t.NodeID)
			gone = err != nil || n.Status.State == dao.NodeDown
		}
		switch {
		case t.Status.State.Terminal() || gone:
			p.deletes = append(p.deletes, t)
			deleted++
		case t.DesiredState <= dao.TaskRunning:
			p.shutdown(t)
			stopping++
		}
	}
	if stopping+deleted > 0 {
		p.why("reconciler: service %s removed: %d tasks shut down, %d deleted", id, stopping, deleted)
	}
}

func newest(ts []*Task) *Task {
	var n *Task
	for _, t := range ts {
		if n == nil || t.CreatedAt.After(n.CreatedAt) || (t.CreatedAt.Equal(n.CreatedAt) && t.ID > n.ID) {
			n = t
		}
	}
	return n
}

func summarize(what string, keys []string) string {
	const most = 8
	s := strings.Join(keys[:min(len(keys), most)], ", ")
	if len(keys) > most {
		s += fmt.Sprintf(" and %d more", len(keys)-most)
	}
	return what + " " + s
}

// newTask makes a task of the service's current spec for a slot, or for a node (a global
// service's, which needs no scheduling).
func newTask(svc *Service, slot int, nodeID string, now time.Time) *Task {
	t := &Task{Task: dao.Task{
		ID:             fmt.Sprintf("%s.%d.%08x", svc.ID, slot, rand.Uint32()),
		ServiceID:      svc.ID,
		ServiceVersion: svc.Version,
		Slot:           slot,
		NodeID:         nodeID,
		Spec:           svc.Spec.Container,
		Restart:        svc.Spec.Restart,
		DesiredState:   dao.TaskRunning,
		Status:         dao.TaskStatus{State: dao.TaskPending, Message: "waiting for a node", Timestamp: now},
		CreatedAt:      now,
	}}
	if nodeID != "" {
		t.Status = dao.TaskStatus{State: dao.TaskAssigned, Message: "global service: on node " + nodeID, Timestamp: now}
	}
	return t
}
