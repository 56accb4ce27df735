package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opendao/dao"
)

func TestPlacerFilterAndScore(t *testing.T) {
	t.Parallel()
	calls := []string{}
	refuse := errors.New("policy: nope")
	p := &Placer{
		Filters: []Filter{
			{Name: "first", Func: func(*dao.Task, *NodeInfo) error { calls = append(calls, "first"); return nil }},
			{Name: "second", Func: func(*dao.Task, *NodeInfo) error { calls = append(calls, "second"); return refuse }},
			{Name: "third", Func: func(*dao.Task, *NodeInfo) error { calls = append(calls, "third"); return nil }},
		},
		Scorers: []Scorer{
			{Name: "a", Weight: 2, Func: func(*dao.Task, *NodeInfo) int64 { return 30 }},
			{Name: "over", Weight: 1, Func: func(*dao.Task, *NodeInfo) int64 { return 250 }},  // clamped to 100
			{Name: "under", Weight: 5, Func: func(*dao.Task, *NodeInfo) int64 { return -40 }}, // clamped to 0
			{Name: "off", Weight: 0, Func: func(*dao.Task, *NodeInfo) int64 { panic("weight 0 runs") }},
		},
	}
	n := NewNodeInfo(nil, readyNode("n", nil))
	if err := p.Filter(&dao.Task{}, n); err != refuse {
		t.Errorf("Filter: got %v, want the second filter's refusal", err)
	}
	if d := cmp.Diff([]string{"first", "second"}, calls); d != "" {
		t.Errorf("filters run (-want +got):\n%s", d)
	}
	if got, want := p.Score(&dao.Task{}, n), int64(2*30+100); got != want {
		t.Errorf("Score = %d, want %d", got, want)
	}
	if got, want := p.MaxScore(), int64(800); got != want {
		t.Errorf("MaxScore = %d, want %d", got, want)
	}
	var zero Placer
	if err := zero.Filter(&dao.Task{}, n); err != nil || zero.Score(&dao.Task{}, n) != 0 {
		t.Error("the zero Placer should accept every node with score 0")
	}
}

