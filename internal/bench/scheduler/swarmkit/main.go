// Command swarmkit runs Dao's scheduler and swarmkit's scheduler side by side, in one process
// and one run, on the same simulated cluster and the same tasks, and prints placements per
// second for both:
//
//	cd internal/bench/scheduler/swarmkit && go run .
//
// Flags: -nodes 1000,5000 (cluster sizes), -tasks 10000, -runs 3, -oneoff (see below),
// -timeout 2m (per swarmkit run), -cpuprofile FILE. A run with the defaults takes seconds.
//
// It is a nested module so that swarmkit (github.com/moby/swarmkit/v2, its real
// manager/scheduler and manager/state/store packages) and its dependencies never enter Dao's
// own go.mod; Dao comes in through a replace of the working tree.
//
// The workload has the shape of ../main.go, smaller so that swarmkit finishes in reasonable
// time: nodes with zone (5 values) and tier (web, db, cache) labels and 64 cores / 256 GiB
// each; services of 100, 500, 1,000, 2,000, 5,000 and 10,000 replicas in turn up to the task
// count (10,000 tasks: six services, the last of 1,400); each task reserves 100m CPU and
// 64 MiB; every service spreads over node.labels.zone, and every other one is constrained to
// node.labels.tier != db. Both sides get the same node IDs, labels, capacities, task IDs and
// services. Each side's placements are checked afterwards (swarmkit's as read back from its
// store): every task placed, no constraint broken, and how even each service is over zones
// and over its eligible nodes.
//
// What is timed:
//
//   - dao, scheduler alone: the Placer and Place of a scheduler.Scheduler (package
//     orchestrator/scheduler, imported as daosched) for every service, exactly what
//     ../main.go times (the scheduler already holds the nodes; nothing is written but the
//     task's NodeID).
//   - dao, decisions: the same plus reading the snapshot from Dao's own store (the nodes
//     and the tasks on no node, from an orchestrator.MemoryStore that holds them before the
//     clock starts) and building the scheduler's node set (daosched.New, SetNode for every
//     node), which swarmkit's figure below also includes.
//   - dao, end to end: the decisions plus the commit of every placement into that store,
//     as the orchestrator's scheduling pass writes it: one Update per service, each task
//     read again, checked unchanged and written with NodeID, state assigned and a
//     timestamp (the store copies it, keeps its indexes and publishes the events). Both
//     the read and the commit use orchestrator.SharedReads, as the orchestrator's loops do.
//   - swarmkit, decisions: swarmkit's scheduler used as swarmkit uses it. The nodes (ready,
//     with resources and labels), the services and their tasks (pending, desired running,
//     with the service's SpecVersion, as swarmkit's orchestrators create them, so that a
//     service's tasks are scheduled as one group) are created in a memdb store
//     (store.NewMemoryStore) before the clock starts. The clock starts when
//     scheduler.New(store).Run is called. Since every task is in the store when Run starts,
//     all are decided in its first tick, before it writes anything; this figure stops at the
//     last decision, read from the Status.Timestamp the scheduler gives each task as it
//     decides. It includes Run reading its snapshot from the store and building its node set.
//   - swarmkit, end to end: the same run until every task has been seen, through a store
//     watch, updated with NodeID set and state ASSIGNED: the decisions plus writing all the
//     placements into the memdb store (a copy of each task, index updates, events), as
//     swarmkit must before anything acts on them.
//
// The like-for-like pairs are "decisions" (both: snapshot read from the store, node set
// built, every task decided, nothing written) and "end to end" (both: decided and committed
// into the side's own in-memory store). The two schedulers do not decide alike: Dao weighs a bounded sample of
// feasible nodes and spreads exactly by label counts; swarmkit filters every node into a
// decision tree per group of tasks, sorts each branch and fills nodes in turn. swarmkit's Run
// loop and the store's event fan-out run in goroutines of their own; Dao's scheduler runs on
// the caller's.
//
// With -oneoff, swarmkit's tasks are created without SpecVersion, as swarmkit's own
// benchScheduler (manager/scheduler/scheduler_test.go) creates them; swarmkit then schedules
// every task as a group of one, filtering and sorting all the nodes for each. That is how the
// benchmark behind the swarmkit figures quoted in BENCHMARKS.md drives it; tasks of real
// swarmkit services carry a SpecVersion and are not scheduled that way. Dao's side is
// unchanged.
//
// For each cluster size, after one untimed warm-up run of each side, the runs alternate
// (swarmkit, then Dao); every run and the median are shown.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/moby/swarmkit/v2/api"
	"github.com/moby/swarmkit/v2/manager/scheduler"
	"github.com/moby/swarmkit/v2/manager/state"
	"github.com/moby/swarmkit/v2/manager/state/store"
	"github.com/opendao/dao"
	"github.com/opendao/dao/orchestrator"
	daosched "github.com/opendao/dao/orchestrator/scheduler"
	"github.com/sirupsen/logrus"
)

