// Package orchestrator turns services into running, healing tasks: a state store, a
// scheduler, the contract between the control plane and its nodes, and an [Orchestrator]
// that runs the control loops over them.
//
// # The control plane
//
// An [Orchestrator] runs, in one Run, level-triggered loops over a [Store]: each reacts to
// the store's events by reading the current state and writing what should change, so a
// missed or repeated event costs a little work, never a wrong result.
//
//   - API: CreateService, UpdateService, ScaleService, RollbackService, RemoveService
//     (admission rules first: a violation is a *policy.AdmissionError), Tasks, Nodes,
//     Watch; AddNode, RemoveNode, DrainNode, Heartbeat, ReportStatus for nodes.
//   - Reconciler: one task per slot of a replicated service, one per eligible node of a
//     global one; replaces tasks that failed (restart budget spent), were rejected, or
//     were orphaned by a node that went down; shuts down what is beyond the replica count
//     or on a drained node; deletes the tasks of a removed service once they ended. A
//     slot never runs two tasks at once (but in a start-first update): a slot whose task
//     is being shut down gets its next task once its node reports the old one ended, or
//     once that node is down or removed (then nothing can be waited for: a node cut off
//     from the control plane may still run it).
//   - Scheduler loop: places pending tasks with a [scheduler.Scheduler], by service
//     version in batches; a task that fits nowhere stays pending with the refusal summary in its
//     status message, and is tried again when a node joins or changes or a task ends.
//   - Dispatcher: gives each node its full [Assignment] (tasks that have not ended, at the
//     store revision it was read at), once per batch of changes, through [NodeAgent].
//     A task no node would take is left out, so that it does not keep a node from the
//     others (see below).
//   - Status writer: ReportStatus queues what nodes observe; batches of it are written in
//     one transaction each, states moving forward only.
//   - Liveness: a node is ready while it beats within the heartbeat timeout (5s by
//     default), disconnected after it (nothing is duplicated, unless a service's
//     dao.DisconnectPolicy asks for its tasks to be replaced at once), down after the grace
//     too (3s by default; its tasks are orphaned and replaced elsewhere). Disconnect says a
//     node's connection closed (package cluster calls it when a remote agent's socket
//     closes): the node is disconnected at once, and down after the grace alone. When
//     most of a cluster of 10 or more falls silent at once (55 % by default), the
//     orchestrator suspects its own side (its network, or a load that keeps it from
//     taking their heartbeats in time) and holds them as they are, as Kubernetes' node
//     controller stops evicting in a disruption (WithMassSilence).
//   - Updater: rolling updates, slot by slot, as policy.Rollout decides (parallelism,
//     delay, stop-first or start-first, monitor window, health, failure ratio), pausing or
//     rolling back; a rollback replaces only the slots that do not run the old spec.
//     Stop-first (the default order): a slot's new task is created once its old one has
//     ended. The monitor window (dao.UpdatePolicy.Monitor, 5s by default, longer when the
//     health check needs longer to fail; see policy.MonitorWindow) is the gate between
//     batches: each new task must run (and be healthy, with a health check) for the whole
//     window before the next batch starts; one that fails, is found unhealthy, or whose
//     container exits and is restarted by its node within it counts as failed. So with
//     Parallelism 1, an update to an image that crashes at once replaces one slot, then
//     takes its failure action; a healthy rollout takes about one window per batch.
//     [Orchestrator.Deploy] waits for the update, and for its rollback, to finish.
//
// Each loop is a part of its own, which a newcomer finds by file, and decides from a read
// transaction what its caller then writes: the reconciler (reconcile.go) plans one
// service at a time; its updater (update.go) owns the rolling updates in progress; the
// scheduling loop (schedloop.go) reads the pending tasks and has its [scheduler.Scheduler]
// (package orchestrator/scheduler) place them; the dispatcher (dispatcher.go) reads each node's
// assignment; the status writer (status.go) keeps states moving forward; liveness
// (liveness.go) judges nodes by their silence alone. One pass of Run's loop drives them all, in that order,
// over what the store's events marked (orchestrator.go): one goroutine, so the loops
// share no locks, and what one writes the next reads in the same pass.
//
// The loops survive whatever a store holds: a stored service that fails its Validate (or
// whose replica count is beyond dao.MaxReplicas) is skipped, its tasks left as they are,
// with a warning and its update state set to paused with the reason (an event); a stored
// task in an undefined state, or one its node refused as invalid, is ended (orphaned,
// with the reason) and its slot filled again.
//
// Every decision is logged at slog.LevelDebug (WithLogger), in the words of the causes:
// placements and refusals, batches, waits of the updater, rollbacks, pauses and
// completions, nodes down, tasks replaced, assignments sent.
//
// Every write names its writer and reason in the event's cause ("api: scale web to 5",
// "reconciler: web slot 3 replaced: task web.3.1a2b orphaned: node n4 down: ...",
// "updater: rollback web: 2 of 4 tasks failed within 5s, ...").
//
// Run returns when its context is done (or its store is closed, ErrClosed), once every
// goroutine it started has ended; Deploy ends its watch before it returns; a store's Close
// ends its watches and waits for their goroutines. Nothing is left running
// (TestNothingLeftRunning checks it with goleak).
//
// The smallest complete program: a store, an orchestrator, and one edge node in the same
// process.
//
//	store, err := orchestrator.OpenBoltStore("/var/lib/dao/state.db")
//	if err != nil {
//		return err
//	}
//	defer store.Close()
//	o, err := orchestrator.New(store)
//	if err != nil {
//		return err
//	}
//	rt, err := edge.New("/run/containerd/containerd.sock")
//	if err != nil {
//		return err
//	}
//	defer rt.Close()
//	agent, err := edge.NewAgent(rt, edge.WithStateDir("/var/lib/dao/agent"),
//		edge.WithStatusFunc(func(u edge.TaskUpdate) { o.ReportStatus("local", u) }),
//		edge.WithHeartbeat(time.Second, func() { o.Heartbeat("local") }))
//	if err != nil {
//		return err
//	}
//	go o.Run(ctx)
//	if err := o.AddNode(ctx, dao.Node{ID: "local"}, agent); err != nil {
//		return err
//	}
//	go agent.Run(ctx)
//	_, err = o.CreateService(ctx, dao.ServiceSpec{Name: "web", Replicas: 3,
//		Container: dao.ContainerSpec{Image: "registry.example.com/web:1"}})
//
// Restarted on the same bbolt file and agent state directory, the same program finds its
// containers running and starts none twice.
//
// # State
//
// A [Store] keeps services ([Service]), tasks ([Task], a dao.Task with its revision) and
// nodes ([Node], a dao.Node with its revision) at revisions. Reads run in a View, writes in
// an Update: a transaction that commits all its writes at one new revision, or none.
// Every object carries the revision of its last write, and a write of an object that
// someone changed since it was read fails with [ErrConflict] (optimistic concurrency).
// Values are deep copies both ways, so no caller can change stored state by accident; a
// loop that only reads many tasks can ask for shared ones instead ([SharedReads]), as the
// orchestrator's own loops do.
// Tasks are indexed by service and by node; TasksByNode("") lists those waiting for one.
//
// Every change is an [Event] on a watch: what changed (the object after, and before), at
// which revision, and why (the cause its writer gave Update). A watch can start from a past
// revision, which the store's bounded history replays ([ErrCompacted] when it is too old),
// and a watcher that falls too far behind is ended with [ErrSlowWatcher] rather than
// slowing writers down (the orchestrator's own watch excepted: it takes in a backlog
// rather than list the store again). To follow the store, list in a View, then watch from the next
// revision.
//
// [NewMemoryStore] is the default; [OpenBoltStore] keeps the same data in a bbolt file, so
// that it survives a restart of the program; [OpenEtcdStore] keeps it in etcd, shared by
// several control-plane replicas on different machines. All three pass the conformance
// tests of package storetest. A watch delivers the events that pass its [WatchFilter]s
// (WatchTypes, WatchService, ...).
//
// # A highly available control plane
//
// Dao builds no consensus of its own: the state is in etcd. Every replica opens the same
// [EtcdStore] (a full copy in memory, kept by an etcd watch), serves the API (an
// Orchestrator over the store that does not Run), and campaigns with
// [EtcdStore.Campaign]. The one that wins runs the loops, with an Orchestrator over
// [Leadership.Store]: a view of the store whose every transaction also requires, in the
// same etcd transaction, that the election key it won is still there (a fence). A leader
// that is frozen, paused or cut off past its lease and wakes up cannot write a thing
// ([ErrFenced]); client-go's leader election does not fence so. When [Leadership.Done] is
// closed, stop that orchestrator and campaign again:
//
//	for ctx.Err() == nil {
//		l, err := store.Campaign(ctx, "10.0.0.1:7450") // what Leader tells the others
//		if err != nil {
//			continue // etcd unreachable, or ctx done
//		}
//		o, _ := orchestrator.New(l.Store())
//		rctx, stop := context.WithCancel(ctx)
//		go o.Run(rctx)
//		<-l.Done() // the lease is lost
//		stop()
//	}
//
// etcd bounds a transaction (128 operations, 1.5 MiB by default), so an EtcdStore commits
// at most [EtcdStore.TxnLimit] objects at once and refuses more whole ([ErrTxnTooLarge]);
// the loops write what they decide in transactions of that size, each a state they accept
// (some of a new service's tasks created, some placed). Any Store may say its limit
// ([TxnLimiter]). examples/dao's control-plane --etcd is a complete replica.
//
// The store (store.go, core.go, memstore.go, boltstore.go, watch.go, event.go) imports
// nothing of the loops and could be a package of its own. It stays here because its types
// are this package's vocabulary (a program that calls CreateService reads back an
// orchestrator.Service), and the loops read the stores' transactions through an
// unexported fast path. The scheduler, which imports only dao, clock and policy and shares
// no such vocabulary, is one: package orchestrator/scheduler.
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
// Placement is package orchestrator/scheduler's (see its documentation): the scheduling
// loop keeps a [scheduler.Scheduler]'s account of the nodes and their tasks up to date from
// the store's events and has it place the pending tasks. [WithScheduling] passes it
// options (scheduler.WithSampleSize, ...); its clock is always the orchestrator's.
//
// # Nodes
//
// The orchestrator gives each node its full set of tasks at a revision, an [Assignment],
// through the one-method [NodeAgent] interface, and hears of each status change as a
// [TaskUpdate], from a function the node was given. Package simnode simulates such nodes in memory, thousands
// of them in one process, for tests and benchmarks; edge.Agent is the real one (see
// NodeAgent for how the two meet).
//
// # Errors and options
//
// The package's sentinel errors (ErrNotFound, ErrExists, ErrConflict, ErrClosed, ...) are
// each of one of containerd's error classes (github.com/containerd/errdefs), named in
// their docs, so errdefs.IsNotFound(err) is true of a missing service, task or node as of
// a missing container. Where several things fail at once, the error is a
// *multierror.Error (github.com/hashicorp/go-multierror) that errors.Is and errors.As see
// through to each.
//
// Options of every family ([Option], [StoreOption], [scheduler.Option]) are functions that
// may fail; each WithX says its default, and a bad value is an error that names the
// option and wraps dao.ErrInvalid (errdefs.ErrInvalidArgument).
//
// # Time
//
// The orchestrator lives in a [clock.Clock] ([WithClock]): heartbeat timeouts, grace
// periods, delays between update batches and monitor windows are all read from it and
// waited for with it. [clock.System] is the real one; a [clock.Manual] lets tests and
// benchmarks move time themselves, so that a run is fast and repeatable.
package orchestrator