func TestSelect(t *testing.T) {
	t.Parallel()
	c := NewClusterInfo()
	mk := func(id, zone string, memGiB int64, state dao.NodeState) *NodeInfo {
		node := readyNode(id, map[string]string{"zone": zone})
		node.Allocatable.Memory = memGiB * dao.GiB
		node.Status.State = state
		return NewNodeInfo(c, node)
	}
	nodes := []*NodeInfo{
		mk("n1", "a", 1, dao.NodeReady),
		mk("n2", "a", 1, dao.NodeReady),
		mk("n3", "a", 1, dao.NodeReady),
		mk("n4", "b", 8, dao.NodeReady),
		mk("n5", "b", 8, dao.NodeReady),
		mk("n6", "a", 8, dao.NodeDown),
	}
	p, err := DefaultPlacer(dao.Placement{Constraints: []string{"node.labels.zone == a"}})
	if err != nil {
		t.Fatal(err)
	}
	tk := task("t1", "web", dao.Resources{Memory: 2 * dao.GiB})
	best, err := p.Select(tk, nodes)
	if best != nil {
		t.Fatalf("Select placed the task on %s", best.Node().ID)
	}
	var pe *PlacementError
	if !errors.As(err, &pe) || !errors.Is(err, ErrUnschedulable) {
		t.Fatalf("Select: got %v, want a *PlacementError", err)
	}
	want := `policy: no suitable node for task "t1" (6 considered): 3 nodes: insufficient memory; 2 nodes: zone != a; 1 node: node not ready`
	if got := err.Error(); got != want {
		t.Errorf("error:\ngot  %s\nwant %s", got, want)
	}

	// Without the constraint, the large zone b nodes fit; they tie, and the first wins.
	p, _ = DefaultPlacer(dao.Placement{})
	best, err = p.Select(tk, nodes)
	if err != nil || best.Node().ID != "n4" {
		t.Fatalf("Select: got %v, %v; want n4", best, err)
	}
	best.AddTask(tk)
	// The next task of the service goes to the other node, to spread.
	best, err = p.Select(task("t2", "web", dao.Resources{Memory: 2 * dao.GiB}), nodes)
	if err != nil || best.Node().ID != "n5" {
		t.Fatalf("second Select: got %v, %v; want n5", best, err)
	}

	_, err = p.Select(tk, nil)
	if got, want := fmt.Sprint(err), `policy: no suitable node for task "t1": no nodes`; got != want {
		t.Errorf("no nodes: got %q, want %q", got, want)
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	var r Refusals
	if r.String() != "" || r.Nodes() != 0 {
		t.Error("zero Refusals not empty")
	}
	for _, err := range []error{ErrInsufficientMemory, MustParseConstraint("node.labels.zone == a").Filter().Func(&dao.Task{},
		NewNodeInfo(nil, &dao.Node{})), ErrInsufficientMemory, nil, errors.New("custom reason"), ErrInsufficientMemory,
		MustParseConstraint("node.labels.zone == a").Filter().Func(&dao.Task{}, NewNodeInfo(nil, &dao.Node{}))} {
		r.Add(err)
	}
	if got, want := r.String(), "3 nodes: insufficient memory; 2 nodes: zone != a; 1 node: custom reason"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if r.Nodes() != 6 {
		t.Errorf("Nodes() = %d, want 6", r.Nodes())
	}
	want := []RefusalCount{{"insufficient memory", 3}, {"zone != a", 2}, {"custom reason", 1}}
	if d := cmp.Diff(want, r.Counts()); d != "" {
		t.Errorf("Counts (-want +got):\n%s", d)
	}
}

func TestDefaultPlacer(t *testing.T) {
	t.Parallel()
	p, err := DefaultPlacer(dao.Placement{
		Constraints:        []string{"node.labels.disk == ssd"},
		Spread:             []string{"node.labels.zone", "node.labels.rack"},
		MaxReplicasPerNode: 2,
		Platforms:          []dao.Platform{{OS: "linux"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var filters, scorers []string
	for _, f := range p.Filters {
		filters = append(filters, f.Name)
	}
	for _, s := range p.Scorers {
		scorers = append(scorers, fmt.Sprintf("%s*%d", s.Name, s.Weight))
	}
	if d := cmp.Diff([]string{"node-ready", "resources-fit", "platforms", "node.labels.disk == ssd", "max-replicas-per-node"}, filters); d != "" {
		t.Errorf("filters (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"spread:zone*4", "spread:rack*3", "spread-nodes*2", "recent-failures*2", "least-allocated*1"}, scorers); d != "" {
		t.Errorf("scorers (-want +got):\n%s", d)
	}

	p, _ = DefaultPlacer(dao.Placement{})
	if len(p.Filters) != 2 {
		t.Errorf("an empty placement has %d filters, want 2", len(p.Filters))
	}

	for _, pl := range []dao.Placement{
		{Constraints: []string{"node.labels.disk == ssd", "node.labels.zone = a"}},
		{Spread: []string{"zone"}},
	} {
		_, err := DefaultPlacer(pl)
		if !errors.Is(err, ErrSyntax) {
			t.Errorf("DefaultPlacer(%+v): got %v, want a syntax error", pl, err)
		}
	}
}

func TestParseSpread(t *testing.T) {
	t.Parallel()
	tests := []struct {
		attr, key string
		column    int
	}{
		{"node.labels.zone", "zone", 0},
		{"node.labels.topology.kubernetes.io/zone", "topology.kubernetes.io/zone", 0},
		{"zone", "", 1},
		{"node.labels.", "", 13},
		{"node.labels.zo ne", "", 15},
		{"node.id", "", 1},
	}
	for _, tt := range tests {
		key, err := ParseSpread(tt.attr)
		var se *SyntaxError
		switch {
		case tt.column == 0 && (err != nil || key != tt.key):
			t.Errorf("ParseSpread(%q) = %q, %v; want %q", tt.attr, key, err, tt.key)
		case tt.column != 0 && (!errors.As(err, &se) || se.Column != tt.column):
			t.Errorf("ParseSpread(%q): got %v, want a syntax error at column %d", tt.attr, err, tt.column)
		}
	}
}

// TestDefaultPlacerAllocs holds the placer to its promise of no allocations for one
// (task, node) pair, refusals included.
func TestDefaultPlacerAllocs(t *testing.T) {
	_, nodes := benchCluster(t)
	p, err := DefaultPlacer(benchPlacement())
	if err != nil {
		t.Fatal(err)
	}
	tk := benchTask()
	refusing := NewNodeInfo(nodes[0].Cluster(), &dao.Node{ID: "x", Labels: map[string]string{"disk": "hdd"},
		Platform: dao.Platform{OS: "linux", Architecture: "amd64"}, Status: dao.NodeStatus{State: dao.NodeReady}})
	for _, n := range []*NodeInfo{nodes[5], refusing} {
		allocs := testing.AllocsPerRun(100, func() {
			if p.Filter(tk, n) == nil {
				p.Score(tk, n)
			}
		})
		if allocs != 0 {
			t.Errorf("node %s: %v allocations per run, want 0", n.Node().ID, allocs)
		}
	}
	if err := p.Filter(tk, refusing); !strings.Contains(fmt.Sprint(err), "disk != ssd") {
		t.Errorf("refusing node: got %v", err)
	}
}