func main() {
	nodeList := flag.String("nodes", "1000,5000", "cluster sizes (simulated nodes), comma-separated")
	total := flag.Int("tasks", 10_000, "tasks to place in each run")
	runs := flag.Int("runs", 3, "runs per side and cluster size")
	oneOff := flag.Bool("oneoff", false, "create swarmkit's tasks without SpecVersion, as swarmkit's own benchScheduler does, so that it schedules each task on its own")
	timeout := flag.Duration("timeout", 2*time.Minute, "give up on one swarmkit run after this long")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole program to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "swarmkit:", err)
			os.Exit(2)
		}
		defer pprof.StopCPUProfile()
	}
	var sizes []int
	for _, f := range strings.Split(*nodeList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 3 {
			fmt.Fprintf(os.Stderr, "swarmkit: -nodes: %q: want a number of at least 3\n", f)
			os.Exit(2)
		}
		sizes = append(sizes, n)
	}
	// swarmkit logs through logrus; a failed run is reported here, not by its log.
	logrus.SetLevel(logrus.ErrorLevel)

	fmt.Printf("%s %s/%s, GOMAXPROCS %d, swarmkit %s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH,
		runtime.GOMAXPROCS(0), swarmkitVersion())
	var rows []row
	for _, nodes := range sizes {
		w := newWorkload(nodes, *total)
		fmt.Printf("\n%d nodes, %d tasks in %d services\n", nodes, w.tasks, len(w.services))
		r := row{nodes: nodes, tasks: w.tasks}
		// One untimed run of each side first: the first run in a process pays for cold
		// caches and heap growth.
		if _, err := runSwarmkit(w, *oneOff, *timeout); err != nil {
			fmt.Fprintln(os.Stderr, "swarmkit:", err)
			os.Exit(1)
		}
		if _, err := runDao(w); err != nil {
			fmt.Fprintln(os.Stderr, "dao:", err)
			os.Exit(1)
		}
		for i := range *runs {
			sk, err := runSwarmkit(w, *oneOff, *timeout)
			if err != nil {
				fmt.Fprintln(os.Stderr, "swarmkit:", err)
				os.Exit(1)
			}
			fmt.Printf("  run %d swarmkit: decisions from %s to %s, first commit seen %s, all %d assigned in store %s (writes after the last decision %s); worst imbalance over zones %d, over eligible nodes %d\n",
				i+1, sk.firstDecision.Round(time.Microsecond), sk.lastDecision.Round(time.Microsecond), sk.firstCommit.Round(time.Microsecond),
				sk.placed, sk.all.Round(time.Microsecond), (sk.all - sk.lastDecision).Round(time.Microsecond), sk.q.zone, sk.q.node)
			d, err := runDao(w)
			if err != nil {
				fmt.Fprintln(os.Stderr, "dao:", err)
				os.Exit(1)
			}
			fmt.Printf("  run %d dao:      scheduler alone %s, end to end %s (snapshot read %s, node set %s, commit into the store %s); worst imbalance over zones %d, over eligible nodes %d\n",
				i+1, d.alone.Round(time.Microsecond), d.all.Round(time.Microsecond), d.read.Round(time.Microsecond),
				d.nodeSet.Round(time.Microsecond), d.commit.Round(time.Microsecond), d.q.zone, d.q.node)
			r.skDecide = append(r.skDecide, rate(w.tasks, sk.lastDecision))
			r.skAll = append(r.skAll, rate(w.tasks, sk.all))
			r.daoAlone = append(r.daoAlone, rate(w.tasks, d.alone))
			r.daoDecide = append(r.daoDecide, rate(w.tasks, d.read+d.nodeSet+d.alone))
			r.daoAll = append(r.daoAll, rate(w.tasks, d.all))
		}
		rows = append(rows, r)
	}

	fmt.Println("\nplacements/s (runs, then median):")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "nodes\ttasks\tside, what is timed\t\truns\tmedian\t")
	sk := "swarmkit"
	if *oneOff {
		sk = "swarmkit one-off"
	}
	for _, r := range rows {
		line := func(name string, xs []float64) {
			var s []string
			for _, x := range xs {
				s = append(s, fmt.Sprintf("%.0f", x))
			}
			fmt.Fprintf(tw, "%d\t%d\t%s\t\t%s\t%.0f\t\n", r.nodes, r.tasks, name, strings.Join(s, " "), median(xs))
		}
		line("dao: scheduler alone, Pipeline+Place (as ../main.go)", r.daoAlone)
		line("dao: decisions (snapshot read, node set built, Pipeline+Place)", r.daoDecide)
		line(sk+": decisions (Run to last decision: snapshot, node set, decide)", r.skDecide)
		line("dao: end to end (decisions + commit into its MemoryStore)", r.daoAll)
		line(sk+": end to end (Run until all assigned in its memdb store)", r.skAll)
	}
	tw.Flush()
	fmt.Println("\nratios of medians, dao / swarmkit:")
	for _, r := range rows {
		fmt.Printf("  %d nodes, %d tasks: decisions %.1fx, end to end %.1fx\n", r.nodes, r.tasks,
			median(r.daoDecide)/median(r.skDecide), median(r.daoAll)/median(r.skAll))
	}
	fmt.Println("\nBoth sides read their snapshot from their own in-memory store and write every placement\n" +
		"back into it (swarmkit: memdb; Dao: orchestrator.MemoryStore). The schedulers do not decide\n" +
		"alike (Dao samples nodes, swarmkit filters and sorts all of them per service). See the doc\n" +
		"comment of main.go.")
}

