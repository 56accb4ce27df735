// Command pipeline measures what pipeline.Runner adds to running steps as containers, in one
// run on one private containerd.
//
//	go run ./internal/bench/pipeline [-n 10] [-rounds 7] [-width 4] [-depth 5] [-sleep 500ms] [-wide-rounds 3]
//
// Per-step overhead: each round runs a pipeline of n steps that run `true` one after the
// other (each needs the one before), and n times the same container directly with the
// containerd client: GetImage, NewContainer (same command, environment, working directory
// and the same two bind mounts: workspace and outputs), NewTask writing to a log file, Wait,
// Start, the exit, Delete of the task and of the container with its snapshot. The order
// alternates between rounds. It prints the median time per step of each way and the
// overhead.
//
// Wide pipeline: a pipeline of width x depth steps (20 by default) in depth layers of width
// steps, each step running `sleep` and needing every step of the layer before, with
// parallelism width, against its critical path (depth sleeps).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/internal/bench/benchutil"
	"github.com/opendao/dao/internal/daemon"
	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/pipeline"
)

func main() {
	n := flag.Int("n", 10, "steps per pipeline (and containers per direct batch) for the per-step overhead")
	rounds := flag.Int("rounds", 7, "batches of each kind for the per-step overhead")
	width := flag.Int("width", 4, "steps per layer of the wide pipeline, and its parallelism")
	depth := flag.Int("depth", 5, "layers of the wide pipeline")
	sleep := flag.Duration("sleep", 500*time.Millisecond, "what each step of the wide pipeline sleeps")
	wideRounds := flag.Int("wide-rounds", 3, "runs of the wide pipeline")
	flag.Parse()
	if err := run(*n, *rounds, *width, *depth, *sleep, *wideRounds); err != nil {
		fmt.Fprintln(os.Stderr, "pipeline:", err)
		os.Exit(1)
	}
}

