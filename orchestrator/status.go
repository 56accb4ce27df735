package orchestrator

import (
	"context"
	"errors"
	"fmt"
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
// was down and whose tasks went elsewhere.
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
			n := min(len(o.statusQ), statusBatch)
			batch := o.statusQ[:n:n]
			o.statusQ = o.statusQ[n:]
			if len(o.statusQ) == 0 {
				o.statusQ = nil
			}
			o.mu.Unlock()
			if n == 0 {
				break
			}
			if err := o.writeStatus(ctx, batch); err != nil {
				if ctx.Err() != nil {
					return
				}
				o.opts.log.Warn("orchestrator: write status", "err", err)
			}
		}
	}
}

func (o *Orchestrator) writeStatus(ctx context.Context, batch []statusReport) error {
	cause := fmt.Sprintf("status: %d reports", len(batch))
	if len(batch) == 1 {
		cause = fmt.Sprintf("status: node %s: task %s %s", batch[0].nodeID, batch[0].u.TaskID, batch[0].u.Status.State)
	}
	return o.store.Update(ctx, cause, func(tx Tx) error {
		// The last report of a task in the batch wins, if every step to it is forward.
		for _, r := range batch {
			t, err := tx.Task(r.u.TaskID)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if t.NodeID != r.nodeID || !t.Status.State.CanTransition(r.u.Status.State) {
				continue
			}
			t.Status = r.u.Status
			if err := tx.UpdateTask(&t); err != nil {
				return err
			}
		}
		return nil
	})
}
