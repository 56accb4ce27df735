package simnode_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/opendao/dao"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/orchestrator/simnode"
)

// TestCloseLeavesNothingRunning makes clusters on the system clock, whose nodes run,
// crash, restart and beat on real timers, closes them while they are busy, many times,
// and checks that no goroutine is left and that no status or heartbeat is reported after
// Close returns. It does not run in parallel: goleak counts every goroutine of the
// process.
func TestCloseLeavesNothingRunning(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	for i := range 20 {
		var closed atomic.Bool
		var late atomic.Int64
		after := func() {
			if closed.Load() {
				late.Add(1)
			}
		}
		c, err := simnode.NewCluster(5,
			simnode.WithNodeOptions(simnode.WithStartLatency(simnode.Uniform(0, 2*time.Millisecond)),
				simnode.WithCrashes(0.5, simnode.Uniform(0, 2*time.Millisecond))),
			simnode.WithClusterStatusFunc(func(string, orchestrator.TaskUpdate) { after() }),
			simnode.WithClusterHeartbeat(time.Millisecond, func(string, time.Time) { after() }))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range c.Nodes() {
			var tasks []dao.Task
			for j := range 10 {
				tasks = append(tasks, simTask(fmt.Sprintf("%s.%d", n.ID(), j), dao.Resources{MilliCPU: 10}))
			}
			if err := n.Assign(orchestrator.Assignment{Revision: 1, Tasks: tasks}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Duration(i%5) * time.Millisecond)
		c.Close()
		closed.Store(true)
		time.Sleep(5 * time.Millisecond)
		if n := late.Load(); n > 0 {
			t.Fatalf("round %d: %d reports after Close returned", i, n)
		}
	}
	goleak.VerifyNone(t, ignore)
}
