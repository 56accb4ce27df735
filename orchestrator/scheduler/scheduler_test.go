package scheduler_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/testutil/fixture"
	"github.com/opendao/dao/orchestrator/scheduler"
	"github.com/opendao/dao/policy"
)

func newScheduler(t testing.TB, opts ...scheduler.Option) *scheduler.Scheduler {
	t.Helper()
	opts = append([]scheduler.Option{scheduler.WithRand(rand.New(rand.NewPCG(1, 2)))}, opts...)
	s, err := scheduler.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func tasks(service string, n int, spec dao.ContainerSpec) []*dao.Task {
	out := make([]*dao.Task, n)
	for i := range out {
		out[i] = &dao.Task{ID: fmt.Sprintf("%s-%d", service, i+1), ServiceID: service, Slot: i + 1, Spec: spec, DesiredState: dao.TaskRunning}
	}
	return out
}

func place(t *testing.T, s *scheduler.Scheduler, placement dao.Placement, ts []*dao.Task) map[string]int {
	t.Helper()
	p, err := s.Placer(ts[0].ServiceID, 1, placement)
	if err != nil {
		t.Fatal(err)
	}
	perNode := map[string]int{}
	for _, d := range s.Place(p, ts) {
		if d.Err != nil {
			t.Fatalf("task %s: %v", d.Task.ID, d.Err)
		}
		perNode[d.NodeID]++
	}
	return perNode
}

func TestSchedulerSpreadsOverNodes(t *testing.T) {
	t.Parallel()
	s := newScheduler(t)
	for i := range 10 {
		s.SetNode(fixture.ReadyNode(fmt.Sprintf("n%d", i), nil, dao.Resources{}))
	}
	got := place(t, s, dao.Placement{}, tasks("web", 100, dao.ContainerSpec{Image: "web"}))
	for node, n := range got {
		if n != 10 {
			t.Errorf("node %s got %d tasks, want 10 each: %v", node, n, got)
		}
	}
}

func TestSchedulerConstraintsAndZoneSpread(t *testing.T) {
	t.Parallel()
	s := newScheduler(t)
	zones := map[string]int{"a": 2, "b": 3, "c": 5}
	for z, n := range zones {
		for i := range n {
			s.SetNode(fixture.ReadyNode(fmt.Sprintf("%s%d", z, i), map[string]string{"zone": z, "disk": "ssd"}, dao.Resources{}))
		}
	}
	s.SetNode(fixture.ReadyNode("hdd", map[string]string{"zone": "a", "disk": "hdd"}, dao.Resources{}))
	got := place(t, s, dao.Placement{
		Constraints: []string{"node.labels.disk == ssd"},
		Spread:      []string{"node.labels.zone"},
	}, tasks("db", 30, dao.ContainerSpec{Image: "db"}))
	perZone := map[string]int{}
	for node, n := range got {
		if node == "hdd" {
			t.Errorf("a task went to the node the constraint excludes")
		}
		perZone[node[:1]] += n
	}
	if diff := cmp.Diff(map[string]int{"a": 10, "b": 10, "c": 10}, perZone); diff != "" {
		t.Errorf("tasks per zone (-want +got):\n%s", diff)
	}
}

func TestSchedulerResourcesAndRefusalSummary(t *testing.T) {
	t.Parallel()
	s := newScheduler(t)
	for i := range 3 {
		s.SetNode(fixture.ReadyNode(fmt.Sprintf("n%d", i), map[string]string{"zone": "a"}, dao.Resources{Memory: dao.GiB}))
	}
	s.SetNode(fixture.ReadyNode("other", map[string]string{"zone": "b"}, dao.Resources{Memory: 8 * dao.GiB}))
	down := fixture.ReadyNode("down", map[string]string{"zone": "a"}, dao.Resources{Memory: 8 * dao.GiB})
	down.Status.State = dao.NodeDown
	s.SetNode(down)

	ts := tasks("big", 14, dao.ContainerSpec{Image: "big", Resources: dao.Resources{Memory: 256 * dao.MiB}})
	p, err := s.Placer("big", 1, dao.Placement{Constraints: []string{"node.labels.zone == a"}})
	if err != nil {
		t.Fatal(err)
	}
	ds := s.Place(p, ts)
	placed := 0
	for _, d := range ds[:12] {
		if d.Err != nil {
			t.Errorf("task %s: %v", d.Task.ID, d.Err)
		}
		placed++
	}
	for _, d := range ds[12:] {
		if !errors.Is(d.Err, policy.ErrUnschedulable) {
			t.Fatalf("task %s placed on %q (err %v) with every zone-a node full", d.Task.ID, d.NodeID, d.Err)
		}
		msg := d.Err.Error()
		for _, want := range []string{"3 nodes: insufficient memory", "1 node", "zone"} {
			if !strings.Contains(msg, want) {
				t.Errorf("refusal %q does not say %q", msg, want)
			}
		}
	}
	if got := s.Node("n0").Allocated().Memory; got != dao.GiB {
		t.Errorf("n0 allocated %d, want a full 1GiB", got)
	}
}

func TestSchedulerHostPorts(t *testing.T) {
	t.Parallel()
	s := newScheduler(t)
	s.SetNode(fixture.ReadyNode("n0", nil, dao.Resources{}))
	s.SetNode(fixture.ReadyNode("n1", nil, dao.Resources{}))
	ts := tasks("edge", 3, dao.ContainerSpec{Image: "edge", Ports: []dao.PortMapping{{ContainerPort: 80, HostPort: 80}}})
	p, _ := s.Placer("edge", 1, dao.Placement{})
	ds := s.Place(p, ts)
	if ds[0].NodeID == ds[1].NodeID || ds[0].Err != nil || ds[1].Err != nil {
		t.Errorf("two tasks with host port 80: %+v, %+v", ds[0], ds[1])
	}
	if !errors.Is(ds[2].Err, policy.ErrUnschedulable) || !strings.Contains(ds[2].Err.Error(), "port") {
		t.Errorf("third task: %v, want unschedulable for the port", ds[2].Err)
	}
}

func TestSchedulerAccounting(t *testing.T) {
	t.Parallel()
	s := newScheduler(t)
	s.SetNode(fixture.ReadyNode("n0", nil, dao.Resources{Memory: dao.GiB}))
	s.SetNode(fixture.ReadyNode("n1", nil, dao.Resources{Memory: dao.GiB}))
	old := &dao.Task{ID: "old", ServiceID: "x", NodeID: "n0", Spec: dao.ContainerSpec{Image: "x", Resources: dao.Resources{Memory: 768 * dao.MiB}}}
	if !s.Count(old) {
		t.Fatal("Count of a task on a known node returned false")
	}
	p, _ := s.Placer("y", 1, dao.Placement{})
	d := s.Place(p, tasks("y", 1, dao.ContainerSpec{Image: "y", Resources: dao.Resources{Memory: 512 * dao.MiB}}))
	if d[0].NodeID != "n1" {
		t.Errorf("placed on %s, want n1 (n0 has 256MiB left)", d[0].NodeID)
	}
	s.Uncount("old")
	if got := s.Node("n0").Allocated().Memory; got != 0 {
		t.Errorf("n0 allocated %d after Uncount, want 0", got)
	}
	if gone := s.RemoveNode("n1"); len(gone) != 1 || gone[0] != "y-1" {
		t.Errorf("RemoveNode returned %v, want [y-1]", gone)
	}
	if s.Nodes() != 1 {
		t.Errorf("Nodes() = %d, want 1", s.Nodes())
	}
}

// Every option rejects a bad value with an error that names the option and wraps
// dao.ErrInvalid.
func TestOptionsRejectBadValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		option string
		opt    scheduler.Option
	}{
		{"WithSampleSize", scheduler.WithSampleSize(0)},
		{"WithClock", scheduler.WithClock(nil)},
		{"WithRand", scheduler.WithRand(nil)},
		{"Option", nil},
	}
	for _, tt := range tests {
		_, err := scheduler.New(tt.opt)
		fixture.CheckOptionError(t, tt.option, err)
	}
}

