// Command scheduler shows Dao's control plane placing a large workload on thousands of nodes,
// in one process and in a few seconds, and how evenly it spreads it.
//
//	go run ./examples/scheduler [-nodes 5000] [-tasks 100000] [-start 500ms]
//
// The nodes are simulated (package orchestrator/simnode): each one takes its assignment from
// the orchestrator through the same interface a real edge node does, "starts" each task after
// a random delay of up to -start, and reports its status back, but runs nothing. The
// machines come in three sizes (8, 16 and 32 cores), sit in five zones, and serve one of
// three tiers (web, cache, db). The workload is services of 100 to 10,000 replicas, each
// replica asking for 100m CPU and 64 MiB; every service spreads its replicas over the zones,
// and every other one must keep off the db tier (node.labels.tier != db).
//
// The orchestrator, over its in-memory store, turns each service into tasks, the scheduler
// places them, the dispatcher hands every node its tasks, and the nodes report them running.
// The program shows the progress as it happens, then the placement speed, how the tasks
// ended up spread over nodes and zones, whether every constraint held, and the memory the
// whole control plane needs per task. It needs no containerd, no root and no network.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/orchestrator/simnode"
)

// config is what the flags set.
type config struct {
	nodes int
	tasks int
	// start is the longest a simulated node takes to start a task; each task draws its delay
	// uniformly from [start/10, start].
	start time.Duration
	// progressEvery is how often the progress line is printed.
	progressEvery time.Duration
}

func main() {
	cfg := config{progressEvery: 250 * time.Millisecond}
	flag.IntVar(&cfg.nodes, "nodes", 5000, "number of simulated nodes")
	flag.IntVar(&cfg.tasks, "tasks", 100_000, "number of tasks (replicas, over all services) to place")
	flag.DurationVar(&cfg.start, "start", 500*time.Millisecond, "longest time a simulated node takes to start a task")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "scheduler:", err)
		os.Exit(1)
	}
}

// What every task asks for, and the machines the nodes are.
var (
	taskResources = dao.Resources{MilliCPU: 100, Memory: 64 * dao.MiB}
	machineSizes  = []dao.Resources{
		{MilliCPU: 8000, Memory: 32 * dao.GiB},
		{MilliCPU: 16000, Memory: 64 * dao.GiB},
		{MilliCPU: 32000, Memory: 128 * dao.GiB},
	}
	zones        = []string{"zone-a", "zone-b", "zone-c", "zone-d", "zone-e"}
	serviceSizes = []int{100, 500, 1000, 2000, 5000, 10000}
)

// avoidsDB says whether service number i must keep off the db tier.
func avoidsDB(i int) bool { return i%2 == 1 }

