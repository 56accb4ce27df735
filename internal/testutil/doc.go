// Package testutil gives Dao's tests the real things they run against: a private containerd
// daemon per test, OCI images built on the spot from busybox-static and from our own test
// program, and the rule that decides whether a missing dependency skips a test or fails it.
//
// StartRegistry runs Debian's docker-registry (CNCF Distribution) on 127.0.0.1, with optional
// htpasswd or token authentication, for the registry client's tests.
//
// StartEtcd runs a cluster of Debian's etcd (3.4) of one or more members on 127.0.0.1, and
// Etcd.Client gives a client of it (go.etcd.io/etcd/client/v3). Its members, from
// daemon.EtcdCluster, can be killed, stopped, started again, paused and partitioned from their
// peers and clients with iptables, for tests of what a store does when etcd fails; the
// options of daemon.StartEtcd set etcd's limits and raft timings.
//
// Integration tests call RequireIntegration (directly or through StartContainerd). When the
// environment variable DAO_REQUIRE_INTEGRATION is set, as `make test` and CI set it, a missing
// dependency fails the test; otherwise it skips with the reason.
//
// Package edgetest, beside it, opens edge Runtimes over StartContainerd's daemon for the tests
// of edge and pipeline; testutil itself does not import edge, so that the tests of packages
// edge imports may use it.
//
// Nothing here installs anything: `make test` installs the Debian packages.
package testutil
