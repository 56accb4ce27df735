// Command ocirt measures what the OCI runtime under containerd's runc v2 shim costs: the
// create+start of a container, and the restart of a killed one (delete the task, create a new
// one, start it), with runc and with crun side by side in one run, through the containerd client
// on a private containerd: busybox, containerd's default seccomp profile, no logger (cio.NullIO),
// the runtime chosen per container with the shim's options (options.Options.BinaryName).
//
//	go run ./internal/bench/ocirt [-n 20] [-runtimes runc,crun]
//	go run ./internal/bench/ocirt -runtimes runc,runc+group
//
// A runtime named with "+group" runs its containers in one shim group (the runc v2 shim's
// io.containerd.runc.v2.group annotation) beside a long-lived member, as the CRI runs a
// pod's containers beside its pause container: a restart then finds the group's shim up.
//
// The runtimes alternate container by container, so both see the same machine. It prints
// p50/p90/p99 of each operation per runtime, each runtime's p50 and p99 against the first's,
// and the median of each phase of a restart.
//
// crun 1.8 (Debian 12) refuses two things runc accepts, which this program works around or
// leaves to the caller:
//
//   - a spec whose ociVersion is not 1.0.x ("unknown version specified"), and containerd's
//     client writes the version of its runtime-spec module (1.3.0): the spec here declares
//     1.0.2, which runc ignores;
//
//   - a cgroup v1 host whose v2 hierarchy (/sys/fs/cgroup/unified) holds a controller ("cgroups
//     in hybrid mode not supported, drop all controllers from cgroupv2"), as the hosts Dao is
//     developed on do (hugetlb): run it in a mount namespace of its own without that hierarchy,
//     where both runtimes see a plain cgroup v1 host:
//
//     go build -o /tmp/ocirt ./internal/bench/ocirt
//     unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified && /tmp/ocirt -n 40'
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/opendao/dao/internal/bench/benchutil"
	"github.com/opendao/dao/internal/testutil"
)

func main() {
	n := flag.Int("n", 20, "containers (and restarts) per runtime")
	runtimes := flag.String("runtimes", "runc,crun", "OCI runtime binaries to compare, the first the baseline")
	flag.Parse()
	if *n < 1 || *runtimes == "" {
		fmt.Fprintln(os.Stderr, "ocirt: -n must be at least 1 and -runtimes name at least one runtime")
		os.Exit(2)
	}
	if err := run(*n, strings.Split(*runtimes, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "ocirt:", err)
		os.Exit(1)
	}
}

// phases are the steps of one restart.
type phases struct{ delete, create, start time.Duration }

func (p phases) total() time.Duration { return p.delete + p.create + p.start }

func run(n int, bins []string) error {
	env, err := benchutil.Start()
	if err != nil {
		return err
	}
	defer env.Close()
	img, err := env.Client.GetImage(env.Ctx, testutil.BusyboxImageName)
	if err != nil {
		return err
	}
	for _, bin := range bins {
		if strings.HasSuffix(bin, groupSuffix) {
			// The group's long-lived member, which keeps its shim up across the restarts of
			// the others.
			c, task, _, err := createStart(env, img, "anchor", bin)
			if err != nil {
				return fmt.Errorf("anchor of the shim group: %w", err)
			}
			defer func() {
				_, _ = task.Delete(env.Ctx, client.WithProcessKill)
				_ = c.Delete(env.Ctx, client.WithSnapshotCleanup)
			}()
			break
		}
	}
	creates := map[string][]time.Duration{}
	restarts := map[string][]phases{}
	fmt.Printf("load average %s before\n", loadavg())
	for i := -1; i < n; i++ { // round -1 is untimed, to warm caches
		for k := range bins {
			bin := bins[(k+i+1)%len(bins)]
			id := fmt.Sprintf("%s-%d", strings.ReplaceAll(bin, "+", "-"), i+1)
			c, task, d, err := createStart(env, img, id, bin)
			if err != nil {
				return fmt.Errorf("%s: create: %w", bin, err)
			}
			p, err := restartOnce(env.Ctx, c, task)
			if err != nil {
				return fmt.Errorf("%s: restart: %w", bin, err)
			}
			if i >= 0 {
				creates[bin] = append(creates[bin], d)
				restarts[bin] = append(restarts[bin], p)
			}
		}
	}
	fmt.Printf("load average %s after\n", loadavg())

	restartTotals := map[string][]time.Duration{}
	for bin, ps := range restarts {
		for _, p := range ps {
			restartTotals[bin] = append(restartTotals[bin], p.total())
		}
	}
	for _, op := range []struct {
		name string
		ds   map[string][]time.Duration
	}{{"create+start", creates}, {"restart (delete, new task, start)", restartTotals}} {
		fmt.Printf("%s, %d each:\n", op.name, n)
		base := op.ds[bins[0]]
		for _, bin := range bins {
			ds := op.ds[bin]
			fmt.Printf("  %-6s p50 %s  p90 %s  p99 %s   p50 ratio %.2f  p99 ratio %.2f\n", bin,
				benchutil.Ms(benchutil.Percentile(ds, 50)), benchutil.Ms(benchutil.Percentile(ds, 90)),
				benchutil.Ms(benchutil.Percentile(ds, 99)),
				float64(benchutil.Percentile(ds, 50))/float64(benchutil.Percentile(base, 50)),
				float64(benchutil.Percentile(ds, 99))/float64(benchutil.Percentile(base, 99)))
		}
	}
	fmt.Println("restart phases, median:")
	for _, bin := range bins {
		var del, cre, sta []time.Duration
		for _, p := range restarts[bin] {
			del, cre, sta = append(del, p.delete), append(cre, p.create), append(sta, p.start)
		}
		fmt.Printf("  %-6s delete %s  new task %s  start %s\n", bin,
			benchutil.Ms(benchutil.Median(del)), benchutil.Ms(benchutil.Median(cre)), benchutil.Ms(benchutil.Median(sta)))
	}
	return nil
}

