// Command cluster runs the whole control plane at cluster scale on simulated nodes: an
// orchestrator over the memory store drives 5,000 simnode nodes through the same NodeAgent
// interface edge.Agent implements, and the clock runs from the first CreateService until every
// task is placed, then until every task runs (as the nodes report it back).
//
//	go run ./internal/bench/cluster [-nodes 5000] [-tasks 1000000] [-cpuprofile FILE] [-memprofile FILE]
//
// The workload is that of ../scheduler: nodes with zone (5 values) and tier labels, 64 cores
// and 256 GiB; services of 100, 500, 1,000, 2,000, 5,000 and 10,000 replicas in turn; 100m CPU
// and 64 MiB per task; spread over zones; every other service constrained to tier != db. It
// reports tasks per second to placed and to running, the peak heap per task (sampled every
// 50 ms), and the live heap per task when all run and once the loops are idle; store,
// scheduler and simulated nodes included. Progress is counted from the store's events, not
// by reading the store, which would hold up its writers.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/orchestrator/simnode"
)

// liveHeap collects garbage and returns the bytes of heap in use.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// add adds n for each count t is in: it exists, is on a node, runs.
func (p progress) add(t *dao.Task, n int) progress {
	p.count += n
	if t.NodeID != "" {
		p.placed += n
	}
	if t.Status.State == dao.TaskRunning {
		p.running += n
	}
	return p
}

func main() {
	nodes := flag.Int("nodes", 5000, "simulated nodes")
	total := flag.Int("tasks", 1_000_000, "tasks")
	memprofile := flag.String("memprofile", "", "write a heap profile of what is live at the end to `file`")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to `file`")
	verbose := flag.Bool("v", false, "print the orchestrator's warnings (a watch that fell behind, for one)")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "cluster:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "cluster:", err)
			os.Exit(1)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	if err := run(*nodes, *total, *memprofile, *verbose); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

// progress counts tasks.
type progress struct{ count, placed, running int }

var sizes = []int{100, 500, 1000, 2000, 5000, 10000}

func run(nodes, total int, memprofile string, verbose bool) error {
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
	log := slog.New(slog.DiscardHandler)
	if verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	o, err := orchestrator.New(store, orchestrator.WithHeartbeatTimeout(time.Hour), orchestrator.WithGrace(time.Hour),
		orchestrator.WithLogger(log))
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

	// Progress comes from the store's task events, counted as they pass: reading the store
	// costs a copy of every task under a read lock that holds up every writer, so it is read
	// only to start, and again when the watch falls behind.
	var (
		pmu  sync.Mutex
		prog progress
	)
	watchErr := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			var rev uint64
			var p progress
			err := store.View(ctx, func(tx orchestrator.ReadTx) error {
				rev = tx.Revision()
				for t := range tx.Tasks() {
					p = p.add(&t.Task, 1)
				}
				return nil
			})
			if err != nil {
				watchErr <- err
				return
			}
			pmu.Lock()
			prog = p
			pmu.Unlock()
			events, err := store.Watch(ctx, rev+1, orchestrator.WatchTypes(orchestrator.TaskObject))
			if err != nil {
				continue // compacted: read again
			}
			for e := range events {
				if e.Err != nil {
					break // fell behind: read again
				}
				var d progress
				if e.Kind != orchestrator.EventDeleted {
					d = d.add(&e.Task.Task, 1)
				}
				if p := e.PrevTask; p != nil {
					d = d.add(&p.Task, -1)
				} else if e.Kind == orchestrator.EventDeleted {
					d = d.add(&e.Task.Task, -1)
				}
				pmu.Lock()
				prog.count += d.count
				prog.placed += d.placed
				prog.running += d.running
				pmu.Unlock()
			}
		}
	}()

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
	var placedAt, runningAt time.Duration
	for {
		pmu.Lock()
		p := prog
		pmu.Unlock()
		if placedAt == 0 && p.count == total && p.placed == total {
			placedAt = time.Since(begin)
		}
		if p.running == total {
			runningAt = time.Since(begin)
			break
		}
		select {
		case err := <-watchErr:
			return err
		default:
		}
		if time.Since(begin) > 10*time.Minute {
			return fmt.Errorf("after 10 minutes: %d of %d running", p.running, total)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if placedAt == 0 {
		placedAt = runningAt
	}
	fmt.Printf("%d tasks in %d services on %d simulated nodes (services created in %s)\n", total, services, nodes, created.Round(time.Millisecond))
	fmt.Printf("  all placed after %s: %.0f tasks/s\n", placedAt.Round(time.Millisecond), float64(total)/placedAt.Seconds())
	fmt.Printf("  all running after %s: %.0f tasks/s\n", runningAt.Round(time.Millisecond), float64(total)/runningAt.Seconds())
	liveNow := liveHeap()
	// The loop is still at work on the last reports (a pass, the watch's buffer): the heap
	// settles once it is idle, which takes seconds at a million tasks.
	settled := liveNow
	for range 15 {
		time.Sleep(time.Second)
		settled = min(settled, liveHeap())
	}
	perTask := func(h uint64) float64 { return float64(h-base.HeapInuse) / float64(total) }
	fmt.Printf("  heap in use: peak %.0f MiB (%.0f B per task, garbage not yet collected included)\n",
		float64(peak.Load())/(1<<20), perTask(peak.Load()))
	fmt.Printf("  live after GC: %.0f MiB (%.0f B per task) when all run; %.0f MiB (%.0f B per task) once the loops are idle\n",
		float64(liveNow)/(1<<20), perTask(liveNow), float64(settled)/(1<<20), perTask(settled))
	fmt.Println("  (store with its event history, scheduler, simulated nodes and the tasks themselves)")
	if memprofile != "" {
		runtime.GC() // the profile is that of the last two collections
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