type row struct {
	nodes, tasks                                 int
	daoAlone, daoDecide, daoAll, skDecide, skAll []float64
}

func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

// swarmkitVersion returns the version of the swarmkit module built in.
func swarmkitVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "github.com/moby/swarmkit/v2" {
				if m.Replace != nil {
					return m.Replace.Version
				}
				return m.Version
			}
		}
	}
	return "(unknown)"
}

// The workload, shared by both sides.

var tiers = []string{"web", "db", "cache"}

var serviceSizes = []int{100, 500, 1000, 2000, 5000, 10000}

type nodeDef struct {
	id, zone, tier string
}

type serviceDef struct {
	id          string
	replicas    int
	constrained bool // node.labels.tier != db
}

type workload struct {
	nodes    []nodeDef
	byID     map[string]nodeDef
	services []serviceDef
	tasks    int
}

const (
	nodeMilliCPU = 64000
	nodeMemory   = 256 << 30
	taskMilliCPU = 100
	taskMemory   = 64 << 20
	image        = "registry.example.com/app:1"
	constraint   = "node.labels.tier != db"
	spreadKey    = "node.labels.zone"
)

func newWorkload(nodes, total int) workload {
	w := workload{byID: map[string]nodeDef{}}
	for i := range nodes {
		n := nodeDef{id: fmt.Sprintf("node-%05d", i), zone: fmt.Sprintf("zone-%d", i%5), tier: tiers[i%3]}
		w.nodes = append(w.nodes, n)
		w.byID[n.id] = n
	}
	for i := 0; w.tasks < total; i++ {
		n := min(serviceSizes[i%len(serviceSizes)], total-w.tasks)
		w.services = append(w.services, serviceDef{id: fmt.Sprintf("svc-%04d", i), replicas: n, constrained: i%2 == 1})
		w.tasks += n
	}
	return w
}

