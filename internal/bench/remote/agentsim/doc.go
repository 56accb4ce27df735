// Package agentsim runs simulated nodes behind the real node protocol in a process of their
// own, for the remote-nodes benchmark (../): each node is a simnode.Node connected to the
// control plane by a cluster.Client, over loopback and mutual TLS, with an identity that
// the parent saved in a directory (cluster.Identity.Save). Keeping the agents out of the
// control plane's process lets the benchmark count the control plane's CPU time apart from
// theirs.
//
// The parent starts the child with [Start], which runs the parent's own executable again
// with [EnvChild] set; the child's main calls [Main] first thing:
//
//	func main() {
//		if agentsim.IsChild() {
//			os.Exit(agentsim.Main(os.Args[1:]))
//		}
//		...
//	}
//
// The child says how many of its clients are connected and how many tasks its nodes hold
// in their assignments (with the time of the last change) on its standard output, one line
// at a time; [Proc] reads them. It exits when its standard input closes (the parent went
// away) and, should that not be noticed, when the parent dies (Pdeathsig).
//
// [Counted] is the same tally of assigned tasks for nodes added to an orchestrator
// directly, so that both sides of the benchmark end at the same point.
package agentsim
