package policy

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/testutil/fixture"
)

func task(id, service string, r dao.Resources, hostPorts ...int) *dao.Task {
	t := &dao.Task{ID: id, ServiceID: service, Spec: dao.ContainerSpec{Image: "busybox:1", Resources: r}}
	for _, p := range hostPorts {
		t.Spec.Ports = append(t.Spec.Ports, dao.PortMapping{ContainerPort: 80, HostPort: p})
	}
	return t
}

// readyNode is fixture.ReadyNode with 4 CPUs, 8 GiB and 1000 pids.
func readyNode(id string, labels map[string]string) *dao.Node {
	return fixture.ReadyNode(id, labels, dao.Resources{MilliCPU: 4000, Memory: 8 * dao.GiB, Pids: 1000})
}

func TestNodeInfoTasks(t *testing.T) {
	t.Parallel()
	c := NewClusterInfo()
	n := NewNodeInfo(c, readyNode("n1", map[string]string{"zone": "a"}))
	r := dao.Resources{MilliCPU: 500, Memory: dao.GiB, Pids: 10}
	if !n.AddTask(task("t1", "web", r, 8080)) {
		t.Fatal("AddTask(t1) = false")
	}
	if n.AddTask(task("t1", "web", r, 8080)) {
		t.Error("adding t1 twice: got true, want false")
	}
	n.AddTask(task("t2", "web", r))
	n.AddTask(task("t3", "db", r))
	n.AddTask(task("t4", "", r)) // a task of no service

	type view struct {
		Allocated, Available                 dao.Resources
		Tasks, Web, DB, ClusterWeb, MostWeb  int
		Port8080, Port8080UDP, Port9090, Has bool
	}
	got := view{n.Allocated(), n.Available(), n.Tasks(), n.ServiceTasks("web"), n.ServiceTasks("db"),
		c.ServiceTasks("web"), c.MaxTasksPerNode("web"),
		n.HostPortInUse(8080, "tcp"), n.HostPortInUse(8080, "udp"), n.HostPortInUse(9090, ""), n.HasTask("t2")}
	want := view{dao.Resources{MilliCPU: 2000, Memory: 4 * dao.GiB, Pids: 40},
		dao.Resources{MilliCPU: 2000, Memory: 4 * dao.GiB, Pids: 960}, 4, 2, 1, 2, 2, true, false, false, true}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("after adding (-want +got):\n%s", d)
	}

	if !n.RemoveTask("t1") || n.RemoveTask("t1") || n.RemoveTask("nope") {
		t.Error("RemoveTask: want true once, then false")
	}
	got = view{n.Allocated(), n.Available(), n.Tasks(), n.ServiceTasks("web"), n.ServiceTasks("db"),
		c.ServiceTasks("web"), c.MaxTasksPerNode("web"),
		n.HostPortInUse(8080, "tcp"), n.HostPortInUse(8080, "udp"), n.HostPortInUse(9090, ""), n.HasTask("t1")}
	want = view{dao.Resources{MilliCPU: 1500, Memory: 3 * dao.GiB, Pids: 30},
		dao.Resources{MilliCPU: 2500, Memory: 5 * dao.GiB, Pids: 970}, 3, 1, 1, 1, 1, false, false, false, false}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("after removing t1 (-want +got):\n%s", d)
	}

	n.Clear()
	if n.Tasks() != 0 || !n.Allocated().IsZero() || c.ServiceTasks("web") != 0 || c.ServiceTasks("db") != 0 {
		t.Errorf("after Clear: %d tasks, %+v allocated, web %d, db %d", n.Tasks(), n.Allocated(), c.ServiceTasks("web"), c.ServiceTasks("db"))
	}
	if len(c.services) != 0 {
		t.Errorf("after Clear the cluster still counts %d services", len(c.services))
	}
}

func TestNodeInfoUnreportedResources(t *testing.T) {
	t.Parallel()
	n := NewNodeInfo(nil, &dao.Node{ID: "n"})
	if got, want := n.Available(), (dao.Resources{MilliCPU: 1<<63 - 1, Memory: 1<<63 - 1, Pids: 1<<63 - 1}); got != want {
		t.Errorf("Available of a node that reports nothing: got %+v, want %+v", got, want)
	}
}

