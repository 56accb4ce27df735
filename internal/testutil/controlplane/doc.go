// Package controlplane runs a whole control plane for remote nodes in one process, for
// tests and benchmarks: a cluster/pki CA with a join token, an orchestrator over the memory
// store, and a cluster.Server listening on a TCP address. Nodes join it with its Token at
// its Addr, as they would a real one.
package controlplane
