package orchestrator_test

import (
	"context"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/orchestrator"
)

// A node's connection closed (its agent died): Disconnect makes it disconnected at once,
// rather than after the heartbeat timeout, and down once the grace has passed too.
func ExampleOrchestrator_Disconnect() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, _ := orchestrator.NewMemoryStore()
	defer store.Close()
	o, _ := orchestrator.New(store, orchestrator.WithHeartbeatTimeout(time.Minute),
		orchestrator.WithGrace(200*time.Millisecond))
	go func() { _ = o.Run(ctx) }()
	_ = o.AddNode(ctx, dao.Node{ID: "edge-1"}, orchestrator.AssignFunc(func(orchestrator.Assignment) error { return nil }))

	_ = o.Disconnect("edge-1", "connection closed by the node")
	for _, want := range []dao.NodeState{dao.NodeDisconnected, dao.NodeDown} {
		for {
			ns, _ := o.Nodes(ctx)
			if ns[0].Status.State == want {
				// The message says why, and when: "connection closed by the node 201ms
				// ago (grace 200ms)".
				why, _, ago := strings.Cut(ns[0].Status.Message, " ago")
				if ago {
					why = why[:strings.LastIndex(why, " ")]
				}
				fmt.Printf("%s: %s\n", ns[0].Status.State, why)
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Output:
	// disconnected: connection closed by the node
	// down: connection closed by the node
}

// A control plane whose nodes are few and far apart may rather replace the tasks of most
// of them at once than wait: it raises the share of silent nodes it holds, or turns the
// hold off with 0. A share past 1 is refused, naming the option.
func ExampleWithMassSilence() {
	store, err := orchestrator.NewMemoryStore()
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	if _, err := orchestrator.New(store, orchestrator.WithMassSilence(0.9)); err != nil {
		log.Fatal(err)
	}
	_, err = orchestrator.New(store, orchestrator.WithMassSilence(1.5))
	fmt.Println(err)
	// Output: orchestrator: WithMassSilence: 1.5: must be between 0 (off) and 1: dao: invalid
}
