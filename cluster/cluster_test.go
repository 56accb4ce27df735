package cluster_test

import (
	"testing"
	"time"

	"github.com/opendao/dao"
)

// TestRemoteNodesRunAService: simulated nodes behind the real protocol over loopback join,
// connect, take a service's tasks and report them running; the orchestrator cannot tell them
// from local ones.
func TestRemoteNodesRunAService(t *testing.T) {
	p := newPlane(t, nil)
	nodes := []*remote{p.connect("edge-1"), p.connect("edge-2"), p.connect("edge-3")}
	p.waitFor("3 nodes connected", 5*time.Second, func() bool { return len(p.srv.Connected()) == 3 })
	if _, err := p.o.CreateService(p.ctx, webSpec(6)); err != nil {
		t.Fatal(err)
	}
	p.waitFor("6 running", 10*time.Second, func() bool { return len(p.running("web")) == 6 })
	per := map[string]int{}
	for _, tk := range p.running("web") {
		per[tk.NodeID]++
	}
	for _, n := range nodes {
		if per[n.id] != 2 {
			t.Errorf("node %s runs %d tasks, want 2 (spread: %v)", n.id, per[n.id], per)
		}
		if got := len(n.node.Tasks()); got != 2 {
			t.Errorf("node %s holds %d tasks, want 2", n.id, got)
		}
		if s := n.client.Sessions(); s != 1 {
			t.Errorf("node %s opened %d sessions, want 1", n.id, s)
		}
	}
	for _, id := range []string{"edge-1", "edge-2", "edge-3"} {
		if st := p.nodeState(id); st != dao.NodeReady {
			t.Errorf("node %s is %s, want ready", id, st)
		}
	}
}
