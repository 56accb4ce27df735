package simnode_test

import (
	"fmt"
	"log"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/clock"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/orchestrator/simnode"
)

func ExampleNewCluster() {
	// Three nodes in two zones, living on a clock that the example moves.
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c, err := simnode.NewCluster(3,
		simnode.WithClusterSeed(1),
		simnode.WithShapes(simnode.Label("zone", "a", "b")),
		simnode.WithNodeOptions(
			simnode.WithClock(clk),
			simnode.WithStartLatency(simnode.Fixed(2*time.Second))),
		simnode.WithClusterStatusFunc(func(nodeID string, u orchestrator.TaskUpdate) {
			fmt.Printf("%s %s: %s (%s)\n", nodeID, u.TaskID, u.Status.State, u.Status.Message)
		}))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	for _, n := range c.Infos() {
		fmt.Println(n.ID, "zone", n.Labels["zone"])
	}

	// The control plane gives node-0002 its assignment: the full set of its tasks.
	web := dao.Task{ID: "web.1", ServiceID: "web", DesiredState: dao.TaskRunning,
		Spec: dao.ContainerSpec{Image: "registry.example.com/web:1.0"}}
	n := c.Node("node-0002")
	if err := n.Assign(orchestrator.Assignment{Revision: 1, Tasks: []dao.Task{web}}); err != nil {
		log.Fatal(err)
	}
	clk.Advance(2 * time.Second)

	// Its container crashes; the node restarts it by the task's restart policy.
	if err := n.Crash("web.1", 137); err != nil {
		log.Fatal(err)
	}
	clk.Advance(2 * time.Second)
	// Output:
	// node-0001 zone a
	// node-0002 zone b
	// node-0003 zone a
	// node-0002 web.1: preparing (creating container)
	// node-0002 web.1: running (running)
	// node-0002 web.1: running (exited with code 137; restart in 0s)
	// node-0002 web.1: running (running)
}
