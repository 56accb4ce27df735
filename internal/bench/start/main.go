// Command start measures the cost of starting containers through edge.Runtime against doing
// the same containerd operations directly with the containerd client, in one run on one
// private containerd.
//
//	go run ./internal/bench/start [-n 20] [-rounds 7] [-interleave] [-loggers] [-logger PATH]
//
// Each round creates and starts n busybox containers (sleep 600) one after the other, once
// each way, in alternating order, and times the whole batch; containers are removed between
// batches, untimed. With -interleave, each round starts one container of each way in turn
// (the order rotating) n times, and each container is timed alone, so that a change in the
// machine's load falls on every way alike. The client writes the container's output to a
// log file through the shim (cio.LogFile); edge.Runtime through its logger (edge's doc, "Logs":
// under `go run`, a program built with cgo, the script unless dao-shim-logger is on PATH).
// Both look the image up by name each time. Since Dao applies containerd's default seccomp
// profile, as docker, nerdctl and the CRI do, the client is timed both without a profile and
// with that one (seccomp.WithDefaultProfile), the like-for-like baseline. -loggers adds the
// client with the profile and the script logger, which isolates what the logger costs, and
// -logger adds edge.Runtime with the given dao-shim-logger (edge.WithLoggerBinary). It prints
// the median per-container time of each way and the overheads against both baselines.
package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/opendao/dao"
	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/internal/bench/benchutil"
	"github.com/opendao/dao/internal/daemon"
	"github.com/opendao/dao/internal/testutil"
)

func main() {
	n := flag.Int("n", 20, "containers per batch")
	rounds := flag.Int("rounds", 7, "batches of each kind")
	logger := flag.String("logger", "", "also time edge.Runtime with this `dao-shim-logger` (edge.WithLoggerBinary)")
	loggers := flag.Bool("loggers", false, "also time the client, seccomp, with the script logger through the shim's binary logging")
	interleave := flag.Bool("interleave", false, "time one container of each way in turn instead of batches (-n per round)")
	flag.Parse()
	if err := run(*n, *rounds, *logger, *loggers, *interleave); err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		os.Exit(1)
	}
}