func TestSchedulerBadConstraint(t *testing.T) {
	t.Parallel()
	s := newScheduler(t)
	_, err := s.Placer("x", 1, dao.Placement{Constraints: []string{"node.labels.zone = a"}})
	var se *policy.SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("Placer with a malformed constraint: %v, want a *policy.SyntaxError", err)
	}
}

// BenchmarkSchedulerPlace places groups of 1,000 tasks with a constraint, a zone spread and
// resources on 5,000 nodes.
func BenchmarkSchedulerPlace(b *testing.B) {
	s := newScheduler(b)
	for i := range 5000 {
		s.SetNode(fixture.ReadyNode(fmt.Sprintf("node-%d", i),
			map[string]string{"zone": fmt.Sprintf("z%d", i%3), "tier": []string{"web", "db"}[i%2]},
			dao.Resources{MilliCPU: 64000, Memory: 512 * dao.GiB, Pids: 1 << 20}))
	}
	spec := dao.ContainerSpec{Image: "web", Resources: dao.Resources{MilliCPU: 10, Memory: 4 * dao.MiB}}
	placement := dao.Placement{Constraints: []string{"node.labels.tier == web"}, Spread: []string{"node.labels.zone"}}
	b.ReportAllocs()
	b.ResetTimer()
	placed := 0
	for i := 0; i < b.N; i += 1000 {
		svc := fmt.Sprintf("svc-%d", i)
		ts := tasks(svc, 1000, spec)
		p, err := s.Placer(svc, 1, placement)
		if err != nil {
			b.Fatal(err)
		}
		for _, d := range s.Place(p, ts) {
			if d.Err != nil {
				b.Fatal(d.Err)
			}
			placed++
		}
	}
	b.ReportMetric(float64(placed)/b.Elapsed().Seconds(), "placements/s")
}
