package edge_test

import (
	"context"
	"errors"
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
	defer agent.Close() // stops Run and waits for all it started; containers keep running
	go func() {
		if err := agent.Run(ctx); !errors.Is(err, edge.ErrClosed) && !errors.Is(err, context.Canceled) {
			log.Print(err)
		}
	}()

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

func ExampleRuntime_Subscribe() {
	ctx := context.Background()
	rt, err := edge.New("/run/containerd/containerd.sock")
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	for {
		for ev := range rt.Subscribe(ctx) {
			switch ev.Type {
			case edge.EventExit:
				fmt.Println(ev.ContainerID, "exited with code", ev.ExitCode)
			case edge.EventError:
				if errors.Is(ev.Err, edge.ErrClosed) {
					return
				}
				// ErrSlowSubscriber: events were missed. Re-read, then subscribe again.
				list, _ := rt.List(ctx)
				fmt.Println(len(list), "containers")
			}
		}
		if ctx.Err() != nil {
			return
		}
	}
}

func ExampleRuntime_Status() {
	ctx := context.Background()
	rt, err := edge.New("/run/containerd/containerd.sock")
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	_, err = rt.Status(ctx, "web-1")
	// The same class as containerd's own errors: errdefs.IsNotFound(err) holds too.
	if errors.Is(err, edge.ErrNotFound) {
		fmt.Println("no such container")
	}
}