// groupSuffix, after a runtime's name in -runtimes, runs its containers in one shim group
// (the runc v2 shim's io.containerd.runc.v2.group annotation) with a long-lived member,
// so that a restart finds the group's shim running instead of stopping one and starting
// another.
const groupSuffix = "+group"

// createStart creates container id with OCI runtime bin (with groupSuffix: in the shim
// group) and starts its task, timed.
func createStart(env *benchutil.Env, img client.Image, id, bin string) (client.Container, client.Task, time.Duration, error) {
	begin := time.Now()
	bin, grouped := strings.CutSuffix(bin, groupSuffix)
	specOpts := []oci.SpecOpts{oci.WithImageConfig(img), oci.WithProcessArgs("sleep", "600"),
		seccomp.WithDefaultProfile(), specVersion}
	if grouped {
		specOpts = append(specOpts, oci.WithAnnotations(map[string]string{"io.containerd.runc.v2.group": "ocirt-" + bin}))
	}
	c, err := env.Client.NewContainer(env.Ctx, id,
		client.WithImage(img),
		client.WithSnapshotter("overlayfs"),
		client.WithNewSnapshot(id, img),
		client.WithRuntime("io.containerd.runc.v2", &options.Options{BinaryName: bin}),
		client.WithNewSpec(specOpts...),
	)
	if err != nil {
		return nil, nil, 0, err
	}
	task, err := c.NewTask(env.Ctx, cio.NullIO)
	if err != nil {
		return nil, nil, 0, err
	}
	if err := task.Start(env.Ctx); err != nil {
		return nil, nil, 0, err
	}
	return c, task, time.Since(begin), nil
}

// restartOnce kills the task with SIGKILL, waits for its exit, and times what brings it back:
// delete the task, create a new one, start it. The container is then removed, untimed.
func restartOnce(ctx context.Context, c client.Container, task client.Task) (phases, error) {
	exit, err := task.Wait(ctx)
	if err != nil {
		return phases{}, err
	}
	if err := syscall.Kill(int(task.Pid()), syscall.SIGKILL); err != nil {
		return phases{}, err
	}
	<-exit
	begin := time.Now()
	if _, err := task.Delete(ctx); err != nil {
		return phases{}, err
	}
	deleted := time.Now()
	if task, err = c.NewTask(ctx, cio.NullIO); err != nil {
		return phases{}, err
	}
	created := time.Now()
	if err := task.Start(ctx); err != nil {
		return phases{}, err
	}
	p := phases{deleted.Sub(begin), created.Sub(deleted), time.Since(created)}

	_ = task.Kill(ctx, syscall.SIGKILL)
	if exit, err := task.Wait(ctx); err == nil {
		<-exit
	}
	if _, err := task.Delete(ctx); err != nil {
		return phases{}, err
	}
	return p, c.Delete(ctx, client.WithSnapshotCleanup)
}

// specVersion declares the spec's version 1.0.2, which crun 1.8 requires (it refuses any but
// 1.0.x) and runc ignores; the spec uses nothing newer.
func specVersion(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
	s.Version = "1.0.2"
	return nil
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
