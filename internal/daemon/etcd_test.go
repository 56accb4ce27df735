package daemon_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/opendao/dao/internal/daemon"
	"github.com/opendao/dao/internal/testutil"
)

// BenchmarkEtcdStart measures StartEtcd: from nothing to a cluster whose members all answer
// and agree on a leader, with etcd's timings and with quick ones (the first election waits a
// random part of the election timeout). Run it with -benchtime=1x -count=5 for five samples.
func BenchmarkEtcdStart(b *testing.B) {
	testutil.RequireIntegration(b, "etcd")
	for _, tc := range []struct {
		name string
		n    int
		opts []daemon.EtcdOption
	}{
		{"members=1", 1, nil},
		{"members=3", 3, nil},
		{"members=1/quick", 1, []daemon.EtcdOption{daemon.WithEtcdTimings(20*time.Millisecond, 200*time.Millisecond)}},
		{"members=3/quick", 3, []daemon.EtcdOption{daemon.WithEtcdTimings(20*time.Millisecond, 200*time.Millisecond)}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var total time.Duration
			for range b.N {
				start := time.Now()
				c, err := daemon.StartEtcd(tc.n, tc.opts...)
				if err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
				b.StopTimer()
				if err := c.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "start-ms/op")
		})
	}
}

// BenchmarkEtcdFailover kills the leader of three members and measures how long until another
// member says it leads (leader-ms) and until a put through the two others succeeds (put-ms),
// with etcd's timings (100ms heartbeat, 1s election timeout) and with quick ones.
func BenchmarkEtcdFailover(b *testing.B) {
	testutil.RequireIntegration(b, "etcd")
	for _, tc := range []struct {
		name                string
		heartbeat, election time.Duration
	}{
		{"default", 100 * time.Millisecond, time.Second},
		{"quick", 20 * time.Millisecond, 200 * time.Millisecond},
		{"quicker", 10 * time.Millisecond, 100 * time.Millisecond},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var toLeader, toPut time.Duration
			for range b.N {
				b.StopTimer()
				c, err := daemon.StartEtcd(3, daemon.WithEtcdTimings(tc.heartbeat, tc.election))
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				old, err := c.Leader(ctx)
				if err != nil {
					b.Fatal(err)
				}
				var others []string
				for i, ep := range c.Endpoints() {
					if i != old {
						others = append(others, ep)
					}
				}
				// Two clients, one to wait for the leader, one to put: a put waiting for a
				// leader would not wait for the other.
				cl, err := clientv3.New(clientv3.Config{Endpoints: others, Logger: zap.NewNop()})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := cl.Put(ctx, "warm", "up"); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				killed := time.Now()
				c.Member(old).Kill()
				leaderc := make(chan time.Duration, 1)
				go func() {
					i, err := c.Leader(ctx)
					if err != nil || i == old {
						leaderc <- -1
						return
					}
					leaderc <- time.Since(killed)
				}()
				for {
					actx, acancel := context.WithTimeout(ctx, 50*time.Millisecond)
					_, err := cl.Put(actx, "k", "v")
					acancel()
					if err == nil {
						break
					}
					if ctx.Err() != nil {
						b.Fatalf("no put after the leader was killed: %v", err)
					}
				}
				toPut += time.Since(killed)
				d := <-leaderc
				if d < 0 {
					b.Fatal("no new leader")
				}
				toLeader += d
				b.StopTimer()
				cancel()
				cl.Close()
				if err := c.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(toLeader.Milliseconds())/float64(b.N), "leader-ms/op")
			b.ReportMetric(float64(toPut.Milliseconds())/float64(b.N), "put-ms/op")
		})
	}
}
