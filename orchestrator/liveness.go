package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opendao/dao"
)

// AddNode registers a node and its connection: the node's record is created in the store,
// or updated (its availability kept when node.Availability is empty), with the status
// ready, and the dispatcher gives agent the node's assignment from then on. A node that
// is added again (after a restart of the program or of the node) gets the tasks the store
// has for it, as they are: nothing is started twice.
//
// A node added here must then beat (Heartbeat, or report a status) more often than the
// heartbeat timeout, or it is disconnected, and later down. agent must satisfy the
// NodeAgent contract; edge.Agent and simnode.Node do.
func (o *Orchestrator) AddNode(ctx context.Context, node dao.Node, agent NodeAgent) error {
	if err := node.Validate(); err != nil {
		return err
	}
	if agent == nil {
		return fmt.Errorf("%w: node %s: nil agent", dao.ErrInvalid, node.ID)
	}
	now := o.opts.clock.Now()
	node.Status = dao.NodeStatus{State: dao.NodeReady, Message: "added", LastSeen: now}
	err := o.store.Update(ctx, "api: add node "+node.ID, func(tx Tx) error {
		o.wroteNode(tx)
		old, err := tx.Node(node.ID)
		if errors.Is(err, ErrNotFound) {
			return tx.CreateNode(&Node{Node: node})
		}
		if err != nil {
			return err
		}
		if node.Availability == "" {
			node.Availability = old.Availability
		}
		return tx.UpdateNode(&Node{Node: node, Revision: old.Revision})
	})
	if err != nil {
		return err
	}
	o.mu.Lock()
	o.nodes[node.ID] = &nodeConn{agent: agent, lastSeen: now, state: dao.NodeReady}
	o.dirtyNodes[node.ID] = true
	o.mu.Unlock()
	o.poke()
	return nil
}

// RemoveNode forgets a node: its connection is dropped, its record deleted, and its tasks
// that had not ended are orphaned, to be replaced elsewhere. It fails with ErrNotFound
// when the store has no such node.
func (o *Orchestrator) RemoveNode(ctx context.Context, id string) error {
	o.mu.Lock()
	delete(o.nodes, id)
	o.mu.Unlock()
	cause, why, now := "api: remove node "+id, "node "+id+" removed", o.opts.clock.Now()
	var more bool
	err := o.updateAgain(ctx, cause, func(tx Tx) error {
		o.wroteNode(tx)
		n, err := tx.Node(id)
		if err != nil {
			return err
		}
		if more, err = orphanTasks(tx, id, why, now, nil, txnLimit(o.store)-1); err != nil {
			return err
		}
		return tx.DeleteNode(id, n.Revision)
	})
	if err != nil || !more {
		return err
	}
	return o.orphanRest(ctx, cause, id, why, now, nil)
}

// DrainNode sets a node's availability to drain: its tasks are shut down and replaced on
// other nodes, and it gets no new ones. It fails with ErrNotFound when there is no such
// node.
func (o *Orchestrator) DrainNode(ctx context.Context, id string) error {
	return o.setAvailability(ctx, id, dao.Drain)
}

// ActivateNode sets a node's availability back to active: it takes new tasks again (and
// global services run on it again). It fails with ErrNotFound when there is no such node.
func (o *Orchestrator) ActivateNode(ctx context.Context, id string) error {
	return o.setAvailability(ctx, id, dao.Active)
}

func (o *Orchestrator) setAvailability(ctx context.Context, id string, a dao.Availability) error {
	return o.updateAgain(ctx, fmt.Sprintf("api: %s node %s", map[dao.Availability]string{dao.Drain: "drain", dao.Active: "activate"}[a], id), func(tx Tx) error {
		n, err := tx.Node(id)
		if err != nil {
			return err
		}
		if n.Availability == a {
			return nil
		}
		o.wroteNode(tx)
		n.Availability = a
		return tx.UpdateNode(&n)
	})
}

// Heartbeat says that the node is alive now. A node that was disconnected or down is ready
// again, and is sent its assignment again if the last one did not reach it. It fails with
// ErrNotFound for a node that was not added. It does not block for long.
func (o *Orchestrator) Heartbeat(nodeID string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.nodes[nodeID]
	if c == nil {
		return fmt.Errorf("node %s: %w", nodeID, ErrNotFound)
	}
	o.beat(nodeID, c)
	return nil
}