func run(n, rounds int, logger string, loggers, interleave bool) error {
	env, err := benchutil.Start()
	if err != nil {
		return err
	}
	defer env.Close()
	logDir := filepath.Join(env.Daemon.Dir, "logs")
	rt, err := edge.NewFromClient(env.Client, edge.WithNamespace(benchutil.Namespace), edge.WithLogDir(logDir))
	if err != nil {
		return err
	}
	defer rt.Close()

	spec := dao.ContainerSpec{Image: testutil.BusyboxImageName, Command: []string{"sleep", "600"}}
	viaDao := func(rt *edge.Runtime) func(string) error {
		return func(id string) error {
			_, err := rt.Run(env.Ctx, id, spec)
			return err
		}
	}
	// The script the Runtime wrote into the log directory (edge/logger.go).
	scriptLog := cio.LogURI(&url.URL{Scheme: "binary", Path: filepath.Join(logDir, "dao-logger.sh"),
		RawQuery: url.Values{"dir": {logDir}}.Encode()})
	direct := func(profile bool, creator cio.Creator) func(string) error {
		return func(id string) error {
			img, err := env.Client.GetImage(env.Ctx, testutil.BusyboxImageName)
			if err != nil {
				return err
			}
			specOpts := []oci.SpecOpts{oci.WithImageConfig(img), oci.WithProcessArgs("sleep", "600")}
			if profile {
				specOpts = append(specOpts, seccomp.WithDefaultProfile())
			}
			c, err := env.Client.NewContainer(env.Ctx, id,
				client.WithImage(img),
				client.WithSnapshotter("overlayfs"),
				client.WithNewSnapshot(id, img),
				client.WithRuntime("io.containerd.runc.v2", nil),
				client.WithNewSpec(specOpts...),
			)
			if err != nil {
				return err
			}
			cr := creator
			if cr == nil {
				cr = cio.LogFile(filepath.Join(logDir, id+".log"))
			}
			task, err := c.NewTask(env.Ctx, cr)
			if err != nil {
				return err
			}
			return task.Start(env.Ctx)
		}
	}

	type way struct {
		name string
		one  func(id string) error // creates and starts container id
	}
	ways := []way{
		{"edge.Runtime.Run:", viaDao(rt)},
		{"containerd client, no seccomp:", direct(false, nil)},
		{"containerd client, seccomp:", direct(true, nil)},
	}
	if loggers {
		ways = append(ways, way{"client, seccomp, script logger:", direct(true, scriptLog)})
	}
	if logger != "" {
		rtBin, err := edge.NewFromClient(env.Client, edge.WithNamespace(benchutil.Namespace), edge.WithLogDir(logDir),
			edge.WithLoggerBinary(logger))
		if err != nil {
			return err
		}
		defer rtBin.Close()
		ways = append(ways, way{"edge.Runtime.Run, -logger:", viaDao(rtBin)})
	}
	// batch times n containers of way w one after the other, and returns the time per container.
	batch := func(w, round int) (time.Duration, error) {
		begin := time.Now()
		for i := range n {
			if err := ways[w].one(fmt.Sprintf("w%d-%d-%d", w, round+1, i)); err != nil {
				return 0, err
			}
		}
		return time.Since(begin) / time.Duration(n), nil
	}
	// One untimed batch of each warms caches (image unpacked, shim binary in page cache).
	for w := range ways {
		if _, err := batch(w, -1); err != nil {
			return err
		}
		clean(env)
	}
	times := make([][]time.Duration, len(ways))
	for r := range rounds {
		if interleave {
			// One container of each way in turn, in an order that rotates: a change of the
			// machine's load falls on every way alike.
			for i := range n {
				for k := range ways {
					w := (k + i + r) % len(ways)
					begin := time.Now()
					if err := ways[w].one(fmt.Sprintf("w%d-%d-%d", w, r+1, i)); err != nil {
						return err
					}
					times[w] = append(times[w], time.Since(begin))
				}
			}
			clean(env)
			continue
		}
		for k := range ways {
			w := (k + r) % len(ways) // each way goes first, second and third in turn
			d, err := batch(w, r)
			if err != nil {
				return err
			}
			clean(env)
			times[w] = append(times[w], d)
		}
	}
	med := make([]time.Duration, len(ways))
	if interleave {
		fmt.Printf("start latency, %d rounds of %d containers of each way in turn, median per container\n", rounds, n)
		for w := range ways {
			med[w] = benchutil.Median(times[w])
			fmt.Printf("  %-31s %s  (p25 %s, p75 %s, %d containers)\n", ways[w].name, benchutil.Ms(med[w]),
				benchutil.Ms(benchutil.Percentile(times[w], 25)), benchutil.Ms(benchutil.Percentile(times[w], 75)), len(times[w]))
		}
	} else {
		fmt.Printf("start latency, %d containers per batch, %d batches each, median per container\n", n, rounds)
		for w := range ways {
			med[w] = benchutil.Median(times[w])
			fmt.Printf("  %-31s %s  (batches: %v)\n", ways[w].name, benchutil.Ms(med[w]), fmtAll(times[w]))
		}
	}
	for _, base := range []int{1, 2} {
		for w := range ways {
			if w == base || (w > 0 && w < 3) {
				continue
			}
			fmt.Printf("  %s against the %s %+.1f%% (ratio %.3f)\n", strings.TrimSuffix(ways[w].name, ":"),
				strings.TrimSuffix(ways[base].name, ":")+":",
				(float64(med[w])/float64(med[base])-1)*100, float64(med[w])/float64(med[base]))
		}
	}
	return nil
}

func fmtAll(ds []time.Duration) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = benchutil.Ms(d)
	}
	return out
}

// clean kills and deletes every container, untimed.
func clean(env *benchutil.Env) {
	daemon.KillAll(env.Client)
	cs, _ := env.Client.Containers(env.Ctx)
	for _, c := range cs {
		_ = c.Delete(env.Ctx, client.WithSnapshotCleanup)
	}
}