func taskID(svc string, slot int) string { return svc + "-" + strconv.Itoa(slot) }

// quality is how well one side placed the workload.
type quality struct {
	zone, node int // worst max - min of a service over zones, over its eligible nodes
}

// check verifies the placements (task ID -> node ID) of every service.
func (w workload) check(where map[string]string) (quality, error) {
	var q quality
	for _, svc := range w.services {
		perZone := map[string]int{}
		perNode := map[string]int{}
		for j := 1; j <= svc.replicas; j++ {
			id := taskID(svc.id, j)
			nid, ok := where[id]
			if !ok || nid == "" {
				return q, fmt.Errorf("task %s not placed", id)
			}
			n, ok := w.byID[nid]
			if !ok {
				return q, fmt.Errorf("task %s on unknown node %q", id, nid)
			}
			if svc.constrained && n.tier == "db" {
				return q, fmt.Errorf("task %s on %s breaks its constraint", id, nid)
			}
			perZone[n.zone]++
			perNode[nid]++
		}
		q.zone = max(q.zone, spread(perZone, 5))
		eligible := len(w.nodes)
		if svc.constrained {
			eligible = 0
			for _, n := range w.nodes {
				if n.tier != "db" {
					eligible++
				}
			}
		}
		q.node = max(q.node, spread(perNode, eligible))
	}
	return q, nil
}

// Dao's side.

type daoResult struct {
	read, alone, nodeSet, commit, all time.Duration
	q                                 quality
}

