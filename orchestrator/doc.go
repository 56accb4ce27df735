// Package orchestrator turns services into running, healing tasks. What exists so far: the
// state store that everything else is built on, the scheduler that places tasks, and the
// contract between the orchestrator and its nodes; the control loops that turn services
// into tasks and heal them, and the dispatcher that gives each node its assignment, are
// being built on top of them.
//
// # State
//
// A [Store] keeps services ([Service]), tasks ([Task], a dao.Task with its revision) and
// nodes ([Node], a dao.Node with its revision) at revisions. Reads run in a View, writes in
// an Update: a transaction that commits all its writes at one new revision, or none.
// Every object carries the revision of its last write, and a write of an object that
// someone changed since it was read fails with [ErrConflict] (optimistic concurrency).
// Values are deep copies both ways, so no caller can change stored state by accident.
// Tasks are indexed by service and by node; TasksByNode("") lists those waiting for one.
//
// Every change is an [Event] on a watch: what changed (the object after, and before), at
// which revision, and why (the cause its writer gave Update). A watch can start from a past
// revision, which the store's bounded history replays ([ErrCompacted] when it is too old),
// and a watcher that falls too far behind is ended with [ErrSlowWatcher] rather than
// slowing writers down. To follow the store, list in a View, then watch from the next
// revision.
//
// [NewMemoryStore] is the default; [OpenBoltStore] keeps the same data in a bbolt file, so
// that it survives a restart of the program. Both pass the conformance tests of package
// storetest, which any other store (etcd, next) must pass too.
//
// The smallest complete use:
//
//	s, err := orchestrator.NewMemoryStore()
//	if err != nil {
//		return err
//	}
//	defer s.Close()
//	events, err := s.Watch(ctx, 0, orchestrator.WatchTypes(orchestrator.TaskObject))
//	if err != nil {
//		return err
//	}
//	web := &orchestrator.Service{ID: "web", Spec: spec}
//	err = s.Update(ctx, "api: create web", func(tx orchestrator.Tx) error {
//		if err := tx.CreateService(web); err != nil {
//			return err
//		}
//		return tx.CreateTask(&orchestrator.Task{Task: dao.Task{
//			ID: "web.1", ServiceID: "web", ServiceVersion: web.Version, Slot: 1,
//			Spec: spec.Container, DesiredState: dao.TaskRunning,
//		}})
//	})
//	if err != nil {
//		return err
//	}
//	e := <-events // 1 created task web.1, cause "api: create web"
//
// # Scheduling
//
// A [Scheduler] places groups of identical tasks on nodes with the placement pipelines of
// package policy, keeping an incremental account of every node, so that the cost of a
// placement does not grow with the cluster.
//
// # Nodes
//
// The orchestrator gives each node its full set of tasks at a revision, an [Assignment],
// through the one-method [NodeAgent] interface, and hears of each status change as a
// [TaskUpdate], from a function the node was given. Package simnode simulates such nodes in memory, thousands
// of them in one process, for tests and benchmarks; edge.Agent is the real one (see
// NodeAgent for how the two meet).
package orchestrator
