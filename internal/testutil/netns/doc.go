// Package netns gives a test several machines on one host: each Host is a Linux network
// namespace with its own eth0, plugged by a veth pair into a private bridge (a Lab), and a
// test can cut a Host off the network for real, to see what remote nodes do in a partition.
//
// A Lab numbered n is the subnet 198.19.n.0/24 (in 198.18.0.0/15, the range set aside for
// network tests): the bridge "daolab<n>" in the test's own namespace has 198.19.n.1, the
// HostIP, where programs in the namespaces reach the test (a control plane listening on it);
// the i-th Host added (from 0) has 198.19.n.(10+i) and a default route via the HostIP.
//
//	lab := netns.NewLab(t, 7)
//	ln, _ := net.Listen("tcp", net.JoinHostPort(lab.HostIP(), "0")) // the control plane
//	a := lab.AddHost("a")
//	agent := a.Command(ctx, agentBinary, "-join", ln.Addr().String())
//	agent.Start() // the Lab kills it when the test ends
//	a.Partition(t) // a's packets are dropped both ways: peers see silence
//	...
//	a.Heal(t)
//
// Host.Dial and Host.Listen open sockets inside a Host's namespace from the test process
// itself, for a test that needs no program of its own there.
//
// # Two ways to cut a Host off
//
// Partition drops every IP packet in and out of the Host's eth0 with iptables inside its
// namespace, so a TCP peer on either side sees silence (its SYNs and data go unanswered until
// it times out), never a reset or a "connection refused"; ARP still works, so the silence
// lasts as long as the partition. LinkDown takes the host end of the veth down, as if the
// cable were pulled: packets are lost at first too, but once the neighbour entries expire (a
// few seconds) a peer's connect may fail with "no route to host" instead of timing out.
//
// # Names, numbers and leftovers
//
// Everything a Lab makes is named after n: the bridge "daolab<n>", the host ends of the
// veths "daolab<n>h<i>" (at most 13 characters, within the kernel's 15), the namespaces
// "dao-<n>-<name>". Callers pick n: every test that needs a Lab at the same time as another,
// in one test binary or in another package's (go test runs packages as parallel processes),
// uses a distinct n. There is no global lock: NewLab takes a lock of its own n only (a flock
// on /run/dao-netns/lab<n>.lock, released when the Lab is removed or the process dies), and
// fails at once if another live Lab holds it. Holding it, NewLab removes whatever a crashed
// run left under the same n before it builds anew. When the test ends the Lab kills every
// process in its namespaces and removes them, the veths, the bridge and its iptables rules.
//
// Processes started with Host.Command also get SIGKILL if the test process dies (Pdeathsig),
// so a test binary killed by its timeout leaves names behind for the next run to remove, but
// nothing running.
//
// # The host's firewall
//
// Traffic between two Hosts is bridged, never routed, and traffic between a Host and the
// test goes to and from the bridge's own address, so no IP forwarding is needed. But when the
// kernel's br_netfilter is loaded with net.bridge.bridge-nf-call-iptables=1 (as it is
// wherever Docker or Kubernetes ran), bridged packets pass the host's iptables FORWARD chain,
// whose policy such tools set to DROP. So NewLab inserts ACCEPT rules for its bridge at the
// top of the host's FORWARD, INPUT and OUTPUT chains (with the comment "daolab<n>") and
// removes them with the Lab. It changes no sysctl. A DROP in another table than the one the
// iptables command manages (iptables-legacy beside nf_tables) is out of its reach.
//
// Every function here needs root and the ip (iproute2) and iptables commands; NewLab calls
// testutil.RequireIntegration, which skips the test without them unless
// DAO_REQUIRE_INTEGRATION is set. Tests that use a Lab run under
// `flock /tmp/dao-net.lock go test ...` like every test that binds fixed network names.
package netns
