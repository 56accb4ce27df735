package cluster_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/cluster"
	"github.com/opendao/dao/cluster/pki"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/orchestrator/simnode"
)

// A control plane serves remote nodes; a node joins with a token and connects. Here the
// node is simulated and everything is on loopback, but the protocol, TLS included, is the
// real one: in a real cluster the node's side is `dao agent`, over an edge.Agent.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The control plane: a CA, an orchestrator, and the node protocol's server.
	ca, _ := pki.NewCA()
	token, _ := ca.NewJoinToken()
	store, _ := orchestrator.NewMemoryStore()
	defer store.Close()
	o, _ := orchestrator.New(store)
	go func() { _ = o.Run(ctx) }()
	srv, _ := cluster.NewServer(ca, o)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()

	// A node joins once (keep its identity with Identity.Save), then connects.
	ident, err := cluster.Join(ctx, l.Addr().String(), token, "edge-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	info := dao.Node{ID: "edge-1", Allocatable: dao.Resources{MilliCPU: 2000, Memory: 4 * dao.GiB}}
	var client *cluster.Client
	node, _ := simnode.New(info, simnode.WithStatusFunc(func(u orchestrator.TaskUpdate) { client.Report(u) }))
	defer node.Close()
	client, _ = cluster.NewClient(l.Addr().String(), ident, info, node)
	go func() { _ = client.Run(ctx) }()
	defer client.Close()

	_, _ = o.CreateService(ctx, dao.ServiceSpec{Name: "web", Replicas: 2,
		Container: dao.ContainerSpec{Image: "example.com/web:1"}})
	for len(node.Tasks()) < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("connected:", srv.Connected())
	fmt.Println("tasks on the node:", len(node.Tasks()))
	// Output:
	// connected: [edge-1]
	// tasks on the node: 2
}
