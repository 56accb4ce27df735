package policy_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/policy"
)

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func node(id, zone string, memory int64) *dao.Node {
	return &dao.Node{ID: id, Labels: map[string]string{"zone": zone},
		Allocatable: dao.Resources{MilliCPU: 4000, Memory: memory},
		Status:      dao.NodeStatus{State: dao.NodeReady}}
}

// The scheduler's side of placement: one ClusterInfo, a NodeInfo per node kept up to date,
// and a placer per service.
func ExampleDefaultPlacer() {
	cluster := policy.NewClusterInfo()
	cluster.SetNow(now)
	nodes := []*policy.NodeInfo{
		policy.NewNodeInfo(cluster, node("n1", "a", 8*dao.GiB)),
		policy.NewNodeInfo(cluster, node("n2", "a", 8*dao.GiB)),
		policy.NewNodeInfo(cluster, node("n3", "b", 8*dao.GiB)),
		policy.NewNodeInfo(cluster, node("n4", "c", 1*dao.GiB)),
	}
	placer, err := policy.DefaultPlacer(dao.Placement{Spread: []string{"node.labels.zone"}})
	if err != nil {
		panic(err)
	}
	for slot := 1; slot <= 4; slot++ {
		t := &dao.Task{ID: fmt.Sprint("web.", slot), ServiceID: "web",
			Spec: dao.ContainerSpec{Image: "registry.example.com/web:1.0", Resources: dao.Resources{Memory: 2 * dao.GiB}}}
		n, err := placer.Select(t, nodes)
		if err != nil {
			fmt.Println(err)
			continue
		}
		n.AddTask(t)
		fmt.Println(t.ID, "->", n.Node().ID)
	}
	// Output:
	// web.1 -> n1
	// web.2 -> n3
	// web.3 -> n2
	// web.4 -> n3
}

// A refusal summary explains why no node could take a task.
func ExamplePlacementError() {
	nodes := []*policy.NodeInfo{
		policy.NewNodeInfo(nil, node("n1", "a", 1*dao.GiB)),
		policy.NewNodeInfo(nil, node("n2", "b", 8*dao.GiB)),
		policy.NewNodeInfo(nil, node("n3", "a", 1*dao.GiB)),
	}
	placer, _ := policy.DefaultPlacer(dao.Placement{Constraints: []string{"node.labels.zone == a"}})
	t := &dao.Task{ID: "db.1", ServiceID: "db", Spec: dao.ContainerSpec{Image: "postgres:16", Resources: dao.Resources{Memory: 4 * dao.GiB}}}
	_, err := placer.Select(t, nodes)
	fmt.Println(errors.Is(err, policy.ErrUnschedulable))
	fmt.Println(err)
	// Output:
	// true
	// policy: no suitable node for task "db.1" (3 considered): 2 nodes: insufficient memory; 1 node: zone != a
}

// Vendors compose their own filters and scorers with the built-in ones.
func ExamplePlacer() {
	errNoGPU := errors.New("policy: no free gpu") // preallocated: refusing must not allocate
	gpus := policy.Filter{Name: "gpu", Func: func(t *dao.Task, n *policy.NodeInfo) error {
		if t.Spec.Labels["gpu"] == "yes" && n.Node().Labels["gpu"] == "" {
			return errNoGPU
		}
		return nil
	}}
	cheap := policy.Scorer{Name: "spot", Weight: 3, Func: func(_ *dao.Task, n *policy.NodeInfo) int64 {
		if n.Node().Labels["lifecycle"] == "spot" {
			return 100
		}
		return 0
	}}
	placer := &policy.Placer{
		Filters: []policy.Filter{policy.NodeReady(), policy.ResourcesFit(), gpus},
		Scorers: []policy.Scorer{cheap, policy.BinPack()},
	}
	spot := node("spot-1", "a", 8*dao.GiB)
	spot.Labels["lifecycle"] = "spot"
	nodes := []*policy.NodeInfo{policy.NewNodeInfo(nil, node("n1", "a", 8*dao.GiB)), policy.NewNodeInfo(nil, spot)}

	batch := &dao.Task{ID: "batch.1", Spec: dao.ContainerSpec{Image: "batch:1", Labels: map[string]string{"gpu": "yes"}}}
	_, err := placer.Select(batch, nodes)
	fmt.Println(err)
	batch.Spec.Labels = nil
	n, _ := placer.Select(batch, nodes)
	fmt.Println(n.Node().ID, placer.Score(batch, n), "of", placer.MaxScore())
	// Output:
	// policy: no suitable node for task "batch.1" (2 considered): 2 nodes: no free gpu
	// spot-1 300 of 400
}