func TestClusterInfoSpreadCounts(t *testing.T) {
	t.Parallel()
	c := NewClusterInfo()
	a1 := NewNodeInfo(c, readyNode("a1", map[string]string{"zone": "a"}))
	a2 := NewNodeInfo(c, readyNode("a2", map[string]string{"zone": "a"}))
	b1 := NewNodeInfo(c, readyNode("b1", map[string]string{"zone": "b"}))
	x1 := NewNodeInfo(c, readyNode("x1", nil)) // no zone
	add := func(n *NodeInfo, ids ...string) {
		for _, id := range ids {
			n.AddTask(task(id, "web", dao.Resources{}))
		}
	}
	add(a1, "1", "2")
	add(a2, "3")
	add(b1, "4")
	add(x1, "5", "6", "7")

	type counts struct{ A, B, C, None, MostPerNode, Total int }
	get := func() counts {
		return counts{c.LabelTasks("web", "zone", "a"), c.LabelTasks("web", "zone", "b"),
			c.LabelTasks("web", "zone", "c"), c.UnlabeledTasks("web", "zone"),
			c.MaxTasksPerNode("web"), c.ServiceTasks("web")}
	}
	if d := cmp.Diff(counts{3, 1, 0, 3, 3, 7}, get()); d != "" {
		t.Errorf("counts (-want +got):\n%s", d)
	}
	if here, most := c.spread("web", "zone", "b", true); here != 1 || most != 3 {
		t.Errorf("spread(zone=b) = %d, %d; want 1, 3", here, most)
	}

	// The busiest node loses tasks: the largest count per node follows.
	x1.RemoveTask("5")
	x1.RemoveTask("6")
	if d := cmp.Diff(counts{3, 1, 0, 1, 2, 5}, get()); d != "" {
		t.Errorf("after removing from x1 (-want +got):\n%s", d)
	}
	// A node changes zone: its tasks move with it.
	a1.SetNode(readyNode("a1", map[string]string{"zone": "c"}))
	if d := cmp.Diff(counts{1, 1, 2, 1, 2, 5}, get()); d != "" {
		t.Errorf("after a1 moved to zone c (-want +got):\n%s", d)
	}
	if a1.Node().Labels["zone"] != "c" {
		t.Error("SetNode did not replace the node")
	}
	for _, n := range []*NodeInfo{a1, a2, b1, x1} {
		n.Clear()
	}
	if d := cmp.Diff(counts{}, get()); d != "" {
		t.Errorf("after clearing (-want +got):\n%s", d)
	}
	if c.LabelTasks("nope", "zone", "a") != 0 || c.UnlabeledTasks("nope", "zone") != 0 || c.MaxTasksPerNode("nope") != 0 {
		t.Error("an unknown service has counts")
	}
}

func TestHistogramMax(t *testing.T) {
	t.Parallel()
	var h histogram
	// Three things at counts 0 -> 3, 2, 1, then back down.
	steps := []struct{ from, to, max int }{
		{0, 1, 1}, {1, 2, 2}, {2, 3, 3}, {0, 1, 3}, {1, 2, 3}, {0, 1, 3},
		{3, 2, 2}, {2, 1, 2}, {2, 1, 1}, {1, 0, 1}, {1, 0, 1}, {1, 0, 0},
	}
	for i, s := range steps {
		h.move(s.from, s.to)
		if h.max != s.max {
			t.Fatalf("step %d (%d -> %d): max %d, want %d", i, s.from, s.to, h.max, s.max)
		}
	}
	if len(h.n) != 0 {
		t.Errorf("histogram not empty at the end: %v", h.n)
	}
}

func TestRecentFailures(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	n := NewNodeInfo(nil, readyNode("n", nil))
	for i := range 10 {
		n.RecordFailure("web", t0.Add(time.Duration(i)*time.Minute))
	}
	tests := []struct {
		service string
		since   time.Time
		want    int
	}{
		{"web", time.Time{}, 8}, // only the latest 8 are kept
		{"web", t0.Add(5 * time.Minute), 5},
		{"web", t0.Add(9 * time.Minute), 1},
		{"web", t0.Add(time.Hour), 0},
		{"db", time.Time{}, 0},
	}
	for _, tt := range tests {
		if got := n.RecentFailures(tt.service, tt.since); got != tt.want {
			t.Errorf("RecentFailures(%q, %v) = %d, want %d", tt.service, tt.since, got, tt.want)
		}
	}
	// Failures outlive the tasks of the service on the node.
	n.AddTask(task("t", "web", dao.Resources{}))
	n.RemoveTask("t")
	if got := n.RecentFailures("web", time.Time{}); got != 8 {
		t.Errorf("after a task came and went: %d failures, want 8", got)
	}
}