// Disconnect says that the connection to a node closed, for a reason given by why (for
// the node's status message): the node is disconnected at once, rather than after the
// heartbeat timeout, and down once the grace has passed too, unless it beats again. A
// closed connection is evidence that the node's program went away, which silence is not:
// a node that is merely cut off keeps its tasks for the heartbeat timeout and the grace,
// one whose agent died for the grace only. A node in the same process never needs it. It
// fails with ErrNotFound for a node that was not added. It does not block for long.
func (o *Orchestrator) Disconnect(nodeID, why string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.nodes[nodeID]
	if c == nil {
		return fmt.Errorf("node %s: %w", nodeID, ErrNotFound)
	}
	if c.lostAt.IsZero() {
		c.lostAt, c.lostWhy = o.opts.clock.Now(), why
	}
	select {
	case o.kick <- struct{}{}:
	default:
	}
	return nil
}

// beat records a sign of life; o.mu is held.
func (o *Orchestrator) beat(nodeID string, c *nodeConn) {
	c.lastSeen = o.opts.clock.Now()
	c.lostAt, c.lostWhy = time.Time{}, ""
	wake := c.state != dao.NodeReady
	if c.failed {
		o.dirtyNodes[nodeID] = true
		wake = true
	}
	if wake {
		select {
		case o.kick <- struct{}{}:
		default:
		}
	}
}

// checkLiveness writes the liveness of every node whose state changed: ready while it beats
// within the heartbeat timeout, disconnected after it, down after the grace too. The tasks
// of a node that goes down are orphaned in the same transaction; those of a disconnected
// node are left alone, so nothing runs twice, unless their service's DisconnectPolicy says
// to replace them at once.
func (o *Orchestrator) checkLiveness(ctx context.Context) {
	now := o.opts.clock.Now()
	type change struct {
		id       string
		state    dao.NodeState
		lastSeen time.Time
		lostAt   time.Time
		lostWhy  string
	}
	var changes []change
	l := liveness{timeout: o.opts.hbTimeout, grace: o.opts.grace}
	o.mu.Lock()
	silent := 0
	for id, c := range o.nodes {
		want := l.judge(c.silence(now, l.timeout), c.state)
		if want != dao.NodeReady {
			silent++
		}
		if want != c.state {
			changes = append(changes, change{id, want, c.lastSeen, c.lostAt, c.lostWhy})
		}
	}
	if massSilent(silent, len(o.nodes), o.opts.massSilence) {
		// Most of the cluster at once: the control plane's side is the likelier cause.
		// Only nodes coming back are written (see WithMassSilence).
		back := changes[:0]
		for _, ch := range changes {
			if ch.state == dao.NodeReady {
				back = append(back, ch)
			}
		}
		changes = back
		if !o.massHeld {
			o.massHeld = true
			o.opts.log.Warn(fmt.Sprintf("orchestrator: %d of %d nodes silent at once: holding them as they are, for the likelier cause is the control plane's own network or load (WithMassSilence)", silent, len(o.nodes)),
				"silent", silent, "nodes", len(o.nodes))
		}
	} else if o.massHeld {
		o.massHeld = false
		o.opts.log.Warn(fmt.Sprintf("orchestrator: %d of %d nodes silent: no longer holding them", silent, len(o.nodes)),
			"silent", silent, "nodes", len(o.nodes))
	}
	o.mu.Unlock()
	for _, ch := range changes {
		msg := l.message(ch.state, now.Sub(ch.lastSeen))
		if !ch.lostAt.IsZero() && ch.state != dao.NodeReady {
			msg = l.lostMessage(ch.state, ch.lostWhy, now.Sub(ch.lostAt))
		}
		cause := fmt.Sprintf("liveness: node %s %s: %s", ch.id, ch.state, msg)
		var orphanWhy string
		var only func(tx Tx) func(*Task) bool
		var more bool
		err := o.store.Update(ctx, cause, func(tx Tx) error {
			n, err := tx.Node(ch.id)
			if err != nil {
				return err
			}
			n.Status = dao.NodeStatus{State: ch.state, Message: msg, LastSeen: ch.lastSeen}
			o.wroteNode(tx)
			if err := tx.UpdateNode(&n); err != nil {
				return err
			}
			switch ch.state {
			case dao.NodeDown:
				orphanWhy = "node " + ch.id + " down: " + msg
			case dao.NodeDisconnected:
				// Only the services that asked to be replaced at once (DisconnectPolicy).
				orphanWhy = "node " + ch.id + " disconnected: " + msg + "; the service replaces at once"
				only = func(tx Tx) func(*Task) bool {
					return func(t *Task) bool {
						svc, err := tx.Service(t.ServiceID)
						return err == nil && svc.Spec.Disconnect.Replace
					}
				}
			default:
				return nil
			}
			var f func(*Task) bool
			if only != nil {
				f = only(tx)
			}
			more, err = orphanTasks(tx, ch.id, orphanWhy, now, f, txnLimit(o.store)-1)
			return err
		})
		if err == nil && more {
			err = o.orphanRest(ctx, cause, ch.id, orphanWhy, now, only)
		}
		if err == nil {
			o.opts.log.Debug(fmt.Sprintf("liveness: node %s %s: %s", ch.id, ch.state, msg), "node", ch.id, "state", ch.state)
		}
		o.mu.Lock()
		if c := o.nodes[ch.id]; c != nil {
			switch {
			case err == nil:
				c.state = ch.state
			case errors.Is(err, ErrNotFound):
				delete(o.nodes, ch.id)
			}
		}
		if ch.state == dao.NodeReady && err == nil {
			o.dirtyNodes[ch.id] = true
		}
		o.mu.Unlock()
		if err != nil && !errors.Is(err, ErrNotFound) && ctx.Err() == nil {
			o.opts.log.Warn("orchestrator: liveness", "node", ch.id, "err", err)
		}
	}
}

