package testutil

import (
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/opendao/dao/internal/daemon"
)

// Etcd is a private etcd cluster for one test, its members on 127.0.0.1 with their data under
// a temporary directory. StartEtcd starts it; when the test ends every member is killed, the
// firewall rules of partitioned members and the directory are removed, and the tail of each
// member's log is printed if the test failed.
type Etcd struct {
	*daemon.EtcdCluster

	t testing.TB
}

// StartEtcd starts a cluster of n members for t, with opts (such as
// daemon.WithEtcdTimings(10*time.Millisecond, 100*time.Millisecond) for quick failovers), and
// waits until it has a leader and every member answers. It skips or fails the test as
// RequireIntegration says when etcd is not installed. Tests that partition members should
// also require "iptables".
func StartEtcd(t testing.TB, n int, opts ...daemon.EtcdOption) *Etcd {
	t.Helper()
	RequireIntegration(t, "etcd")
	c, err := daemon.StartEtcd(n, opts...)
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	e := &Etcd{EtcdCluster: c, t: t}
	t.Cleanup(e.cleanup)
	return e
}

// Client returns a client of the cluster for t, closed when t ends: of endpoints, or of every
// member's endpoint when none are given. It logs nothing; its calls' errors say what failed.
func (e *Etcd) Client(t testing.TB, endpoints ...string) *clientv3.Client {
	t.Helper()
	if len(endpoints) == 0 {
		endpoints = e.Endpoints()
	}
	cl, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("etcd client of %v: %v", endpoints, err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func (e *Etcd) cleanup() {
	if e.t.Failed() {
		const keep = 4 << 10
		for _, m := range e.Members() {
			log := m.Log()
			if len(log) > keep {
				log = "...\n" + log[len(log)-keep:]
			}
			e.t.Logf("etcd member %s log (%s):\n%s", m.Name, m.LogPath, log)
		}
	}
	if err := e.Close(); err != nil {
		e.t.Errorf("close etcd in %s: %v", e.Dir, err)
	}
}
