package policy

import (
	"fmt"
	"testing"
	"time"

	"github.com/opendao/dao"
)

// benchCluster builds 20 nodes over 3 zones with 40 tasks of the service "web" and
// 60 of others, as a scheduler would have counted them.
func benchCluster(tb testing.TB) (*ClusterInfo, []*NodeInfo) {
	tb.Helper()
	c := NewClusterInfo()
	c.SetNow(time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC))
	var nodes []*NodeInfo
	for i := range 20 {
		node := &dao.Node{
			ID: fmt.Sprintf("node-%02d", i),
			Labels: map[string]string{
				"zone": fmt.Sprintf("z%d", i%3), "rack": fmt.Sprintf("r%d", i%5), "disk": "ssd",
				"tier": "prod", "kubernetes.io/hostname": fmt.Sprintf("h%d", i), "gpu": "none",
			},
			Platform:    dao.Platform{OS: "linux", Architecture: "amd64"},
			Allocatable: dao.Resources{MilliCPU: 16000, Memory: 64 * dao.GiB, Pids: 32768},
			Status:      dao.NodeStatus{State: dao.NodeReady},
		}
		nodes = append(nodes, NewNodeInfo(c, node))
	}
	for i := range 100 {
		svc := "web"
		if i >= 40 {
			svc = fmt.Sprintf("svc-%d", i%7)
		}
		nodes[(i*7)%len(nodes)].AddTask(&dao.Task{ID: fmt.Sprintf("t%d", i), ServiceID: svc,
			Spec: dao.ContainerSpec{Image: "x", Resources: dao.Resources{MilliCPU: 250, Memory: 256 * dao.MiB},
				Ports: []dao.PortMapping{{ContainerPort: 80, HostPort: 8000 + i}}}})
	}
	nodes[3].RecordFailure("web", c.Now().Add(-time.Minute))
	return c, nodes
}

func benchTask() *dao.Task {
	return &dao.Task{ID: "new", ServiceID: "web", Spec: dao.ContainerSpec{
		Image:     "registry.example.com/web:1.0",
		Resources: dao.Resources{MilliCPU: 500, Memory: 512 * dao.MiB, Pids: 100},
		Ports:     []dao.PortMapping{{ContainerPort: 8080, HostPort: 9090}},
	}}
}

func benchPlacement() dao.Placement {
	return dao.Placement{
		Constraints:        []string{"node.labels.disk == ssd", "node.labels.tier in (prod, staging)"},
		Spread:             []string{"node.labels.zone"},
		MaxReplicasPerNode: 4,
		Platforms:          []dao.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}},
	}
}

// BenchmarkDefaultPlacer runs the whole default placer (filters and scorers) for one
// (task, node) pair.
func BenchmarkDefaultPlacer(b *testing.B) {
	_, nodes := benchCluster(b)
	p, err := DefaultPlacer(benchPlacement())
	if err != nil {
		b.Fatal(err)
	}
	t := benchTask()
	n := nodes[5]
	if err := p.Filter(t, n); err != nil {
		b.Fatalf("node refused: %v", err)
	}
	b.ReportAllocs()
	var sink int64
	for b.Loop() {
		if err := p.Filter(t, n); err == nil {
			sink += p.Score(t, n)
		}
	}
	_ = sink
}

// BenchmarkDefaultPlacerRefusal checks one node that a constraint refuses: the summary's
// reason is a preallocated error.
func BenchmarkDefaultPlacerRefusal(b *testing.B) {
	c, _ := benchCluster(b)
	p, err := DefaultPlacer(benchPlacement())
	if err != nil {
		b.Fatal(err)
	}
	n := NewNodeInfo(c, &dao.Node{ID: "hdd", Labels: map[string]string{"disk": "hdd"},
		Platform: dao.Platform{OS: "linux", Architecture: "amd64"}, Status: dao.NodeStatus{State: dao.NodeReady}})
	t := benchTask()
	b.ReportAllocs()
	for b.Loop() {
		if p.Filter(t, n) == nil {
			b.Fatal("node accepted")
		}
	}
}

// BenchmarkSelect1000 places one task among 1000 nodes (a scheduler samples large node
// sets rather than visiting them all; this is the cost of one full pass).
func BenchmarkSelect1000(b *testing.B) {
	c := NewClusterInfo()
	var nodes []*NodeInfo
	for i := range 1000 {
		node := readyNode(fmt.Sprint("n", i), map[string]string{"zone": fmt.Sprint("z", i%5), "disk": "ssd", "tier": "prod"})
		node.Allocatable = dao.Resources{MilliCPU: 16000, Memory: 64 * dao.GiB}
		nodes = append(nodes, NewNodeInfo(c, node))
	}
	for i := range 3000 {
		nodes[i%len(nodes)].AddTask(task(fmt.Sprint("t", i), fmt.Sprint("svc", i%50), dao.Resources{MilliCPU: 100, Memory: dao.GiB}))
	}
	p, err := DefaultPlacer(benchPlacement())
	if err != nil {
		b.Fatal(err)
	}
	t := benchTask()
	t.ServiceID = "svc7"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Select(t, nodes); err != nil {
			b.Fatal(err)
		}
	}
}
