package simnode_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/clock"
	shared "github.com/opendao/dao/internal/testutil/fixture"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/orchestrator/simnode"
)

// BenchmarkClusterRunTasks runs b.N tasks on 5,000 nodes, with start latencies of 1-3s on
// a manual clock: each node gets its tasks in assignments of 10 more at a time (the full
// set each time, as a dispatcher sends it), then the clock runs until every task runs.
// ns/op and B/task are per task.
func BenchmarkClusterRunTasks(b *testing.B) {
	const nodes, step = 5000, 10
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	running := 0
	before := shared.HeapInUse()
	c, err := simnode.NewCluster(nodes, simnode.WithClusterSeed(1),
		simnode.WithNodeOptions(simnode.WithClock(clk), simnode.WithValidation(false),
			simnode.WithStartLatency(simnode.Uniform(time.Second, 3*time.Second))),
		simnode.WithClusterStatusFunc(func(_ string, u orchestrator.TaskUpdate) {
			if u.Status.State == dao.TaskRunning {
				running++
			}
		}))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	perNode := make([][]dao.Task, nodes)
	spec := dao.ContainerSpec{Image: "registry.example.com/web:1.0", Resources: dao.Resources{MilliCPU: 10, Memory: dao.MiB}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += nodes * step {
		for j, n := range c.Nodes() {
			for k := range step {
				id := i + j*step + k
				if id >= b.N {
					break
				}
				perNode[j] = append(perNode[j], dao.Task{ID: fmt.Sprintf("web.%d", id), ServiceID: "web",
					Spec: spec, DesiredState: dao.TaskRunning})
			}
			if err := n.Assign(orchestrator.Assignment{Revision: uint64(i + 1), Tasks: perNode[j]}); err != nil {
				b.Fatal(err)
			}
		}
		clk.Advance(time.Second)
	}
	for clk.Step() {
	}
	b.StopTimer()
	if running != b.N {
		b.Fatalf("%d tasks running, want %d", running, b.N)
	}
	clear(perNode)
	b.ReportMetric(float64(shared.HeapInUse()-before)/float64(b.N), "B/task")
	runtime.KeepAlive(c)
}
