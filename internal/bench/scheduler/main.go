// Command scheduler measures Dao's scheduler at cluster scale, on simulated nodes, in one
// process:
//
//	go run ./internal/bench/scheduler [-nodes 5000] [-tasks 1000000] [-runs 3]
//
// The nodes carry zone (5 values) and tier (web, db, cache) labels and the same capacity
// (64 cores, 256 GiB). Services of 100, 500, 1,000, 2,000, 5,000 and 10,000 replicas, in
// turn, make up the tasks; each task asks for 100m CPU and 64 MiB, every service spreads over
// zones, and every other service is constrained to node.labels.tier != db. The tasks exist
// before the clock starts (as they would in the store); the clock runs while the scheduler
// places them all, service by service. It reports placements per second, allocations per
// placement, and the heap in use after placing, per task (tasks included), for each run and
// the median.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/orchestrator/scheduler"
)

func main() {
	nodes := flag.Int("nodes", 5000, "simulated nodes")
	total := flag.Int("tasks", 1_000_000, "tasks to place")
	runs := flag.Int("runs", 3, "runs")
	flag.Parse()
	var rates, allocs, perTask []float64
	var walls []time.Duration
	for r := range *runs {
		res, err := run(*nodes, *total)
		if err != nil {
			fmt.Fprintln(os.Stderr, "scheduler:", err)
			os.Exit(1)
		}
		fmt.Printf("run %d: %d tasks on %d nodes in %s: %.0f placements/s, %.2f allocs/placement, %.0f B/task in use\n",
			r+1, res.placed, *nodes, res.wall.Round(time.Millisecond), res.rate, res.allocs, res.bytesPerTask)
		rates, allocs, perTask, walls = append(rates, res.rate), append(allocs, res.allocs), append(perTask, res.bytesPerTask), append(walls, res.wall)
	}
	fmt.Printf("median: %.0f placements/s, all placed in %s, %.2f allocs/placement, %.0f B/task in use\n",
		median(rates), medianD(walls).Round(time.Millisecond), median(allocs), median(perTask))
}

type result struct {
	placed       int
	wall         time.Duration
	rate         float64
	allocs       float64
	bytesPerTask float64
}

var sizes = []int{100, 500, 1000, 2000, 5000, 10000}

func run(nodes, total int) (result, error) {
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)

	s, err := scheduler.New()
	if err != nil {
		return result{}, err
	}
	tiers := []string{"web", "db", "cache"}
	for i := range nodes {
		s.SetNode(&dao.Node{
			ID:          fmt.Sprintf("node-%05d", i),
			Labels:      map[string]string{"zone": fmt.Sprintf("zone-%d", i%5), "tier": tiers[i%3]},
			Capacity:    dao.Resources{MilliCPU: 64000, Memory: 256 * dao.GiB},
			Allocatable: dao.Resources{MilliCPU: 64000, Memory: 256 * dao.GiB},
			Status:      dao.NodeStatus{State: dao.NodeReady},
		})
	}
	type service struct {
		id        string
		placement dao.Placement
		tasks     []*dao.Task
	}
	spec := dao.ContainerSpec{Image: "registry.example.com/app:1", Resources: dao.Resources{MilliCPU: 100, Memory: 64 * dao.MiB}}
	var services []service
	made := 0
	for i := 0; made < total; i++ {
		n := min(sizes[i%len(sizes)], total-made)
		svc := service{id: fmt.Sprintf("svc-%04d", i), placement: dao.Placement{Spread: []string{"node.labels.zone"}}}
		if i%2 == 1 {
			svc.placement.Constraints = []string{"node.labels.tier != db"}
		}
		svc.tasks = make([]*dao.Task, n)
		for j := range svc.tasks {
			svc.tasks[j] = &dao.Task{ID: fmt.Sprintf("%s-%d", svc.id, j+1), ServiceID: svc.id, ServiceVersion: 1,
				Slot: j + 1, Spec: spec, DesiredState: dao.TaskRunning}
		}
		services = append(services, svc)
		made += n
	}

	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	begin := time.Now()
	placed := 0
	for _, svc := range services {
		p, err := s.Placer(svc.id, 1, svc.placement)
		if err != nil {
			return result{}, err
		}
		for _, d := range s.Place(p, svc.tasks) {
			if d.Err != nil {
				return result{}, fmt.Errorf("task %s: %w", d.Task.ID, d.Err)
			}
			d.Task.NodeID = d.NodeID
			placed++
		}
	}
	wall := time.Since(begin)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)

	// Quality: how even is each service over zones and over nodes, and did constraints hold?
	worstZone, worstNode := 0, 0
	for i, svc := range services {
		perZone := map[string]int{}
		perNode := map[string]int{}
		for _, t := range svc.tasks {
			n := s.Node(t.NodeID).Node()
			if i%2 == 1 && n.Labels["tier"] == "db" {
				return result{}, fmt.Errorf("task %s on %s breaks its constraint", t.ID, n.ID)
			}
			perZone[n.Labels["zone"]]++
			perNode[n.ID]++
		}
		worstZone = max(worstZone, spread(perZone, 5))
		eligible := nodes
		if i%2 == 1 {
			eligible = nodes * 2 / 3
		}
		worstNode = max(worstNode, spread(perNode, eligible))
	}
	if worstZone > 1 {
		fmt.Printf("  worst zone imbalance of a service: %d tasks (max - min)\n", worstZone)
	}
	fmt.Printf("  worst imbalance over eligible nodes of a service: %d tasks (max - min); over zones: %d\n", worstNode, worstZone)
	runtime.GC()
	var kept runtime.MemStats
	runtime.ReadMemStats(&kept)
	runtime.KeepAlive(services)
	runtime.KeepAlive(s)
	return result{
		placed:       placed,
		wall:         wall,
		rate:         float64(placed) / wall.Seconds(),
		allocs:       float64(after.Mallocs-before.Mallocs) / float64(placed),
		bytesPerTask: float64(kept.HeapInuse-base.HeapInuse) / float64(placed),
	}, nil
}

// spread returns max - min of the counts over n buckets (missing buckets count 0).
func spread(counts map[string]int, n int) int {
	lo, hi := -1, 0
	for _, c := range counts {
		hi = max(hi, c)
		if lo < 0 || c < lo {
			lo = c
		}
	}
	if len(counts) < n {
		lo = 0
	}
	return hi - lo
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

func medianD(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