func run(ctx context.Context, out io.Writer, cfg config) error {
	if cfg.nodes < 1 || cfg.tasks < 1 {
		return fmt.Errorf("need at least one node and one task, not %d nodes and %d tasks", cfg.nodes, cfg.tasks)
	}
	if cfg.start < 0 {
		return fmt.Errorf("start delay %s: must not be negative", cfg.start)
	}
	if cfg.progressEvery <= 0 {
		cfg.progressEvery = 250 * time.Millisecond
	}
	if err := checkFits(cfg); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	began := time.Now()
	fmt.Fprintf(out, "Dao's scheduler at scale: %d tasks on %d simulated nodes (%d CPUs, %s)\n",
		cfg.tasks, cfg.nodes, runtime.NumCPU(), runtime.Version())

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)

	// 1. The control plane: an orchestrator over an in-memory store. The simulated nodes send
	// no heartbeats, so the orchestrator is told to wait an hour before calling one lost.
	store, err := orchestrator.NewMemoryStore()
	if err != nil {
		return err
	}
	defer store.Close()
	o, err := orchestrator.New(store, orchestrator.WithHeartbeatTimeout(time.Hour), orchestrator.WithGrace(time.Hour))
	if err != nil {
		return err
	}

	// 2. The nodes. Each status change they report is counted on its way to the orchestrator.
	step(out, "building %d simulated nodes: 3 machine sizes, 5 zones, 3 tiers", cfg.nodes)
	t := time.Now()
	var counts progress
	tiers := simnode.WeightedLabel("tier", map[string]int{"web": 3, "cache": 1, "db": 1})
	cluster, err := simnode.NewCluster(cfg.nodes,
		simnode.WithClusterSeed(1),
		simnode.WithShapes(simnode.Capacity(machineSizes...), simnode.Label("zone", zones...), tiers),
		simnode.WithNodeOptions(simnode.WithStartLatency(simnode.Uniform(cfg.start/10, cfg.start))),
		simnode.WithClusterStatusFunc(func(nodeID string, u orchestrator.TaskUpdate) {
			counts.saw(u.Status.State)
			o.ReportStatus(nodeID, u)
		}))
	if err != nil {
		return err
	}
	defer cluster.Close()
	// Nodes may join before or while the control loops run; here they join first.
	for _, n := range cluster.Nodes() {
		if err := o.AddNode(ctx, n.Info(), n); err != nil {
			return err
		}
	}
	var loops sync.WaitGroup
	defer loops.Wait()
	defer cancel()
	loops.Add(1)
	go func() {
		defer loops.Done()
		_ = o.Run(ctx)
	}()
	done(out, "%d nodes registered with the orchestrator in %s", cfg.nodes, since(t))

	// 3. The workload.
	services := plan(cfg.tasks)
	step(out, "creating %d services with %d replicas in all (100m CPU and 64 MiB each)", len(services), cfg.tasks)
	begin := time.Now()
	for _, spec := range services {
		if _, err := o.CreateService(ctx, spec); err != nil {
			return err
		}
	}
	done(out, "created in %s; now the scheduler places them and the nodes start them", since(begin))

	// 4. Progress, until every task runs.
	placedIn, runningIn, err := follow(ctx, out, &counts, cfg, begin)
	if err != nil {
		return err
	}

	// 5. What it cost, and where everything went.
	runtime.GC()
	var live runtime.MemStats
	runtime.ReadMemStats(&live)
	perTask := float64(live.HeapInuse-min(base.HeapInuse, live.HeapInuse)) / float64(cfg.tasks)

	step(out, "results")
	fmt.Fprintf(out, "    placement speed   %s placements/s: all %d tasks placed and handed to their nodes in %s\n",
		thousands(float64(cfg.tasks)/placedIn.Seconds()), cfg.tasks, round(placedIn))
	fmt.Fprintf(out, "    running           all %d running after %s (%s tasks/s, start delays of up to %s included)\n",
		cfg.tasks, round(runningIn), thousands(float64(cfg.tasks)/runningIn.Seconds()), cfg.start)
	fmt.Fprintf(out, "    memory            %s bytes per task: %.0f MiB of heap in use for store, history, scheduler and nodes\n",
		thousands(perTask), float64(live.HeapInuse)/(1<<20))
	if err := report(ctx, out, o, cluster, services); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nscheduler example finished in %s\n", since(began))
	return nil
}

// checkFits refuses a workload larger than the cluster, which would leave tasks pending
// for ever.
func checkFits(cfg config) error {
	var cpu int64
	for i := range cfg.nodes {
		cpu += machineSizes[i%len(machineSizes)].MilliCPU
	}
	if need := int64(cfg.tasks) * taskResources.MilliCPU; need > cpu*8/10 {
		return fmt.Errorf("%d tasks of %dm CPU need %d cores, more than 80%% of the %d cores of %d nodes: ask for fewer tasks or more nodes",
			cfg.tasks, taskResources.MilliCPU, need/1000, cpu/1000, cfg.nodes)
	}
	return nil
}

