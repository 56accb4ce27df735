// Package benchutil holds what Dao's side-by-side benchmark programs share: a private
// containerd with the test images imported, and the statistics they print.
package benchutil

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/opendao/dao/internal/daemon"
	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/registry/ctrd"
	"github.com/opendao/dao/registry/oci"
)

// Namespace is the containerd namespace benchmarks work in.
const Namespace = "bench"

// Env is a private containerd with the busybox and testapp images imported and unpacked.
type Env struct {
	Daemon *daemon.Containerd
	Client *client.Client
	Ctx    context.Context
}

// Start starts the daemon and imports the images. Close it when done.
func Start() (*Env, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("benchmarks run containers and need root")
	}
	d, err := daemon.StartContainerd()
	if err != nil {
		return nil, err
	}
	cl, err := client.New(d.Address, client.WithDefaultNamespace(Namespace))
	if err != nil {
		d.Close()
		return nil, err
	}
	e := &Env{Daemon: d, Client: cl, Ctx: namespaces.WithNamespace(context.Background(), Namespace)}
	for name, build := range map[string]func() (*oci.Image, error){
		testutil.BusyboxImageName: testutil.Busybox,
		testutil.TestAppImageName: testutil.TestApp,
	} {
		img, err := build()
		if err == nil {
			_, err = ctrd.Import(e.Ctx, cl, name, img, ctrd.WithUnpack("overlayfs"))
		}
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("image %s: %w", name, err)
		}
	}
	return e, nil
}

// Close kills every container and removes the daemon and its state.
func (e *Env) Close() {
	daemon.KillAll(e.Client)
	e.Client.Close()
	e.Daemon.Close()
}

// Median returns the median of ds (the mean of the middle two for an even count).
func Median(ds []time.Duration) time.Duration {
	return Percentile(ds, 50)
}

// Percentile returns the p-th percentile of ds by the nearest-rank method.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if p == 50 && len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	rank := int(p/100*float64(len(s)) + 0.999999)
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// Ms formats d in milliseconds with one decimal.
func Ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }

// Pin keeps every thread of this process, and those it starts later, on the CPUs named
// (0-based), and sets GOMAXPROCS to their number: so that two processes of a benchmark on
// one machine each have cores of their own, as they would on two machines.
func Pin(cpus []int) error {
	if len(cpus) == 0 {
		return fmt.Errorf("pin: no CPUs")
	}
	var set unix.CPUSet
	for _, c := range cpus {
		if c < 0 || c >= 1024 {
			return fmt.Errorf("pin: CPU %d: out of range", c)
		}
		set.Set(c)
	}
	// Twice: a thread started during the first pass by one not yet pinned is in the second.
	for range 2 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("pin: %w", err)
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("pin: thread %d: %w", tid, err)
			}
		}
	}
	runtime.GOMAXPROCS(len(cpus))
	return nil
}

// ParseCPUs reads a list of CPUs as Pin takes them: "1", "1,3".
func ParseCPUs(s string) ([]int, error) {
	var cpus []int
	for f := range strings.SplitSeq(s, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("CPUs %q: %q is not a CPU number", s, f)
		}
		cpus = append(cpus, c)
	}
	return cpus, nil
}
