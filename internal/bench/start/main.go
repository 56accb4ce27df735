// Command start measures the cost of starting containers through edge.Runtime against doing
// the same containerd operations directly with the containerd client, in one run on one
// private containerd.
//
//	go run ./internal/bench/start [-n 20] [-rounds 7]
//
// Each round creates and starts n busybox containers (sleep 600) one after the other, once
// each way, in alternating order, and times the whole batch; containers are removed between
// batches, untimed. Both ways write the container's output to a log file through the shim
// (cio.LogFile) and look the image up by name each time. Since Dao applies containerd's
// default seccomp profile, as docker, nerdctl and the CRI do, the client is timed both
// without a profile and with that one (seccomp.WithDefaultProfile), the like-for-like
// baseline. It prints the median per-container time of each way and the overhead of
// edge.Runtime against each.
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
	flag.Parse()
	if err := run(*n, *rounds, *logger, *loggers); err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		os.Exit(1)
	}
}

func run(n, rounds int, logger string, loggers bool) error {
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
	viaDao := func(rt *edge.Runtime, prefix string) func(int) (time.Duration, error) {
		return func(round int) (time.Duration, error) {
			begin := time.Now()
			for i := range n {
				if _, err := rt.Run(env.Ctx, fmt.Sprintf("%s-%d-%d", prefix, round+1, i), spec); err != nil {
					return 0, err
				}
			}
			return time.Since(begin), nil
		}
	}
	// The script the Runtime wrote into the log directory (edge/logger.go).
	scriptLog := cio.LogURI(&url.URL{Scheme: "binary", Path: filepath.Join(logDir, "dao-logger.sh"),
		RawQuery: url.Values{"dir": {logDir}}.Encode()})
	direct := func(round int, profile bool, creator cio.Creator) (time.Duration, error) {
		begin := time.Now()
		for i := range n {
			id := fmt.Sprintf("direct-%t-%t-%d-%d", profile, creator != nil, round+1, i)
			img, err := env.Client.GetImage(env.Ctx, testutil.BusyboxImageName)
			if err != nil {
				return 0, err
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
				return 0, err
			}
			cr := creator
			if cr == nil {
				cr = cio.LogFile(filepath.Join(logDir, id+".log"))
			}
			task, err := c.NewTask(env.Ctx, cr)
			if err != nil {
				return 0, err
			}
			if err := task.Start(env.Ctx); err != nil {
				return 0, err
			}
		}
		return time.Since(begin), nil
	}

	ways := []struct {
		name string
		run  func(int) (time.Duration, error)
	}{
		{"edge.Runtime.Run:", viaDao(rt, "dao")},
		{"containerd client, no seccomp:", func(r int) (time.Duration, error) { return direct(r, false, nil) }},
		{"containerd client, seccomp:", func(r int) (time.Duration, error) { return direct(r, true, nil) }},
	}
	if loggers {
		ways = append(ways, struct {
			name string
			run  func(int) (time.Duration, error)
		}{"client, seccomp, script logger:", func(r int) (time.Duration, error) { return direct(r, true, scriptLog) }})
	}
	if logger != "" {
		rtBin, err := edge.NewFromClient(env.Client, edge.WithNamespace(benchutil.Namespace), edge.WithLogDir(logDir),
			edge.WithLoggerBinary(logger))
		if err != nil {
			return err
		}
		defer rtBin.Close()
		ways = append(ways, struct {
			name string
			run  func(int) (time.Duration, error)
		}{"edge.Runtime.Run, -logger:", viaDao(rtBin, "bin")})
	}
	// One untimed batch of each warms caches (image unpacked, shim binary in page cache).
	for _, w := range ways {
		if _, err := w.run(-1); err != nil {
			return err
		}
		clean(env)
	}
	times := make([][]time.Duration, len(ways))
	for r := range rounds {
		for k := range ways {
			w := (k + r) % len(ways) // each way goes first, second and third in turn
			d, err := ways[w].run(r)
			if err != nil {
				return err
			}
			clean(env)
			times[w] = append(times[w], d/time.Duration(n))
		}
	}
	fmt.Printf("start latency, %d containers per batch, %d batches each, median per container\n", n, rounds)
	med := make([]time.Duration, len(ways))
	for w := range ways {
		med[w] = benchutil.Median(times[w])
		fmt.Printf("  %-31s %s  (batches: %v)\n", ways[w].name, benchutil.Ms(med[w]), fmtAll(times[w]))
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
