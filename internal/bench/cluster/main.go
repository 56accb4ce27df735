// Command cluster runs the whole control plane at cluster scale on simulated nodes: an
// orchestrator over the memory store drives 5,000 simnode nodes through the same NodeAgent
// interface edge.Agent implements, and the clock runs from the first CreateService until every
// task is placed, then until every task runs (as the nodes report it back).
//
//	go run ./internal/bench/cluster [-nodes 5000] [-tasks 1000000] [-memprofile FILE]
//
// The workload is that of ../scheduler: nodes with zone (5 values) and tier labels, 64 cores
// and 256 GiB; services of 100, 500, 1,000, 2,000, 5,000 and 10,000 replicas in turn; 100m CPU
// and 64 MiB per task; spread over zones; every other service constrained to tier != db. It
// reports tasks per second to placed and to running, and the peak heap per task (sampled every
// 50 ms), store, scheduler and simulated nodes included.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"sync/atomic"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/orchestrator/simnode"
)

func main() {
	nodes := flag.Int("nodes", 5000, "simulated nodes")
	total := flag.Int("tasks", 1_000_000, "tasks")
	memprofile := flag.String("memprofile", "", "write a heap profile of what is live at the end to `file`")
	flag.Parse()
	if err := run(*nodes, *total, *memprofile); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

var sizes = []int{100, 500, 1000, 2000, 5000, 10000}

func run(nodes, total int, memprofile string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	go func() {
		var m runtime.MemStats
		for ctx.Err() == nil {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()

	store, err := orchestrator.NewMemoryStore()
	if err != nil {
		return err
	}
	defer store.Close()
	o, err := orchestrator.New(store, orchestrator.WithHeartbeatTimeout(time.Hour), orchestrator.WithGrace(time.Hour))
	if err != nil {
		return err
	}
	tiers := []string{"web", "db", "cache"}
	shape := simnode.Shape(func(i int, _ *rand.Rand, n *dao.Node) {
		n.Labels = map[string]string{"zone": fmt.Sprintf("zone-%d", i%5), "tier": tiers[i%3]}
		n.Capacity = dao.Resources{MilliCPU: 64000, Memory: 256 * dao.GiB}
		n.Allocatable = n.Capacity
	})
	cluster, err := simnode.NewCluster(nodes, simnode.WithShapes(shape),
		simnode.WithClusterStatusFunc(o.ReportStatus))
	if err != nil {
		return err
	}
	defer cluster.Close()
	go o.Run(ctx)
	for _, n := range cluster.Nodes() {
		if err := o.AddNode(ctx, n.Info(), n); err != nil {
			return err
		}
	}

	begin := time.Now()
	made, services := 0, 0
	for s := 0; made < total; s++ {
		n := min(sizes[s%len(sizes)], total-made)
		spec := dao.ServiceSpec{
			Name:      fmt.Sprintf("svc-%04d", s),
			Replicas:  n,
			Container: dao.ContainerSpec{Image: "registry.example.com/app:1", Resources: dao.Resources{MilliCPU: 100, Memory: 64 * dao.MiB}},
			Placement: dao.Placement{Spread: []string{"node.labels.zone"}},
		}
		if s%2 == 1 {
			spec.Placement.Constraints = []string{"node.labels.tier != db"}
		}
		if _, err := o.CreateService(ctx, spec); err != nil {
			return err
		}
		made += n
		services++
	}
	created := time.Since(begin)
	// The store says how far things are; reading it costs a pass over the tasks, so it is read
	// twice a second.
	var placedAt, runningAt time.Duration
	for {
		var count, placed, running int
		_ = store.View(ctx, func(tx orchestrator.ReadTx) error {
			for t := range tx.Tasks() {
				count++
				if t.NodeID != "" {
					placed++
				}
				if t.Status.State == dao.TaskRunning {
					running++
				}
			}
			return nil
		})
		if placedAt == 0 && count == total && placed == total {
			placedAt = time.Since(begin)
		}
		if running == total {
			runningAt = time.Since(begin)
			break
		}
		if time.Since(begin) > 10*time.Minute {
			return fmt.Errorf("after 10 minutes: %d of %d running", running, total)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if placedAt == 0 {
		placedAt = runningAt
	}
	fmt.Printf("%d tasks in %d services on %d simulated nodes (services created in %s)\n", total, services, nodes, created.Round(time.Millisecond))
	fmt.Printf("  all placed after %s: %.0f tasks/s\n", placedAt.Round(time.Millisecond), float64(total)/placedAt.Seconds())
	fmt.Printf("  all running after %s: %.0f tasks/s\n", runningAt.Round(time.Millisecond), float64(total)/runningAt.Seconds())
	runtime.GC()
	var live runtime.MemStats
	runtime.ReadMemStats(&live)
	fmt.Printf("  heap in use: peak %.0f MiB (%.0f B per task, garbage not yet collected included); live after GC %.0f MiB (%.0f B per task)\n",
		float64(peak.Load())/(1<<20), float64(peak.Load()-base.HeapInuse)/float64(total),
		float64(live.HeapInuse)/(1<<20), float64(live.HeapInuse-base.HeapInuse)/float64(total))
	fmt.Println("  (store with its event history, scheduler, simulated nodes and the tasks themselves)")
	if memprofile != "" {
		f, err := os.Create(memprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			return err
		}
	}
	// Everything above must still be live when the heap is measured and profiled.
	runtime.KeepAlive(o)
	runtime.KeepAlive(cluster)
	return nil
}