// plan returns services of 100, 500, 1,000, 2,000, 5,000 and 10,000 replicas in turn (the
// last one cut to fit) that add up to tasks.
func plan(tasks int) []dao.ServiceSpec {
	var specs []dao.ServiceSpec
	for i, made := 0, 0; made < tasks; i++ {
		n := min(serviceSizes[i%len(serviceSizes)], tasks-made)
		spec := dao.ServiceSpec{
			Name:      fmt.Sprintf("svc-%03d", i+1),
			Replicas:  n,
			Container: dao.ContainerSpec{Image: "registry.example.com/app:1.0", Resources: taskResources},
			Placement: dao.Placement{Spread: []string{"node.labels.zone"}},
		}
		if avoidsDB(i) {
			spec.Placement.Constraints = []string{"node.labels.tier != db"}
		}
		specs = append(specs, spec)
		made += n
	}
	return specs
}

// progress counts what the nodes report: tasks they accepted (placed, dispatched and
// preparing), tasks running, tasks rejected.
type progress struct {
	accepted, running, rejected atomic.Int64
}

func (p *progress) saw(s dao.TaskState) {
	switch s {
	case dao.TaskPreparing:
		p.accepted.Add(1)
	case dao.TaskRunning:
		p.running.Add(1)
	case dao.TaskRejected:
		p.rejected.Add(1)
	}
}

// follow prints a progress line every cfg.progressEvery until every task runs, and returns
// how long after begin the last task reached its node, and the last one ran. It gives up
// when nothing moves for 30 seconds.
func follow(ctx context.Context, out io.Writer, p *progress, cfg config, begin time.Time) (placedIn, runningIn time.Duration, err error) {
	total := int64(cfg.tasks)
	tick := time.NewTicker(5 * time.Millisecond) // fine enough to time the end precisely
	defer tick.Stop()
	lastPrint, lastMove := time.Now(), time.Now()
	var lastSeen int64
	line := func(now time.Time) {
		acc, run := p.accepted.Load(), p.running.Load()
		fmt.Fprintf(out, "    %6.2fs  placed %s %*d/%d   running %s %*d/%d\n", now.Sub(begin).Seconds(),
			bar(acc, total), digits(total), acc, total, bar(run, total), digits(total), run, total)
	}
	for {
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case now := <-tick.C:
			acc, run, rej := p.accepted.Load(), p.running.Load(), p.rejected.Load()
			if rej > 0 {
				return 0, 0, fmt.Errorf("%d tasks were rejected by their nodes: the scheduler overcommitted a node", rej)
			}
			if placedIn == 0 && acc >= total {
				placedIn = now.Sub(begin)
			}
			if run >= total {
				runningIn = now.Sub(begin)
				line(now)
				return placedIn, runningIn, nil
			}
			if acc+run != lastSeen {
				lastSeen, lastMove = acc+run, now
			}
			if now.Sub(lastMove) > 30*time.Second {
				return 0, 0, fmt.Errorf("no progress for 30s: %d of %d tasks placed, %d running", acc, total, run)
			}
			if now.Sub(lastPrint) >= cfg.progressEvery {
				lastPrint = now
				line(now)
			}
		}
	}
}

