package cluster_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/opendao/dao"
	"github.com/opendao/dao/cluster"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/orchestrator/simnode"
)

// An agent given a standby goes to the leader it names; when the leadership moves, the
// old leader's sessions end and the agent follows to the new one, where its node and its
// tasks are found as they were.
func TestAgentsFollowTheLeader(t *testing.T) {
	a := newPlane(t, nil)
	// Replica b: the same CA, an orchestrator of its own, a standby at first.
	storeB, err := orchestrator.NewMemoryStore()
	if err != nil {
		t.Fatal(err)
	}
	defer storeB.Close()
	oB, err := orchestrator.New(storeB, orchestrator.WithHeartbeatTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- oB.Run(ctx) }()
	defer func() { cancel(); <-ran }()
	b, err := cluster.NewServer(a.ca, nil, cluster.WithHeartbeatInterval(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- b.Serve(l) }()
	defer func() { b.Close(); <-served }()
	bAddr := l.Addr().String()

	// No leader known yet: the agent is told so, and keeps trying.
	ident := a.join("edge-1")
	info := dao.Node{ID: "edge-1", Capacity: dao.Resources{MilliCPU: 1000, Memory: dao.GiB},
		Allocatable: dao.Resources{MilliCPU: 1000, Memory: dao.GiB}}
	var client *cluster.Client
	node, err := simnode.New(info, simnode.WithStatusFunc(func(u orchestrator.TaskUpdate) { client.Report(u) }))
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	client, err = cluster.NewClient(bAddr, ident, info, node, cluster.WithBackoff(50*time.Millisecond, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- client.Run(cctx) }()
	defer func() { ccancel(); <-done }()
	time.Sleep(300 * time.Millisecond)
	if client.Connected() {
		t.Fatal("connected to a standby that knows no leader")
	}
	b.Follow(a.addr)
	a.waitFor("edge-1 ready on the leader a", 5*time.Second, func() bool { return a.nodeState("edge-1") == dao.NodeReady })
	if _, err := a.o.CreateService(a.ctx, webSpec(2)); err != nil {
		t.Fatal(err)
	}
	a.waitFor("2 running on a", 5*time.Second, func() bool { return len(a.running("web")) == 2 })

	// The leadership moves to b (whose store, in a real control plane, is the same as
	// a's: here it is empty, and the node registers anew).
	a.srv.Follow(bAddr)
	b.Lead(oB)
	a.waitFor("edge-1 connected to b", 5*time.Second, func() bool {
		ns, err := oB.Nodes(ctx)
		return err == nil && len(ns) == 1 && ns[0].Status.State == dao.NodeReady
	})
	if got := a.srv.Connected(); len(got) != 0 {
		t.Errorf("the old leader still has sessions: %v", got)
	}
	// A join at a standby goes to the leader it names (b's CA state is a's: the same
	// *pki.CA here, as replicas share theirs).
	if _, err := cluster.Join(context.Background(), a.addr, a.token, "edge-2"); err != nil {
		t.Errorf("join at a standby: %v", err)
	}
	// A standby that knows no leader says so, of a class callers retry.
	a.srv.Follow("")
	_, err = cluster.Join(context.Background(), a.addr, a.token, "edge-3")
	if !errdefs.IsUnavailable(err) || !strings.Contains(err.Error(), "no leader") {
		t.Errorf("join at a standby that knows no leader: %v, want Unavailable", err)
	}
}
