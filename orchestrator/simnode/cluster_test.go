package simnode_test

import (
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendao/dao"
	"github.com/opendao/dao/clock"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/orchestrator/simnode"
)

func TestClusterShapes(t *testing.T) {
	t.Parallel()
	small := dao.Resources{MilliCPU: 2000, Memory: 4 * dao.GiB}
	large := dao.Resources{MilliCPU: 16000, Memory: 64 * dao.GiB}
	c, err := simnode.NewCluster(10_000, simnode.WithClusterSeed(7), simnode.WithShapes(
		simnode.Label("zone", "a", "b", "c", "d"),
		simnode.Capacity(small, small, small, large),
		simnode.WeightedLabel("disk", map[string]int{"ssd": 9, "hdd": 1, "none": 0}),
	))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Len() != 10_000 {
		t.Fatalf("Len = %d", c.Len())
	}
	zones, disks, sizes := map[string]int{}, map[string]int{}, map[dao.Resources]int{}
	for _, n := range c.Infos() {
		zones[n.Labels["zone"]]++
		disks[n.Labels["disk"]]++
		sizes[n.Allocatable]++
		if n.Capacity != n.Allocatable || n.Status.State != dao.NodeReady {
			t.Fatalf("node %s: capacity %+v, allocatable %+v, state %s", n.ID, n.Capacity, n.Allocatable, n.Status.State)
		}
	}
	if diff := cmp.Diff(map[string]int{"a": 2500, "b": 2500, "c": 2500, "d": 2500}, zones); diff != "" {
		t.Errorf("zones (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[dao.Resources]int{small: 7500, large: 2500}, sizes); diff != "" {
		t.Errorf("sizes (-want +got):\n%s", diff)
	}
	if disks["ssd"] < 8800 || disks["ssd"] > 9200 || disks["ssd"]+disks["hdd"] != 10_000 {
		t.Errorf("disks = %v, want about 9000 ssd and 1000 hdd", disks)
	}
	first := c.Nodes()[0].Info()
	if first.ID != "node-00001" || first.Hostname != "node-00001" || first.Platform.OS != "linux" {
		t.Errorf("first node: %+v", first)
	}
	if c.Node("node-10000") == nil || c.Node("node-10001") != nil {
		t.Error("Node finds the wrong nodes")
	}

	// The same seed, the same cluster.
	again, err := simnode.NewCluster(10_000, simnode.WithClusterSeed(7), simnode.WithShapes(
		simnode.Label("zone", "a", "b", "c", "d"),
		simnode.Capacity(small, small, small, large),
		simnode.WeightedLabel("disk", map[string]int{"ssd": 9, "hdd": 1, "none": 0}),
	))
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if diff := cmp.Diff(c.Infos(), again.Infos()); diff != "" {
		t.Errorf("two clusters of the same seed differ:\n%s", diff)
	}
}

func TestClusterErrors(t *testing.T) {
	t.Parallel()
	_, err := simnode.NewCluster(3, simnode.WithShapes(func(i int, _ *rand.Rand, n *dao.Node) { n.ID = "same" }))
	if err == nil || !strings.Contains(err.Error(), `two nodes have ID "same"`) {
		t.Errorf("duplicate IDs: got %v", err)
	}
	if _, err := simnode.NewCluster(-1); err == nil {
		t.Error("a cluster of -1 nodes")
	}
	if _, err := simnode.NewCluster(1, simnode.WithNodeOptions(simnode.WithRejections(3))); err == nil {
		t.Error("a bad node option is taken")
	}
}

func TestClusterReports(t *testing.T) {
	t.Parallel()
	clk := clock.NewManual(t0)
	var mu sync.Mutex
	var got []string
	beats := map[string]int{}
	c, err := simnode.NewCluster(3,
		simnode.WithNodeOptions(simnode.WithClock(clk)),
		simnode.WithClusterStatusFunc(func(nodeID string, u orchestrator.TaskUpdate) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, nodeID+" "+u.TaskID+" "+u.Status.State.String())
		}),
		simnode.WithClusterHeartbeat(time.Second, func(nodeID string, _ time.Time) {
			mu.Lock()
			defer mu.Unlock()
			beats[nodeID]++
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, n := range c.Nodes() {
		if err := n.Assign(orchestrator.Assignment{Revision: 1, Tasks: []dao.Task{simTask(n.ID()+".1", dao.Resources{})}}); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(2 * time.Second)
	want := []string{
		"node-0001 node-0001.1 preparing", "node-0001 node-0001.1 running",
		"node-0002 node-0002.1 preparing", "node-0002 node-0002.1 running",
		"node-0003 node-0003.1 preparing", "node-0003 node-0003.1 running",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("updates (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"node-0001": 3, "node-0002": 3, "node-0003": 3}, beats); diff != "" {
		t.Errorf("heartbeats (-want +got):\n%s", diff)
	}
}

// t0 is when the tests' manual clocks start.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
