// Command recovery measures how fast edge.Agent brings back a container that was killed
// from outside.
//
//	go run ./internal/bench/recovery [-kills 50]
//
// One task runs under an agent on a private containerd. Each time, the container's process is
// killed with SIGKILL (as the kernel or an operator would) and the clock runs until containerd
// itself reports the container's new process started (its /tasks/start event, read on a
// subscription of this program's own, not the agent's) and the task is running. Between kills
// the container runs for longer than its restart policy's ResetAfter, so every kill is a fresh
// failure that earns the immediate first retry, as a service that crashes now and then gets.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/typeurl/v2"

	"github.com/opendao/dao"
	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/internal/bench/benchutil"
	"github.com/opendao/dao/internal/testutil"
)

func main() {
	kills := flag.Int("kills", 50, "number of kills")
	flag.Parse()
	if err := run(*kills); err != nil {
		fmt.Fprintln(os.Stderr, "recovery:", err)
		os.Exit(1)
	}
}

const resetAfter = 500 * time.Millisecond

func run(kills int) error {
	env, err := benchutil.Start()
	if err != nil {
		return err
	}
	defer env.Close()
	rt, err := edge.NewFromClient(env.Client, edge.WithNamespace(benchutil.Namespace),
		edge.WithLogDir(filepath.Join(env.Daemon.Dir, "logs")))
	if err != nil {
		return err
	}
	defer rt.Close()
	agent, err := edge.NewAgent(rt)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(env.Ctx)
	defer cancel()
	go agent.Run(ctx)

	starts, errs := env.Client.Subscribe(ctx, `topic=="/tasks/start"`)
	const id = "victim"
	err = agent.Assign(edge.Assignment{Revision: 1, Tasks: []dao.Task{{
		ID:           id,
		Spec:         dao.ContainerSpec{Image: testutil.TestAppImageName},
		Restart:      dao.RestartPolicy{ResetAfter: dao.Duration(resetAfter)},
		DesiredState: dao.TaskRunning,
	}}})
	if err != nil {
		return err
	}
	waitStart := func(timeout time.Duration) (time.Time, error) {
		deadline := time.After(timeout)
		for {
			select {
			case env := <-starts:
				v, err := typeurl.UnmarshalAny(env.Event)
				if err != nil {
					return time.Time{}, err
				}
				if e, ok := v.(*apievents.TaskStart); ok && e.ContainerID == id {
					return time.Now(), nil
				}
			case err := <-errs:
				return time.Time{}, fmt.Errorf("event stream: %v", err)
			case <-deadline:
				return time.Time{}, fmt.Errorf("no start of %s within %s", id, timeout)
			}
		}
	}
	if _, err := waitStart(60 * time.Second); err != nil {
		return err
	}
	var times []time.Duration
	for i := range kills {
		time.Sleep(resetAfter + 200*time.Millisecond)
		c, err := env.Client.LoadContainer(env.Ctx, id)
		if err != nil {
			return err
		}
		task, err := c.Task(env.Ctx, nil)
		if err != nil {
			return err
		}
		pid := task.Pid()
		begin := time.Now()
		if err := syscall.Kill(int(pid), syscall.SIGKILL); err != nil {
			return fmt.Errorf("kill %d: %w", pid, err)
		}
		at, err := waitStart(10 * time.Second)
		if err != nil {
			return fmt.Errorf("kill %d: %w", i, err)
		}
		times = append(times, at.Sub(begin))
		task, err = c.Task(env.Ctx, nil)
		if err != nil {
			return err
		}
		if st, err := task.Status(env.Ctx); err != nil || st.Status != client.Running || task.Pid() == pid {
			return fmt.Errorf("kill %d: containerd says %v (pid %d, was %d), %v", i, st.Status, task.Pid(), pid, err)
		}
	}
	fmt.Printf("recovery after SIGKILL, %d kills (time until containerd reports the new process started)\n", kills)
	fmt.Printf("  p50 %s  p90 %s  p99 %s  max %s\n",
		benchutil.Ms(benchutil.Percentile(times, 50)), benchutil.Ms(benchutil.Percentile(times, 90)),
		benchutil.Ms(benchutil.Percentile(times, 99)), benchutil.Ms(benchutil.Percentile(times, 100)))
	return nil
}
