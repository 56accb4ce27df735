package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opendao/dao"
)

// statusBatch is the most status reports one transaction writes.
const statusBatch = 4096

// ReportStatus takes a status change a node observed: the function to give the node
// (edge.WithStatusFunc, simnode.WithClusterStatusFunc). It queues the update and returns
// at once; Run's status writer batches queued updates into store transactions. A report
// also counts as a heartbeat of the node.
//
// The writer keeps states moving forward only (dao.TaskState.CanTransition), and drops
// updates of tasks that the store does not have on that node, such as those of a node that
// was down and whose tasks went elsewhere. Within one state that only nodes report
// (preparing and after), an update older than the status the store has is dropped as
// well, so that an older update does not undo a newer one (the restart of a crash-looping
// container, say): older by its node's sequence number (dao.TaskStatus.Seq) when both are
// numbered, so that neither a node's clock set back nor an old update sent again after a
// reconnection wins; else by its node's timestamp. A task that has left TaskRunning is not restarting, whatever the update
// says. Each write's cause reads as the status does (dao.TaskStatus.Describe):
// "status: node n1: task t1 restarting (exit 1, 3 restarts, next attempt in 2s)".
func (o *Orchestrator) ReportStatus(nodeID string, u TaskUpdate) {
	o.mu.Lock()
	o.statusQ = append(o.statusQ, statusReport{nodeID, u})
	if c := o.nodes[nodeID]; c != nil {
		o.beat(nodeID, c)
	}
	o.mu.Unlock()
	select {
	case o.statusKick <- struct{}{}:
	default:
	}
}

// statusLoop writes queued status reports until ctx is done.
func (o *Orchestrator) statusLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.statusKick:
		}
		for {
			o.mu.Lock()
			limit := statusBatch
			if l := txnLimit(o.store); l > 0 {
				limit = min(limit, l)
			}
			n := statusPrefix(o.statusQ, limit)
			batch := o.statusQ[:n:n]
			o.statusQ = o.statusQ[n:]
			if len(o.statusQ) == 0 {
				o.statusQ = nil
			}
			o.mu.Unlock()
			if n == 0 {
				break
			}
			if err := o.writeStatusSplit(ctx, batch); err != nil {
				if ctx.Err() != nil {
					return
				}
				o.opts.log.Warn("orchestrator: write status", "err", err)
			}
		}
	}
}

// statusPrefix returns how many reports at the head of q one transaction takes: as many
// as name at most limit tasks, since the reports of one task (preparing, starting,
// running) make one write. It looks at most maxStatusScan reports.
func statusPrefix(q []statusReport, limit int) int {
	if len(q) <= limit {
		return len(q)
	}
	seen := make(map[string]struct{}, limit)
	for i, r := range q {
		if _, ok := seen[r.u.TaskID]; ok {
			continue
		}
		if len(seen) == limit || i == maxStatusScan {
			return i
		}
		seen[r.u.TaskID] = struct{}{}
	}
	return len(q)
}

// maxStatusScan bounds the reports one status transaction takes.
const maxStatusScan = 16 * statusBatch

// writeStatusSplit writes the batch, in halves while the store finds it too large.
func (o *Orchestrator) writeStatusSplit(ctx context.Context, batch []statusReport) error {
	err := o.writeStatus(ctx, batch)
	if errors.Is(err, ErrTxnTooLarge) && len(batch) > 1 {
		h := len(batch) / 2
		return errors.Join(o.writeStatusSplit(ctx, batch[:h]), o.writeStatusSplit(ctx, batch[h:]))
	}
	return err
}

func (o *Orchestrator) writeStatus(ctx context.Context, batch []statusReport) error {
	cause := fmt.Sprintf("status: %d reports", len(batch))
	if len(batch) == 1 {
		// As the node saw it when it observed it: "next attempt in 2s" then.
		st := normalStatus(batch[0].u.Status)
		at := st.Timestamp
		if at.IsZero() {
			at = o.opts.clock.Now()
		}
		cause = fmt.Sprintf("status: node %s: task %s %s", batch[0].nodeID, batch[0].u.TaskID, st.Describe(at))
	}
	return o.store.Update(withSharedReads(ctx), cause, func(tx Tx) error {
		// The last report of a task in the batch wins, if every step to it is forward.
		for _, r := range batch {
			t, err := tx.Task(r.u.TaskID)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if t.NodeID != r.nodeID || !supersedes(r.u.Status, t.Status) {
				continue
			}
			t.Status = normalStatus(r.u.Status)
			if err := tx.UpdateTask(&t); err != nil {
				return err
			}
		}
		return nil
	})
}

// supersedes reports whether a node's status update u replaces the status cur the store
// has: states only move forward, and within a state that only a node reports, an update
// that its node numbered before cur (dao.TaskStatus.Seq), or, when either is unnumbered,
// observed before cur by its node's clock, is older news. (The control plane writes the
// pending and assigned states, with its own clock, and a node's clock is not compared
// with it.) A task's statuses all come from its one node, so its numbers are comparable;
// a clock is not, once it is set back (an edge device that boots with no real-time clock,
// or NTP stepping a fast one back), and an update sent again after a reconnection carries
// the time it was observed, which a clock set back since makes look new.
func supersedes(u, cur dao.TaskStatus) bool {
	if !cur.State.CanTransition(u.State) {
		return false
	}
	if u.State != cur.State || u.State < dao.TaskPreparing {
		return true
	}
	if u.Seq != 0 && cur.Seq != 0 {
		return u.Seq > cur.Seq
	}
	return u.Timestamp.IsZero() || cur.Timestamp.IsZero() || !u.Timestamp.Before(cur.Timestamp)
}

// normalStatus returns st as the store keeps it: only a running task is restarting.
func normalStatus(st dao.TaskStatus) dao.TaskStatus {
	if st.State != dao.TaskRunning || !st.Restarting {
		st.Restarting, st.NextRestartAt = false, time.Time{}
	}
	return st
}
