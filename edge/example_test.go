package edge_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/edge"
)

// These examples need a running containerd and root, so they are compiled but not run; the
// tests in this package run the same calls against a private containerd.

func ExampleRuntime() {
	ctx := context.Background()
	rt, err := edge.New("/run/containerd/containerd.sock", edge.WithNamespace("dao"))
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()

	_, err = rt.Run(ctx, "hello", dao.ContainerSpec{
		Image:     "docker.io/library/busybox:latest", // pulled or imported beforehand
		Command:   []string{"sh", "-c", "echo hello; exit 3"},
		Resources: dao.Resources{Memory: 16 * dao.MiB},
	})
	if err != nil {
		log.Fatal(err)
	}
	st, err := rt.Wait(ctx, "hello")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Reason()) // exited with code 3
	if err := rt.Remove(ctx, "hello"); err != nil {
		log.Fatal(err)
	}
}

func ExampleRuntime_Stop() {
	ctx := context.Background()
	rt, err := edge.New("/run/containerd/containerd.sock")
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	// SIGTERM (or the spec's stop signal), then SIGKILL after 5s instead of the spec's grace.
	st, err := rt.Stop(ctx, "web-1", edge.WithGracePeriod(5*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Reason())
}

func ExampleAgent() {
	ctx := context.Background()
	rt, err := edge.New("/run/containerd/containerd.sock")
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	agent, err := edge.NewAgent(rt,
		edge.WithStateDir("/var/lib/dao/agent"),
		edge.WithStatusFunc(func(u edge.TaskUpdate) {
			fmt.Println(u.TaskID, u.Status.State, u.Status.Message)
		}))
	if err != nil {
		log.Fatal(err)
	}
	go agent.Run(ctx)

	err = agent.Assign(edge.Assignment{Revision: 1, Tasks: []dao.Task{{
		ID:           "web-1",
		Spec:         dao.ContainerSpec{Image: "registry.example.com/web:1.0"},
		Restart:      dao.RestartPolicy{Condition: dao.RestartOnFailure, MaxAttempts: 5, Window: dao.Duration(time.Minute)},
		DesiredState: dao.TaskRunning,
	}}})
	if err != nil {
		log.Fatal(err)
	}
}