// massSilent reports whether silent nodes of all are so many that the orchestrator holds
// them as they are (WithMassSilence, share).
func massSilent(silent, all int, share float64) bool {
	return share > 0 && all >= MassSilenceMinNodes && silent > 0 && float64(silent) >= share*float64(all)
}

// liveness judges a node by how long it has been silent: ready while it beats within the
// heartbeat timeout, disconnected after it, down after the grace too. It is the pure part
// of checkLiveness, which writes what it decides.
type liveness struct {
	timeout, grace time.Duration
}

// judge returns the state a node silent for since should be in, when the store says it is
// in cur. A node that is down stays down until it beats again: being silent a little less
// long (a clock step) does not make it disconnected.
func (l liveness) judge(since time.Duration, cur dao.NodeState) dao.NodeState {
	want := dao.NodeReady
	switch {
	case since > l.timeout+l.grace:
		want = dao.NodeDown
	case since > l.timeout:
		want = dao.NodeDisconnected
	}
	if cur == dao.NodeDown && want == dao.NodeDisconnected {
		want = dao.NodeDown // coming back takes a heartbeat
	}
	return want
}

// message says why a node silent for since is now in state, for the cause of the write.
func (l liveness) message(state dao.NodeState, since time.Duration) string {
	since = since.Round(time.Millisecond)
	switch state {
	case dao.NodeReady:
		return "heartbeat received"
	case dao.NodeDisconnected:
		return fmt.Sprintf("no heartbeat for %s (timeout %s)", since, l.timeout)
	case dao.NodeDown:
		return fmt.Sprintf("no heartbeat for %s (timeout %s + grace %s)", since, l.timeout, l.grace)
	}
	return ""
}

// lostMessage says why a node whose connection closed (for why) since ago is now in state.
func (l liveness) lostMessage(state dao.NodeState, why string, since time.Duration) string {
	since = since.Round(time.Millisecond)
	if why == "" {
		why = "connection closed"
	}
	if state == dao.NodeDown {
		return fmt.Sprintf("%s %s ago (grace %s)", why, since, l.grace)
	}
	return why
}

// orphanTasks ends the tasks of a lost node that had not ended (those that pass only, when
// only is not nil), so that the reconciler replaces them.
func orphanTasks(tx Tx, nodeID, why string, now time.Time, only func(*Task) bool, most int) (more bool, err error) {
	var ts []Task
	for t := range tx.TasksByNode(nodeID) {
		if !t.Status.State.Terminal() && (only == nil || only(&t)) {
			if most > 0 && len(ts) == most {
				more = true
				break
			}
			ts = append(ts, t)
		}
	}
	for i := range ts {
		t := &ts[i]
		t.Status.State = dao.TaskOrphaned
		t.Status.Message = why
		t.Status.Health = dao.HealthNone
		t.Status.Timestamp = now
		if err := tx.UpdateTask(t); err != nil {
			return false, err
		}
	}
	return more, nil
}

// orphanRest orphans, in further transactions of at most the store's limit, the tasks
// of a node that the first one left (more: the store takes fewer objects at once than
// the node has tasks). Each is a state like any other: some of the node's tasks
// orphaned, to be replaced.
func (o *Orchestrator) orphanRest(ctx context.Context, cause, nodeID, why string, now time.Time, only func(tx Tx) func(*Task) bool) error {
	for more := true; more; {
		err := o.store.Update(ctx, cause+" (more tasks)", func(tx Tx) error {
			var f func(*Task) bool
			if only != nil {
				f = only(tx)
			}
			var err error
			more, err = orphanTasks(tx, nodeID, why, now, f, txnLimit(o.store))
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}
