// Package cluster is Dao's node protocol: how nodes on other machines join a control plane,
// connect to it over mutual TLS, and take their assignments from it, and how they keep
// working when the network is gone.
//
// # The two ends
//
// The control plane runs a [Server] beside its orchestrator.Orchestrator. Each node runs a
// [Client] beside its local node (an edge.Agent over containerd, or a simnode.Node in
// tests and benchmarks). The client dials out, so a node behind NAT or a firewall needs no
// open port, and holds one long-lived gRPC stream (a session) that carries, from the node,
// its registration (a hello with its dao.Node and the status of every task it runs), its
// heartbeats and its status updates in numbered batches; and, from the control plane, a
// welcome (the heartbeat interval), the node's full dao.Assignment whenever it changes,
// heartbeat replies and acknowledgements. On the control plane each session is the node's
// orchestrator.NodeAgent: the control loops never know which nodes are remote.
//
// gRPC over HTTP/2 is already in the module's graph through containerd's client; it gives
// flow control, deadlines, status codes that map onto containerd's errdefs classes and
// message size limits. The messages are CBOR (the dao types themselves, with their JSON
// field names) through a codec of this package, so no code generator is needed. Service
// [ServiceName], methods Join, Renew and Session.
//
// # Identity
//
// The control plane's CA is a cluster/pki.CA. A node joins once with a join token
// ([Join]): the token pins the CA, so the node trusts the control plane only if it shows
// that CA, and buys a certificate naming the node ([Identity], kept in the node's state
// directory with [Identity.Save] and [LoadIdentity]). From then on every connection is
// mutual TLS 1.3 and the server checks the client's certificate on every call against the
// CA (its authority, expiry, revocation, and whether the node was removed), so a refusal
// comes back as an error that says why rather than a TLS alert. The client renews its
// certificate at a random point between 50% and 80% of its lifetime; the current
// connection goes on, the next ones use the new one; no session outlives the certificate
// it was opened with. [Server.RemoveNode] removes a node for good, and
// [Server.RevokeCertificate] cuts off one certificate (a leaked key), closing its session. A join may not claim the ID of a node that is connected, or known and not down
// ([ErrNodeIDInUse]).
//
// # What a node may say
//
// A session's hello must name the node of its certificate; the node's status and
// availability are the control plane's, whatever the hello says. A node may report only
// the status of its own tasks (those of its last assignments, or that the store says are
// its own), only in the states a node reaches (preparing and after, but orphaned), and
// within dao's limits for strings and lists; anything else is refused, named in the
// acknowledgement ([ErrNotYourTask], [ErrProtocol]), and changes nothing. Messages are at
// most [DefaultMaxMessageBytes] (16 MiB) by default, batches at most 1,024 updates. A
// session that breaks the protocol is ended with an InvalidArgument status.
//
// # Connections, failures and partitions
//
// A client that loses its session dials again after a backoff with jitter (from
// [DefaultMinBackoff] to [DefaultMaxBackoff]); its new session replaces the old one on the
// server, if that one still lingers, so a node never has two. Status updates wait in the
// client until acknowledged and are sent again on the next session. The client numbers
// each update (dao.TaskStatus.Seq, and the hello's statuses, read after the updates
// queued before them) from one counter that only grows, kept in blocks in its state
// directory ([SeqFile], WithIdentityDir), and the control plane orders a task's statuses
// by these numbers, which it keeps in the store with them (so a replica that takes over
// orders them as the last did): not by the node's clock, which an edge device may set
// back, nor by arrival, which a resent update gets wrong. The client notices a
// dead connection by the silence of the control plane's heartbeat replies.
//
// The control plane tells two failures apart. A connection that closes while the node was
// talking on it is the node's program going away (its kernel closes the socket): the server
// calls orchestrator.Orchestrator.Disconnect, and the node's grace starts at once. A
// connection that falls silent is a network's doing: the orchestrator judges it by its
// heartbeat timeout and grace, and a node cut off for less than both finds everything as it
// left it. Meanwhile the local node keeps its containers running and restarts them by their
// restart policy; its assignment is on disk (edge.WithStateDir), so after a restart or a
// reboot with the control plane unreachable it starts them again; on reconnection the
// control plane takes the tasks it finds, and only a service's dao.DisconnectPolicy, or a
// node that stayed away past its grace, moves anything.
package cluster