// runDao runs Dao's side: the scheduler over Dao's own store (orchestrator.MemoryStore, the
// counterpart of swarmkit's memdb), as the orchestrator's scheduling pass uses it.
func runDao(w workload) (daoResult, error) {
	var res daoResult
	ctx := context.Background()
	st, err := orchestrator.NewMemoryStore()
	if err != nil {
		return res, err
	}
	defer st.Close()
	spec := dao.ContainerSpec{Image: image, Resources: dao.Resources{MilliCPU: taskMilliCPU, Memory: taskMemory}}
	placements := map[string]dao.Placement{}
	// Before the clock starts, as on swarmkit's side: the nodes, the services and their
	// tasks (on no node, wanted running) in the store.
	err = st.Update(ctx, "bench: the cluster", func(tx orchestrator.Tx) error {
		for _, n := range w.nodes {
			if err := tx.CreateNode(&orchestrator.Node{Node: dao.Node{
				ID:          n.id,
				Labels:      map[string]string{"zone": n.zone, "tier": n.tier},
				Capacity:    dao.Resources{MilliCPU: nodeMilliCPU, Memory: nodeMemory},
				Allocatable: dao.Resources{MilliCPU: nodeMilliCPU, Memory: nodeMemory},
				Status:      dao.NodeStatus{State: dao.NodeReady},
			}}); err != nil {
				return err
			}
		}
		for _, sd := range w.services {
			pl := dao.Placement{Spread: []string{spreadKey}}
			if sd.constrained {
				pl.Constraints = []string{constraint}
			}
			placements[sd.id] = pl
			for j := range sd.replicas {
				t := orchestrator.Task{Task: dao.Task{ID: taskID(sd.id, j+1), ServiceID: sd.id, ServiceVersion: 1,
					Slot: j + 1, Spec: spec, DesiredState: dao.TaskRunning}}
				if err := tx.CreateTask(&t); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	runtime.GC()

	begin := time.Now()
	// The snapshot: the nodes, and the tasks on no node by service, as the orchestrator's
	// scheduling pass reads them (SharedReads: no deep copies of what it only reads).
	shared := orchestrator.SharedReads(ctx)
	var nodes []*dao.Node
	pending := map[string][]*orchestrator.Task{}
	err = st.View(shared, func(tx orchestrator.ReadTx) error {
		for n := range tx.Nodes() {
			nodes = append(nodes, &n.Node)
		}
		for t := range tx.TasksByNode("") {
			pending[t.ServiceID] = append(pending[t.ServiceID], &t)
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	res.read = time.Since(begin)
	t0 := time.Now()
	s, err := daosched.New()
	if err != nil {
		return res, err
	}
	for _, n := range nodes {
		s.SetNode(n)
	}
	res.nodeSet = time.Since(t0)
	now := time.Now()
	for _, sd := range w.services {
		tasks := pending[sd.id]
		slices.SortFunc(tasks, func(a, b *orchestrator.Task) int { return a.Slot - b.Slot })
		t0 := time.Now()
		// What ../main.go times.
		p, err := s.Placer(sd.id, 1, placements[sd.id])
		if err != nil {
			return res, err
		}
		dts := make([]*dao.Task, len(tasks))
		for i, t := range tasks {
			dts[i] = &t.Task
		}
		decisions := s.Place(p, dts)
		for i, d := range decisions {
			if d.Err != nil {
				return res, fmt.Errorf("task %s: %w", d.Task.ID, d.Err)
			}
			tasks[i].NodeID = d.NodeID
		}
		t1 := time.Now()
		res.alone += t1.Sub(t0)
		// The commit, as the orchestrator's scheduling pass writes it: each task read
		// again in the transaction, checked unchanged, and written assigned.
		err = st.Update(shared, "scheduler: placed "+sd.id, func(tx orchestrator.Tx) error {
			for _, t := range tasks {
				cur, err := tx.Task(t.ID)
				if err != nil {
					return err
				}
				if cur.Revision != t.Revision || cur.NodeID != "" {
					return fmt.Errorf("task %s changed under the scheduler", t.ID)
				}
				cur.NodeID = t.NodeID
				cur.Status = dao.TaskStatus{State: dao.TaskAssigned, Message: "placed on node " + t.NodeID, Timestamp: now}
				if err := tx.UpdateTask(&cur); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return res, err
		}
		res.commit += time.Since(t1)
	}
	res.all = time.Since(begin)

	where := make(map[string]string, w.tasks)
	err = st.View(ctx, func(tx orchestrator.ReadTx) error {
		for t := range tx.Tasks() {
			if t.Status.State != dao.TaskAssigned {
				return fmt.Errorf("task %s: state %v", t.ID, t.Status.State)
			}
			where[t.ID] = t.NodeID
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	res.q, err = w.check(where)
	return res, err
}

// swarmkit's side.

type skResult struct {
	// Since Run was called: the first and last placement decisions (the tasks'
	// Status.Timestamp, which the scheduler sets as it decides, before it writes anything),
	// the first assignment seen committed, and the last.
	firstDecision, lastDecision, firstCommit, all time.Duration
	placed                                        int
	q                                             quality
}

func runSwarmkit(w workload, oneOff bool, timeout time.Duration) (skResult, error) {
	var res skResult
	s := store.NewMemoryStore(nil)
	defer s.Close()

	// The cluster and the tasks, as swarmkit's orchestrator would leave them: nodes ready
	// with resources and labels; services; their tasks pending, desired running, with the
	// service's SpecVersion (tasks of one service and spec version are scheduled as a group).
	err := s.Update(func(tx store.Tx) error {
		for _, n := range w.nodes {
			err := store.CreateNode(tx, &api.Node{
				ID: n.id,
				Spec: api.NodeSpec{
					Annotations:  api.Annotations{Name: n.id, Labels: map[string]string{"zone": n.zone, "tier": n.tier}},
					Availability: api.NodeAvailabilityActive,
				},
				Status: api.NodeStatus{State: api.NodeStatus_READY},
				Description: &api.NodeDescription{
					Hostname:  n.id,
					Platform:  &api.Platform{Architecture: "x86_64", OS: "linux"},
					Resources: &api.Resources{NanoCPUs: nodeMilliCPU * 1e6, MemoryBytes: nodeMemory},
					Engine:    &api.EngineDescription{},
				},
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("creating nodes: %w", err)
	}
	for _, sd := range w.services {
		placement := &api.Placement{Preferences: []*api.PlacementPreference{
			{Preference: &api.PlacementPreference_Spread{Spread: &api.SpreadOver{SpreadDescriptor: spreadKey}}},
		}}
		if sd.constrained {
			placement.Constraints = []string{constraint}
		}
		taskSpec := api.TaskSpec{
			Runtime: &api.TaskSpec_Container{Container: &api.ContainerSpec{Image: image}},
			Resources: &api.ResourceRequirements{
				Reservations: &api.Resources{NanoCPUs: taskMilliCPU * 1e6, MemoryBytes: taskMemory},
			},
			Placement: placement,
		}
		svc := &api.Service{
			ID: sd.id,
			Spec: api.ServiceSpec{
				Annotations: api.Annotations{Name: sd.id},
				Task:        taskSpec,
				Mode:        &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: uint64(sd.replicas)}},
			},
			SpecVersion: &api.Version{Index: 1},
		}
		// One transaction per service and at most a few thousand tasks per transaction,
		// as swarmkit's orchestrators batch their creations.
		err := s.Batch(func(b *store.Batch) error {
			if err := b.Update(func(tx store.Tx) error { return store.CreateService(tx, svc) }); err != nil {
				return err
			}
			var specVersion *api.Version
			if !oneOff {
				specVersion = &api.Version{Index: 1}
			}
			for j := 1; j <= sd.replicas; j++ {
				t := &api.Task{
					ID:                 taskID(sd.id, j),
					ServiceID:          sd.id,
					Slot:               uint64(j),
					Spec:               *svc.Spec.Task.Copy(),
					SpecVersion:        specVersion,
					ServiceAnnotations: svc.Spec.Annotations,
					DesiredState:       api.TaskStateRunning,
					Status:             api.TaskStatus{State: api.TaskStatePending, Message: "pending task scheduling"},
				}
				if err := b.Update(func(tx store.Tx) error { return store.CreateTask(tx, t) }); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("creating service %s: %w", sd.id, err)
		}
	}

	watch, cancelWatch := state.Watch(s.WatchQueue(), api.EventUpdateTask{})
	defer cancelWatch()
	sched := scheduler.New(s)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runtime.GC()

	done := make(chan error, 1)
	begin := time.Now()
	go func() { done <- sched.Run(ctx) }()
	assigned := make(map[string]string, w.tasks)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for len(assigned) < w.tasks {
		select {
		case ev := <-watch:
			t := ev.(api.EventUpdateTask).Task
			if t.NodeID == "" || t.Status.State != api.TaskStateAssigned {
				if t.Status.Err != "" {
					sched.Stop()
					return res, fmt.Errorf("task %s: %s", t.ID, t.Status.Err)
				}
				continue
			}
			if len(assigned) == 0 {
				res.firstCommit = time.Since(begin)
			}
			if ts := t.Status.Timestamp; ts != nil {
				d := time.Unix(ts.Seconds, int64(ts.Nanos)).Sub(begin)
				if res.firstDecision == 0 || d < res.firstDecision {
					res.firstDecision = d
				}
				res.lastDecision = max(res.lastDecision, d)
			}
			assigned[t.ID] = t.NodeID
		case err := <-done:
			return res, fmt.Errorf("scheduler stopped after %d assignments: %v", len(assigned), err)
		case <-deadline.C:
			sched.Stop()
			return res, fmt.Errorf("timed out after %s with %d of %d tasks assigned", timeout, len(assigned), w.tasks)
		}
	}
	res.all = time.Since(begin)
	res.placed = len(assigned)
	if res.lastDecision <= 0 || res.lastDecision > res.all {
		return res, fmt.Errorf("task timestamps do not give the decision time (last at %s of %s)", res.lastDecision, res.all)
	}
	sched.Stop()

	// Check what the store holds, not just what the watch said.
	where := make(map[string]string, w.tasks)
	var ferr error
	s.View(func(tx store.ReadTx) {
		var tasks []*api.Task
		tasks, ferr = store.FindTasks(tx, store.All)
		for _, t := range tasks {
			if t.Status.State != api.TaskStateAssigned {
				ferr = fmt.Errorf("task %s: state %s in the store", t.ID, t.Status.State)
				return
			}
			where[t.ID] = t.NodeID
		}
	})
	if ferr != nil {
		return res, ferr
	}
	res.q, ferr = w.check(where)
	return res, ferr
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
