// Command converge measures how long the orchestrator takes to bring a replicated service
// from CreateService to all its tasks running on one edge node, against creating and
// starting the same containers directly with the containerd client, on one private
// containerd.
//
//	go run ./internal/bench/converge [-n 20] [-rounds 5]
//
// The orchestrator (memory store) and one edge.Agent run in this process for the whole
// run. Each round creates a service of n testapp replicas and times it until the store
// says every task runs (the agent has started each container and reported it), then
// removes it, untimed; and, in alternating order, creates and starts n containers of the
// same image directly, one after the other (as ./internal/bench/start does) and, as a
// second baseline, all at once from n goroutines (as the agent does). Both write the
// container's output to a log file through the shim, and apply containerd's default
// seccomp profile, as Dao's containers do. It prints the medians and the ratio of the
// orchestrator's time to each baseline.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/opendao/dao"
	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/internal/bench/benchutil"
	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/orchestrator"
)

func main() {
	n := flag.Int("n", 20, "replicas per service")
	rounds := flag.Int("rounds", 5, "rounds of each kind")
	flag.Parse()
	if err := run(*n, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "converge:", err)
		os.Exit(1)
	}
}

func run(n, rounds int) error {
	env, err := benchutil.Start()
	if err != nil {
		return err
	}
	defer env.Close()
	ctx, cancel := context.WithCancel(env.Ctx)
	defer cancel()
	logDir := filepath.Join(env.Daemon.Dir, "logs")

	store, err := orchestrator.NewMemoryStore()
	if err != nil {
		return err
	}
	defer store.Close()
	o, err := orchestrator.New(store)
	if err != nil {
		return err
	}
	rt, err := edge.NewFromClient(env.Client, edge.WithNamespace(benchutil.Namespace), edge.WithLogDir(logDir))
	if err != nil {
		return err
	}
	defer rt.Close()
	agent, err := edge.NewAgent(rt, edge.WithStatusFunc(func(u edge.TaskUpdate) { o.ReportStatus("local", u) }))
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { _ = agent.Run(ctx) })
	wg.Go(func() { _ = o.Run(ctx) })
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = o.Heartbeat("local")
			}
		}
	})
	if err := o.AddNode(ctx, dao.Node{ID: "local"}, agent); err != nil {
		return err
	}

	running := func(service string) int {
		ts, _ := o.Tasks(ctx, orchestrator.TaskFilter{ServiceID: service, Live: true})
		k := 0
		for _, t := range ts {
			if t.Status.State == dao.TaskRunning {
				k++
			}
		}
		return k
	}
	viaOrchestrator := func(round int) (time.Duration, error) {
		name := fmt.Sprintf("web-%d", round+2)
		spec := dao.ServiceSpec{Name: name, Replicas: n, Container: dao.ContainerSpec{Image: testutil.TestAppImageName}}
		begin := time.Now()
		if _, err := o.CreateService(ctx, spec); err != nil {
			return 0, err
		}
		for running(name) < n {
			if time.Since(begin) > 2*time.Minute {
				return 0, fmt.Errorf("service %s: %d of %d running after 2 minutes", name, running(name), n)
			}
			time.Sleep(2 * time.Millisecond)
		}
		d := time.Since(begin)
		if err := o.RemoveService(ctx, name); err != nil {
			return 0, err
		}
		for {
			ts, _ := o.Tasks(ctx, orchestrator.TaskFilter{ServiceID: name})
			if len(ts) == 0 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		return d, nil
	}
	create := func(id string) error {
		img, err := env.Client.GetImage(env.Ctx, testutil.TestAppImageName)
		if err != nil {
			return err
		}
		c, err := env.Client.NewContainer(env.Ctx, id,
			client.WithImage(img),
			client.WithSnapshotter("overlayfs"),
			client.WithNewSnapshot(id, img),
			client.WithRuntime("io.containerd.runc.v2", nil),
			// With containerd's default seccomp profile, as Dao's containers (and docker's)
			// run.
			client.WithNewSpec(oci.WithImageConfig(img), seccomp.WithDefaultProfile()),
		)
		if err != nil {
			return err
		}
		task, err := c.NewTask(env.Ctx, cio.LogFile(filepath.Join(logDir, id+".log")))
		if err != nil {
			return err
		}
		return task.Start(env.Ctx)
	}
	sequential := func(round int) (time.Duration, error) {
		begin := time.Now()
		for i := range n {
			if err := create(fmt.Sprintf("seq-%d-%d", round+2, i)); err != nil {
				return 0, err
			}
		}
		d := time.Since(begin)
		clean(env)
		return d, nil
	}
	parallel := func(round int) (time.Duration, error) {
		begin := time.Now()
		errs := make(chan error, n)
		for i := range n {
			go func() { errs <- create(fmt.Sprintf("par-%d-%d", round+2, i)) }()
		}
		var first error
		for range n {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		d := time.Since(begin)
		clean(env)
		return d, first
	}

	kinds := []func(int) (time.Duration, error){viaOrchestrator, sequential, parallel}
	for _, f := range kinds { // warm up, untimed
		if _, err := f(-1); err != nil {
			return err
		}
	}
	times := make([][]time.Duration, len(kinds))
	for r := range rounds {
		for j := range kinds {
			k := (j + r) % len(kinds) // rotate the order
			d, err := kinds[k](r)
			if err != nil {
				return err
			}
			times[k] = append(times[k], d)
		}
	}
	mo, ms, mp := benchutil.Median(times[0]), benchutil.Median(times[1]), benchutil.Median(times[2])
	fmt.Printf("convergence of %d replicas on one node, %d rounds, median\n", n, rounds)
	fmt.Printf("  containerd client, one after the other: %s (rounds: %v)\n", benchutil.Ms(ms), fmtAll(times[1]))
	fmt.Printf("  containerd client, all at once:         %s (rounds: %v)\n", benchutil.Ms(mp), fmtAll(times[2]))
	fmt.Printf("  orchestrator, create to all running:    %s (rounds: %v)\n", benchutil.Ms(mo), fmtAll(times[0]))
	fmt.Printf("  ratio to one after the other: %.3f; to all at once: %.3f\n", float64(mo)/float64(ms), float64(mo)/float64(mp))
	return nil
}

func fmtAll(ds []time.Duration) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = benchutil.Ms(d)
	}
	return out
}

// clean kills and deletes every container not of the orchestrator's, untimed.
func clean(env *benchutil.Env) {
	cs, _ := env.Client.Containers(env.Ctx)
	for _, c := range cs {
		if labels, _ := c.Labels(env.Ctx); labels[edge.LabelTask] != "" {
			continue
		}
		if t, err := c.Task(env.Ctx, nil); err == nil {
			_ = t.Kill(env.Ctx, 9)
			if ch, err := t.Wait(env.Ctx); err == nil {
				<-ch
			}
			_, _ = t.Delete(env.Ctx)
		}
		_ = c.Delete(env.Ctx, client.WithSnapshotCleanup)
	}
}