// Constraints are parsed once; a malformed one says where it went wrong.
func ExampleParseConstraint() {
	c, err := policy.ParseConstraint("node.labels.zone in (a, b)")
	fmt.Println(c, err)
	fmt.Println(c.Match(node("n1", "b", 0)), c.Match(node("n2", "c", 0)))

	_, err = policy.ParseConstraint("node.labels.zone = a")
	var se *policy.SyntaxError
	if errors.As(err, &se) {
		fmt.Println(se.Column, se.Msg)
	}
	// Output:
	// node.labels.zone in (a, b) <nil>
	// true false
	// 18 unknown operator "=": want ==, !=, in or exists (did you mean ==?)
}

// Admission runs every rule and reports every violation at once; audit rules only warn.
func ExampleAdmit() {
	registries, err := policy.AllowedRegistries("registry.example.com")
	if err != nil {
		panic(err)
	}
	baseline, err := policy.Baseline()
	if err != nil {
		panic(err)
	}
	rules := append(baseline,
		registries,
		policy.RequireResourceLimits(),
		policy.DisallowLatestTag().WithMode(policy.Audit),
	)
	spec := &dao.ServiceSpec{Name: "web", Replicas: 2, Container: dao.ContainerSpec{
		Image:      "registry.example.com.evil.io/web",
		Privileged: true,
		Resources:  dao.Resources{Memory: 64 * dao.MiB},
	}}
	warnings, err := policy.Admit(spec, rules...)
	for _, w := range warnings {
		fmt.Println("warning:", w)
	}
	var ae *policy.AdmissionError
	if errors.As(err, &ae) {
		for _, v := range ae.Violations {
			fmt.Println("refused:", v)
		}
	}
	// Output:
	// warning: disallow-latest-tag: container.image: an untagged image means latest: pin a version or a digest
	// refused: disallow-privileged: container.privileged: privileged containers are not allowed
	// refused: allowed-registries: container.image: image registry.example.com.evil.io/web is not from an allowed registry (registry.example.com)
	// refused: require-resource-limits: container.resources.milliCPU: a cpu limit is required
}

// The edge agent keeps a RestartTracker per container, and restarts it after each
// decision's delay.
func ExampleRestartTracker() {
	tracker := policy.NewRestartTracker(
		dao.RestartPolicy{MaxAttempts: 4, Window: dao.Duration(time.Minute)},
		rand.New(rand.NewPCG(1, 2)), // a seeded source: the same jitter every run
	)
	at := now
	for {
		tracker.Started(at)
		at = at.Add(time.Second) // the container crashes after a second
		d := tracker.Exited(at, 1)
		if !d.Restart {
			fmt.Println("task failed:", d.Reason)
			break
		}
		fmt.Printf("restart %d after %v\n", d.Attempt, d.Delay.Round(time.Millisecond))
		at = at.Add(d.Delay)
	}
	// Output:
	// restart 1 after 0s
	// restart 2 after 214ms
	// restart 3 after 418ms
	// restart 4 after 841ms
	// task failed: gave up after 4 restarts within 1m0s
}

// A Breaker per service stops the restarts of a service that crashes everywhere, then
// tries one container before letting the others restart.
func ExampleBreaker() {
	breakers := policy.NewBreakers(policy.BreakerPolicy{Failures: 3, Window: time.Minute, OpenFor: 30 * time.Second})
	b := breakers.For("web")
	for i := range 3 { // three containers of web crash within a minute
		b.Failure(now.Add(time.Duration(i) * time.Second))
	}
	at := now.Add(3 * time.Second)
	ok, retryAt := b.Allow(at)
	fmt.Println(ok, retryAt.Sub(now), "-", b.Reason(at))

	ok, _ = b.Allow(retryAt) // the trial
	fmt.Println(ok, b.State(retryAt))
	ok, _ = b.Allow(retryAt.Add(time.Second)) // one trial at a time
	fmt.Println(ok, b.State(retryAt.Add(time.Second)))
	fmt.Println(b.State(retryAt.Add(10 * time.Second))) // the trial ran for 10s
	// Output:
	// false 32s - circuit breaker open for 29s: 3 failures within 1m0s
	// true half-open
	// false half-open
	// closed
}

