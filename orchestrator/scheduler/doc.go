// Package scheduler decides which node runs each task: a [Scheduler] places groups of
// identical tasks on nodes with the placers of package policy (filters that say whether a
// node may run a task and why not, scorers that rank the nodes that may), keeping an
// incremental account of what every node has been given, so that the cost of a placement
// does not grow with the cluster while constraints stay exact.
//
// The Scheduler is the caller's to drive, as etcd's raft is: it does no I/O, starts no
// goroutine and reads no store. The caller tells it the nodes (SetNode, RemoveNode) and the
// tasks already on them (Count, Uncount, RecordFailure), and asks it to place a group of
// tasks that want the same thing, one service version, with that version's placer
// (Placer, then Place). Each [Decision] names a node, or carries a *policy.PlacementError
// that counts the nodes refused by reason. Place counts every placed task on its node, so
// the next group sees it; writing the decisions anywhere is the caller's business. An
// orchestrator.Orchestrator drives one from its scheduling loop, over its store's events;
// internal/bench/scheduler drives one alone, as below.
//
// How a group is placed: feasible nodes are found by scanning the nodes from a random start
// until max(sample size, group size) of them pass every filter ([WithSampleSize],
// [DefaultSampleSize]); spreading over label values is exact, by counts; within a value,
// nodes are ranked by the other scorers in a heap re-scored lazily (see Scheduler.Place).
//
// The smallest complete use:
//
//	s, err := scheduler.New()
//	if err != nil {
//		return err
//	}
//	for _, n := range nodes {
//		s.SetNode(n) // a *dao.Node: labels, resources, status
//	}
//	p, err := s.Placer(svc.ID, svc.Version, svc.Spec.Placement) // cached per version
//	if err != nil {
//		return err // a *policy.SyntaxError: a constraint that does not parse
//	}
//	for _, d := range s.Place(p, tasks) {
//		if d.Err != nil {
//			// errors.Is(d.Err, policy.ErrUnschedulable): stays pending, d.Err says why
//			continue
//		}
//		d.Task.NodeID = d.NodeID
//	}
//
// # Why a package of its own
//
// It imports only dao, clock and policy, and the orchestrator uses nothing of it but its
// exported methods: it was a seam already. As its own package, a newcomer finds the
// placement algorithm by its name rather than among the orchestrator's store and loops;
// its API reads from outside without prefixes (scheduler.New, scheduler.WithClock rather
// than orchestrator.NewScheduler, orchestrator.WithSchedulerClock); and a program or a
// benchmark that only places tasks needs neither a store nor the control loops.
//
// # Options
//
// Options ([Option]) are functions that may fail: each WithX says its default, and a bad
// value (or a nil option) is an error that names the option and wraps dao.ErrInvalid
// (errdefs.ErrInvalidArgument). An orchestrator passes its own to its Scheduler with
// orchestrator.WithScheduling, and always its own clock.
//
// A Scheduler is not safe for concurrent use.
package scheduler
