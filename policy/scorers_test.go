package policy

import (
	"testing"
	"time"

	"github.com/opendao/dao"
)

func TestAllocationScorers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		allocatable    dao.Resources
		allocated, req dao.Resources
		least, binPack int64
	}{
		{"empty node, no request", dao.Resources{MilliCPU: 1000, Memory: 1000}, dao.Resources{}, dao.Resources{}, 100, 0},
		{"half", dao.Resources{MilliCPU: 1000, Memory: 1000}, dao.Resources{MilliCPU: 250, Memory: 250}, dao.Resources{MilliCPU: 250, Memory: 250}, 50, 50},
		{"cpu full, memory free", dao.Resources{MilliCPU: 1000, Memory: 1000}, dao.Resources{MilliCPU: 1000}, dao.Resources{}, 50, 50},
		{"overcommitted", dao.Resources{MilliCPU: 1000, Memory: 1000}, dao.Resources{MilliCPU: 3000, Memory: 3000}, dao.Resources{}, 0, 100},
		{"memory only reported", dao.Resources{Memory: 1000}, dao.Resources{Memory: 100}, dao.Resources{MilliCPU: 5000, Memory: 100}, 80, 20},
		{"nothing reported", dao.Resources{}, dao.Resources{MilliCPU: 100}, dao.Resources{}, 0, 0},
	}
	for _, tt := range tests {
		node := readyNode("n", nil)
		node.Allocatable = tt.allocatable
		n := NewNodeInfo(nil, node)
		n.AddTask(task("on", "", tt.allocated))
		t1 := task("t", "", tt.req)
		if got := LeastAllocated().Func(t1, n); got != tt.least {
			t.Errorf("%s: least-allocated %d, want %d", tt.name, got, tt.least)
		}
		if got := BinPack().Func(t1, n); got != tt.binPack {
			t.Errorf("%s: bin-pack %d, want %d", tt.name, got, tt.binPack)
		}
	}
}

func TestSpreadScorers(t *testing.T) {
	t.Parallel()
	c := NewClusterInfo()
	nodes := map[string]*NodeInfo{}
	for id, zone := range map[string]string{"a1": "a", "a2": "a", "b1": "b", "c1": "c", "x1": ""} {
		labels := map[string]string{"zone": zone}
		if zone == "" {
			labels = nil
		}
		nodes[id] = NewNodeInfo(c, readyNode(id, labels))
	}
	i := 0
	for id, count := range map[string]int{"a1": 2, "a2": 2, "b1": 1, "x1": 1} {
		for range count {
			i++
			nodes[id].AddTask(task("t"+string(rune('0'+i)), "web", dao.Resources{}))
		}
	}
	// web: zone a 4, b 1, c 0, no zone 1; per node at most 2.
	tests := []struct {
		node          string
		service       string
		nodes, labels int64
	}{
		{"a1", "web", 0, 0},     // busiest node, busiest zone
		{"b1", "web", 50, 75},   // 1 of 2 on the node; 1 of 4 in the zone
		{"c1", "web", 100, 100}, // empty zone
		{"x1", "web", 50, 75},   // nodes without the label count as a zone: 1
		{"a1", "db", 100, 100},  // a service with no tasks
		{"a1", "", 100, 100},    // a task of no service
	}
	for _, tt := range tests {
		tk := task("new", tt.service, dao.Resources{})
		if got := SpreadNodes().Func(tk, nodes[tt.node]); got != tt.nodes {
			t.Errorf("spread-nodes on %s for %q: %d, want %d", tt.node, tt.service, got, tt.nodes)
		}
		if got := SpreadLabel("zone").Func(tk, nodes[tt.node]); got != tt.labels {
			t.Errorf("spread:zone on %s for %q: %d, want %d", tt.node, tt.service, got, tt.labels)
		}
	}
	if got := SpreadLabel("zone").Name; got != "spread:zone" {
		t.Errorf("name %q", got)
	}
}

func TestFewestRecentFailures(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	c := NewClusterInfo()
	c.SetNow(now)
	n := NewNodeInfo(c, readyNode("n", nil))
	tests := []struct {
		failures int
		want     int64
	}{{0, 100}, {1, 50}, {2, 33}, {3, 25}, {4, 20}}
	s := FewestRecentFailures(5 * time.Minute)
	for i, tt := range tests {
		if i > 0 {
			n.RecordFailure("web", now.Add(-time.Minute))
		}
		if got := s.Func(task("t", "web", dao.Resources{}), n); got != tt.want {
			t.Errorf("%d failures: %d, want %d", tt.failures, got, tt.want)
		}
	}
	n.RecordFailure("web", now.Add(-time.Hour)) // too old to count
	if got := s.Func(task("t", "web", dao.Resources{}), n); got != 20 {
		t.Errorf("with an old failure: %d, want 20", got)
	}
	if got := s.Func(task("t", "db", dao.Resources{}), n); got != 100 {
		t.Errorf("other service: %d, want 100", got)
	}
}
