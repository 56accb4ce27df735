package scheduler_test

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/opendao/dao"
	"github.com/opendao/dao/orchestrator/scheduler"
	"github.com/opendao/dao/policy"
)

// Three nodes in two zones; a service of four tasks spread over the zones (two tasks in
// each, whatever the number of nodes in it), each asking for 1 GiB; then a task that fits
// nowhere, which stays pending with the refusals counted by reason.
func Example() {
	// A fixed random source, so that the output is the same each run; the default is seeded
	// randomly.
	s, err := scheduler.New(scheduler.WithRand(rand.New(rand.NewPCG(1, 2))))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, n := range []struct{ id, zone string }{{"a1", "a"}, {"a2", "a"}, {"b1", "b"}} {
		res := dao.Resources{MilliCPU: 4000, Memory: 4 * dao.GiB}
		s.SetNode(&dao.Node{ID: n.id, Labels: map[string]string{"zone": n.zone},
			Capacity: res, Allocatable: res, Status: dao.NodeStatus{State: dao.NodeReady}})
	}

	place := func(service string, n int, mem int64) {
		p, err := s.Placer(service, 1, dao.Placement{Spread: []string{"node.labels.zone"}})
		if err != nil {
			fmt.Println(err)
			return
		}
		tasks := make([]*dao.Task, n)
		for i := range tasks {
			tasks[i] = &dao.Task{ID: fmt.Sprintf("%s.%d", service, i+1), ServiceID: service, Slot: i + 1,
				Spec:         dao.ContainerSpec{Image: service, Resources: dao.Resources{Memory: mem}},
				DesiredState: dao.TaskRunning}
		}
		for _, d := range s.Place(p, tasks) {
			if errors.Is(d.Err, policy.ErrUnschedulable) {
				fmt.Printf("%s: pending: %v\n", d.Task.ID, d.Err)
				continue
			}
			fmt.Printf("%s -> %s (zone %s)\n", d.Task.ID, d.NodeID, s.Node(d.NodeID).Node().Labels["zone"])
		}
	}
	place("web", 4, dao.GiB)
	place("db", 1, 8*dao.GiB)
	// Output:
	// web.1 -> b1 (zone b)
	// web.2 -> a1 (zone a)
	// web.3 -> a2 (zone a)
	// web.4 -> b1 (zone b)
	// db.1: pending: policy: no suitable node for task "db.1" (3 considered): 3 nodes: insufficient memory
}