// The orchestrator asks a Rollout what to do after every task event of a rolling update.
func ExampleRollout() {
	update := dao.UpdatePolicy{Parallelism: 2, FailureAction: dao.ActionRollback}
	check := &dao.HealthCheck{Command: []string{"/healthz"}, Interval: dao.Duration(time.Second),
		Timeout: dao.Duration(time.Second), Retries: 3}
	r := policy.NewRollout(update, check)
	fmt.Println("monitor:", r.Monitor())

	status := policy.RolloutStatus{Total: 4}
	d := r.Decide(status, now)
	fmt.Println(d.Action, d.Batch)

	status.Updated = []policy.UpdatedTask{{Started: now.Add(time.Second)}, {Started: now.Add(time.Second), Failed: now.Add(4 * time.Second)}}
	d = r.Decide(status, now.Add(5*time.Second))
	fmt.Println(d.Action, "-", d.Reason)
	// Output:
	// monitor: 6s
	// continue 2
	// rollback - 1 of 4 tasks failed within 6s, more than the max failure ratio 0
}

// An Autoscaler applies the HPA's rules over time.
func ExampleAutoscaler() {
	a, err := policy.NewAutoscaler(policy.DefaultAutoscalePolicy(2, 10))
	if err != nil {
		panic(err)
	}
	replicas := 3
	for i, cpu := range []float64{90, 90, 30, 30} { // average millicores per replica; target 50
		at := now.Add(time.Duration(i) * 3 * time.Minute)
		d := a.Decide(at, replicas, policy.Metric{Name: "cpu", Value: cpu, Target: 50})
		fmt.Printf("%d -> %d: %s\n", replicas, d.Replicas, d.Reason)
		replicas = d.Replicas
	}
	// Output:
	// 3 -> 6: cpu 90/50: 6
	// 6 -> 10: cpu 90/50: 11; held at the maximum 10
	// 10 -> 10: cpu 30/50: 6; stabilized at 10: recommendations of the last 5m0s went up to 11
	// 10 -> 6: cpu 30/50: 6
}

// `dao clean --dry-run` and the node's garbage collector make a plan and show it.
func ExampleCleanPolicy_Plan() {
	inv := policy.Inventory{
		Disk: policy.Disk{Capacity: 10 * dao.GiB, Used: 9 * dao.GiB},
		Images: []policy.Image{
			{Name: "registry.example.com/web:1.0", Digest: "sha256:1", Size: 600 * dao.MiB, Created: now.Add(-72 * time.Hour)},
			{Name: "registry.example.com/web:2.0", Digest: "sha256:2", Size: 600 * dao.MiB, Created: now.Add(-24 * time.Hour)},
			{Name: "registry.example.com/web:3.0", Digest: "sha256:3", Size: 600 * dao.MiB, Created: now.Add(-time.Hour)},
		},
		Containers: []policy.Container{{ID: "web.1", Image: "registry.example.com/web:3.0", Running: true}},
	}
	plan, err := policy.DefaultCleanPolicy().Plan(inv, now)
	if err != nil {
		panic(err)
	}
	fmt.Println(plan.Reason)
	for _, d := range plan.Images {
		fmt.Println("delete", d.ID, dao.FormatBytes(d.Bytes), "-", d.Reason)
	}
	fmt.Println("frees", dao.FormatBytes(plan.FreedBytes))
	// Output:
	// disk 90% used, high threshold 85%: free 1GiB to reach 80%
	// delete registry.example.com/web:1.0 600MiB - unused for 72h0m0s
	// delete registry.example.com/web:2.0 600MiB - unused for 24h0m0s
	// frees 1.2GiB
}