// report prints how the tasks are spread over nodes, machine sizes, tiers and zones, and
// checks the constraints.
func report(ctx context.Context, out io.Writer, o *orchestrator.Orchestrator, cluster *simnode.Cluster, services []dao.ServiceSpec) error {
	nodes := map[string]dao.Node{}
	for _, n := range cluster.Infos() {
		nodes[n.ID] = n
	}
	perNode := map[string]int{}
	perZone := map[string]int{}
	worstZone, worstZoneSvc := -1, ""
	constrained, broken := 0, 0
	for i, spec := range services {
		tasks, err := o.Tasks(ctx, orchestrator.TaskFilter{ServiceID: spec.Name, Live: true})
		if err != nil {
			return err
		}
		if len(tasks) != spec.Replicas {
			return fmt.Errorf("service %s has %d live tasks, want %d", spec.Name, len(tasks), spec.Replicas)
		}
		zoneCount := map[string]int{}
		for _, t := range tasks {
			n, ok := nodes[t.NodeID]
			if !ok {
				return fmt.Errorf("task %s is on unknown node %q", t.ID, t.NodeID)
			}
			perNode[n.ID]++
			perZone[n.Labels["zone"]]++
			zoneCount[n.Labels["zone"]]++
			if avoidsDB(i) && n.Labels["tier"] == "db" {
				broken++
			}
		}
		if avoidsDB(i) {
			constrained++
		}
		if d := spreadOf(zoneCount, len(zones)); d > worstZone {
			worstZone, worstZoneSvc = d, fmt.Sprintf("%s (%d replicas)", spec.Name, spec.Replicas)
		}
	}

	counts := make([]int, 0, len(nodes))
	bySize := map[string][]int{}
	byTier := map[string][]int{}
	for id, n := range nodes {
		c := perNode[id]
		counts = append(counts, c)
		size := fmt.Sprintf("%2d cores", n.Capacity.MilliCPU/1000) // padded, to sort by size
		bySize[size] = append(bySize[size], c)
		byTier[n.Labels["tier"]] = append(byTier[n.Labels["tier"]], c)
	}
	slices.Sort(counts)
	pct := func(p int) int { return counts[(len(counts)-1)*p/100] }
	fmt.Fprintf(out, "    tasks per node    min %d, median %d, 90th percentile %d, max %d (mean %.1f over %d nodes)\n",
		counts[0], pct(50), pct(90), counts[len(counts)-1], mean(counts), len(counts))
	fmt.Fprintf(out, "      by machine     %s\n", means(bySize))
	fmt.Fprintf(out, "      by tier         %s (db nodes take only the services allowed there)\n", means(byTier))
	var zs []string
	for _, z := range zones {
		zs = append(zs, fmt.Sprintf("%s %d", z, perZone[z]))
	}
	fmt.Fprintf(out, "    tasks per zone    %s\n", strings.Join(zs, ", "))
	if worstZone == 0 {
		fmt.Fprintf(out, "    zone spread       every service has as many replicas in each zone as in the others\n")
	} else {
		fmt.Fprintf(out, "    zone spread       the most uneven service, %s, has %d more in its fullest zone than in its emptiest\n",
			worstZoneSvc, worstZone)
	}
	if broken > 0 {
		return fmt.Errorf("%d tasks of services constrained to node.labels.tier != db run on db nodes", broken)
	}
	fmt.Fprintf(out, "    constraints       %d of %d services must keep off the db tier: none of their tasks is there\n",
		constrained, len(services))
	return nil
}

// means returns "key: mean tasks per node" for each group, by key.
func means(groups map[string][]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(groups)) {
		parts = append(parts, fmt.Sprintf("%s: %.1f", k, mean(groups[k])))
	}
	return strings.Join(parts, ", ")
}

// spreadOf returns max - min of counts over n buckets (missing buckets count 0).
func spreadOf(counts map[string]int, n int) int {
	lo, hi := -1, 0
	for _, c := range counts {
		hi = max(hi, c)
		if lo < 0 || c < lo {
			lo = c
		}
	}
	if len(counts) < n || lo < 0 {
		lo = 0
	}
	return hi - lo
}

func mean(xs []int) float64 {
	sum := 0
	for _, x := range xs {
		sum += x
	}
	return float64(sum) / float64(max(len(xs), 1))
}

// bar draws n of total as a bar of 20 cells.
func bar(n, total int64) string {
	const width = 20
	full := int(n * width / max(total, 1))
	return "[" + strings.Repeat("#", full) + strings.Repeat(".", width-full) + "]"
}

func digits(n int64) int { return len(fmt.Sprint(n)) }

// thousands formats x rounded, with commas between groups of three digits.
func thousands(x float64) string {
	s := fmt.Sprintf("%.0f", x)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func step(out io.Writer, format string, args ...any) {
	fmt.Fprintf(out, "\n==> %s\n", fmt.Sprintf(format, args...))
}

func done(out io.Writer, format string, args ...any) {
	fmt.Fprintf(out, "    %s\n", fmt.Sprintf(format, args...))
}

func since(t time.Time) string { return round(time.Since(t)) }

// round rounds d to the millisecond, or to the microsecond below one.
func round(d time.Duration) string {
	if d < time.Millisecond {
		return d.Round(time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}
