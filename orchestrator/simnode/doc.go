// Package simnode simulates the nodes of a cluster in memory, so that tests, benchmarks
// and programs can drive thousands of nodes and a million tasks from one process, with
// nothing real to run.
//
// A [Node] does what edge.Agent does for a real node, as the orchestrator sees it: it
// takes a full assignment of tasks at a revision ([Node.Assign], the
// orchestrator.NodeAgent interface), accepts each new task (or rejects it, when it does
// not fit the node's allocatable resources), prepares it, starts it, restarts it when it
// crashes as its dao.RestartPolicy says (with policy.RestartTracker, as the edge agent
// does), stops the tasks no longer wanted, and reports every status change, in order,
// to a function ([WithStatusFunc]). On top of that it injects what real clusters suffer:
// start latencies drawn from a distribution ([WithStartLatency], [Latency]), random
// crashes and rejections ([WithCrashes], [WithRejections]), crashes on demand
// ([Node.Crash]), machines that go down and come back ([Node.Down], [Node.Up]) and
// network partitions ([Node.Disconnect]), and heartbeats ([WithHeartbeat]) for the
// control plane to judge liveness by.
//
// Time is the node's [clock.Clock] ([WithClock]). With [clock.System] things happen in real
// time; with a [clock.Manual] they happen when the program moves the clock, on the goroutine
// that moves it, in a fixed order: a simulated hour takes milliseconds, and with [WithSeed] (or
// [WithClusterSeed]) a run repeats exactly. A node starts no goroutine: it asks its clock
// to call it back when its next event is due, so a million tasks cost a million small
// records (about 300 bytes each), not a million goroutines.
//
// [NewCluster] makes many nodes at once, shaped by label and capacity distributions
// ([Label], [WeightedLabel], [Capacity], or any [Shape]), reporting to one function with
// each node's ID:
//
//	clk := clock.NewManual(time.Now())
//	cluster, err := simnode.NewCluster(5000,
//		simnode.WithClusterSeed(1),
//		simnode.WithShapes(
//			simnode.Label("zone", "a", "b", "c"),
//			simnode.WeightedLabel("disk", map[string]int{"ssd": 4, "hdd": 1}),
//			simnode.Capacity(dao.Resources{MilliCPU: 8000, Memory: 32 * dao.GiB})),
//		simnode.WithNodeOptions(
//			simnode.WithClock(clk),
//			simnode.WithStartLatency(simnode.Normal(2*time.Second, 500*time.Millisecond)),
//			simnode.WithCrashes(0.01, simnode.Exponential(time.Hour))),
//		simnode.WithClusterStatusFunc(func(nodeID string, u orchestrator.TaskUpdate) {
//			// hand the update to the orchestrator
//		}))
//	if err != nil {
//		return err
//	}
//	defer cluster.Close()
//	for _, n := range cluster.Infos() {
//		// register n with the orchestrator; cluster.Node(n.ID) is its NodeAgent
//	}
//	clk.Advance(time.Minute) // a minute of the cluster's life, in a moment
//
// A loop of [clock.Manual.Step] runs a simulation until nothing is left to happen (which,
// with heartbeats, is never).
//
// [Node.Close] (and [Cluster.Close]) stops a node: its timers are stopped, a callback
// under way is waited for, and nothing is reported after it returns. Options reject bad
// values with an error that names the option and wraps dao.ErrInvalid; the package's
// errors are of containerd's error classes (errdefs), as [ErrUnreachable] is of
// errdefs.ErrUnavailable.
package simnode