func run(n, rounds, width, depth int, sleep time.Duration, wideRounds int) error {
	env, err := benchutil.Start()
	if err != nil {
		return err
	}
	defer env.Close()
	work := filepath.Join(env.Daemon.Dir, "work")
	logDir := filepath.Join(env.Daemon.Dir, "logs")
	for _, d := range []string{work, logDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	rt, err := edge.NewFromClient(env.Client, edge.WithNamespace(benchutil.Namespace), edge.WithLogDir(logDir))
	if err != nil {
		return err
	}
	defer rt.Close()
	fmt.Printf("%d CPUs, containerd private, busybox image, Go %s\n\n", runtime.NumCPU(), runtime.Version())

	if err := overhead(env, rt, work, logDir, n, rounds); err != nil {
		return err
	}
	fmt.Println()
	return wide(env, rt, work, width, depth, sleep, wideRounds)
}

// overhead compares a chain of n `true` steps with n direct create-start-wait-delete cycles.
func overhead(env *benchutil.Env, rt *edge.Runtime, work, logDir string, n, rounds int) error {
	r, err := pipeline.NewRunner(rt, pipeline.WithParallelism(1), pipeline.WithCacheDir(filepath.Join(work, "cache")), pipeline.WithScratchDir(work))
	if err != nil {
		return err
	}
	p := &pipeline.Pipeline{Name: "overhead"}
	for i := range n {
		s := pipeline.Step{Name: fmt.Sprintf("s%d", i), Image: testutil.BusyboxImageName, Commands: []string{"true"}}
		if i > 0 {
			s.Needs = []string{fmt.Sprintf("s%d", i-1)}
		}
		p.Steps = append(p.Steps, s)
	}
	viaPipeline := func(round int) (time.Duration, error) {
		begin := time.Now()
		rec, err := r.Run(env.Ctx, p, pipeline.WithRunID(fmt.Sprintf("r%d", round+2)))
		if err != nil {
			return 0, err
		}
		if len(rec.Steps) != n {
			return 0, fmt.Errorf("%d steps ran, want %d", len(rec.Steps), n)
		}
		return time.Since(begin), nil
	}

	// The same container: the command, environment, working directory and mounts the runner
	// gives a step.
	ws := filepath.Join(work, "direct-workspace")
	if err := os.MkdirAll(ws, 0o777); err != nil {
		return err
	}
	direct := func(round int) (time.Duration, error) {
		begin := time.Now()
		for i := range n {
			id := fmt.Sprintf("direct-%d-%d", round+2, i)
			outDir := filepath.Join(work, "direct-out", id)
			if err := os.MkdirAll(outDir, 0o777); err != nil {
				return 0, err
			}
			if err := os.WriteFile(filepath.Join(outDir, "output"), nil, 0o666); err != nil {
				return 0, err
			}
			if err := directStep(env, id, ws, outDir, logDir); err != nil {
				return 0, err
			}
		}
		return time.Since(begin), nil
	}

	// One untimed batch of each warms caches.
	if _, err := viaPipeline(-1); err != nil {
		return err
	}
	if _, err := direct(-1); err != nil {
		return err
	}
	var pipeTimes, directTimes []time.Duration
	for round := range rounds {
		order := []bool{true, false}
		if round%2 == 1 {
			order = []bool{false, true}
		}
		for _, isPipeline := range order {
			var d time.Duration
			var err error
			if isPipeline {
				d, err = viaPipeline(round)
			} else {
				d, err = direct(round)
			}
			if err != nil {
				return err
			}
			if isPipeline {
				pipeTimes = append(pipeTimes, d/time.Duration(n))
			} else {
				directTimes = append(directTimes, d/time.Duration(n))
			}
		}
	}
	mp, md := benchutil.Median(pipeTimes), benchutil.Median(directTimes)
	fmt.Printf("per-step overhead: a step running `true`, %d steps per pipeline one after the other, %d rounds, median per step\n", n, rounds)
	fmt.Printf("  containerd client directly (create, start, wait, delete): %s  (rounds: %s)\n", benchutil.Ms(md), fmtAll(directTimes))
	fmt.Printf("  pipeline.Runner step:                                     %s  (rounds: %s)\n", benchutil.Ms(mp), fmtAll(pipeTimes))
	fmt.Printf("  overhead: %+.1f%% (ratio %.3f)\n", (float64(mp)/float64(md)-1)*100, float64(mp)/float64(md))
	return nil
}

// directStep runs one step's container with the containerd client alone.
func directStep(env *benchutil.Env, id, ws, outDir, logDir string) error {
	ctx := env.Ctx
	img, err := env.Client.GetImage(ctx, testutil.BusyboxImageName)
	if err != nil {
		return err
	}
	envVars := []string{
		"CI=true", "DAO_ATTEMPT=1", "DAO_OUTPUT=/dao/output", "DAO_RUN_ID=direct", "DAO_STEP=" + id,
		"DAO_WORKSPACE=/workspace",
	}
	c, err := env.Client.NewContainer(ctx, id,
		client.WithImage(img),
		client.WithSnapshotter("overlayfs"),
		client.WithNewSnapshot(id, img),
		client.WithRuntime("io.containerd.runc.v2", nil),
		client.WithNewSpec(
			oci.WithImageConfig(img),
			oci.WithProcessArgs("/bin/sh", "-c", "exec 2>&1\nset -e\ntrue\n"),
			oci.WithEnv(envVars),
			oci.WithProcessCwd("/workspace"),
			oci.WithMounts([]specs.Mount{
				{Type: "bind", Source: ws, Destination: "/workspace", Options: []string{"rbind", "rprivate", "rw"}},
				{Type: "bind", Source: outDir, Destination: "/dao", Options: []string{"rbind", "rprivate", "rw"}},
			}),
			// Dao's steps run under containerd's default seccomp profile, as docker's and
			// the CRI's containers do: so does the baseline.
			seccomp.WithDefaultProfile(),
		),
	)
	if err != nil {
		return err
	}
	task, err := c.NewTask(ctx, cio.LogFile(filepath.Join(logDir, id+".log")))
	if err != nil {
		return err
	}
	exit, err := task.Wait(ctx)
	if err != nil {
		return err
	}
	if err := task.Start(ctx); err != nil {
		return err
	}
	st := <-exit
	if code, _, err := st.Result(); err != nil || code != 0 {
		return fmt.Errorf("direct %s: exit %d, %v", id, code, err)
	}
	if _, err := task.Delete(ctx); err != nil {
		return err
	}
	if err := c.Delete(ctx, client.WithSnapshotCleanup); err != nil {
		return err
	}
	return os.Remove(filepath.Join(logDir, id+".log"))
}

// wide runs depth layers of width steps, each needing the whole layer before, and compares
// the wall time with the critical path.
func wide(env *benchutil.Env, rt *edge.Runtime, work string, width, depth int, sleep time.Duration, rounds int) error {
	r, err := pipeline.NewRunner(rt, pipeline.WithParallelism(width), pipeline.WithCacheDir(filepath.Join(work, "cache")), pipeline.WithScratchDir(work))
	if err != nil {
		return err
	}
	p := &pipeline.Pipeline{Name: "wide"}
	cmd := fmt.Sprintf("sleep %.3f", sleep.Seconds())
	for l := range depth {
		for w := range width {
			s := pipeline.Step{Name: fmt.Sprintf("l%d-s%d", l, w), Image: testutil.BusyboxImageName, Commands: []string{cmd}}
			if l > 0 {
				for pw := range width {
					s.Needs = append(s.Needs, fmt.Sprintf("l%d-s%d", l-1, pw))
				}
			}
			p.Steps = append(p.Steps, s)
		}
	}
	critical := time.Duration(depth) * sleep
	sum := time.Duration(depth*width) * sleep
	var walls []time.Duration
	for round := range rounds {
		begin := time.Now()
		rec, err := r.Run(env.Ctx, p, pipeline.WithRunID(fmt.Sprintf("w%d", round)))
		if err != nil {
			return err
		}
		walls = append(walls, time.Since(begin))
		if len(rec.Steps) != depth*width {
			return fmt.Errorf("%d steps ran", len(rec.Steps))
		}
		daemon.KillAll(env.Client) // nothing should be left; this only guards the next round
	}
	w := benchutil.Median(walls)
	fmt.Printf("wide pipeline: %d steps, %d layers of %d, parallelism %d, each step `%s`, %d runs, median\n", depth*width, depth, width, width, cmd, rounds)
	fmt.Printf("  critical path of the commands: %s (sum of all steps: %s)\n", benchutil.Ms(critical), benchutil.Ms(sum))
	fmt.Printf("  wall time:                     %s  (runs: %s)\n", benchutil.Ms(w), fmtAll(walls))
	fmt.Printf("  wall / critical path: %.2f; overhead per layer: %s\n", float64(w)/float64(critical), benchutil.Ms((w-critical)/time.Duration(depth)))
	return nil
}

func fmtAll(ds []time.Duration) string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = benchutil.Ms(d)
	}
	return strings.Join(out, " ")
}
