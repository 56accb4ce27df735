package testutil_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/opendao/dao/internal/daemon"
	"github.com/opendao/dao/internal/testutil"
)

// TestStaleDaemonIsReaped kills a test process that runs a container under its private
// containerd, as a test timeout would, and checks that the next process to start a daemon
// removes everything it left: the daemon, the shim, the container, runc's record of it,
// the mounts and the directory.
func TestStaleDaemonIsReaped(t *testing.T) {
	if os.Getenv("DAO_REAP_CHILD") != "" {
		leaveADaemonBehind(t)
		return
	}
	testutil.RequireIntegration(t, "containerd", "runc", "containerd-shim-runc-v2")
	id := fmt.Sprintf("reap-%08x", rand.Uint32())
	// A temporary directory of the test's own, so that no other test process (go test runs
	// packages side by side) reaps the daemon before this one looks at it.
	t.Setenv("TMPDIR", t.TempDir())
	cmd := exec.Command(os.Args[0], "-test.run=^TestStaleDaemonIsReaped$", "-test.v")
	cmd.Env = append(os.Environ(), "DAO_REAP_CHILD="+id)
	out, _ := cmd.Output() // it dies of SIGKILL
	var dir string
	pid := 0
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "DIR="); ok {
			dir = v
		}
		if v, ok := strings.CutPrefix(sc.Text(), "PID="); ok {
			pid, _ = strconv.Atoi(v)
		}
	}
	if dir == "" || pid == 0 {
		t.Fatalf("the child did not leave a container running; its output:\n%s", out)
	}
	// The child's namespace, testutil.Namespace in its process.
	state := filepath.Join("/run/containerd/runc", daemon.TestNamespacePrefix+strconv.Itoa(cmd.Process.Pid), id)
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("runc has no state for the leaked container: %v", err)
	}
	if !alive(pid) || len(processesUnder(dir)) == 0 {
		t.Fatalf("nothing was left running (container alive: %v)", alive(pid))
	}

	t.Logf("left behind: %s, container process %d, %d processes from the directory", dir, pid, len(processesUnder(dir)))
	reaped := daemon.ReapStale()
	if !slices.Contains(reaped, dir) {
		t.Errorf("ReapStale reaped %q, not %s", reaped, dir)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s is still there: %v", dir, err)
	}
	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("runc's state %s is still there: %v", state, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for (alive(pid) || len(processesUnder(dir)) > 0) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(pid) {
		t.Errorf("the container's process %d still runs", pid)
	}
	if ps := processesUnder(dir); len(ps) > 0 {
		t.Errorf("processes still run from %s: %v", dir, ps)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), dir+"/") {
		t.Errorf("something is still mounted under %s", dir)
	}
	// A daemon in use is never taken for a stale one.
	live := testutil.StartContainerd(t)
	if slices.Contains(daemon.ReapStale(), live.Dir) {
		t.Errorf("ReapStale reaped a live daemon's %s", live.Dir)
	}
	if _, err := live.Client.Version(context.Background()); err != nil {
		t.Errorf("the live daemon does not answer after ReapStale: %v", err)
	}
}

// leaveADaemonBehind runs in the child: it starts a container and dies without cleaning up.
func leaveADaemonBehind(t *testing.T) {
	id := os.Getenv("DAO_REAP_CHILD")
	c := testutil.StartContainerd(t)
	name := testutil.BusyboxImage(t, c)
	ctx := c.Context(context.Background())
	img, err := c.Client.GetImage(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	ctr, err := c.Client.NewContainer(ctx, id, client.WithNewSnapshot(id, img),
		client.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("sleep", "600")))
	if err != nil {
		t.Fatal(err)
	}
	task, err := ctr.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("DIR=%s\nPID=%d\n", c.Dir, task.Pid())
	os.Stdout.Sync()
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && !strings.HasPrefix(string(b[i+1:]), " Z") // a zombie has ended
}

// processesUnder lists the processes whose command line names a path in dir.
func processesUnder(dir string) []string {
	var found []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), dir+"/") && filepath.Base(filepath.Dir(p)) != strconv.Itoa(os.Getpid()) {
			found = append(found, filepath.Base(filepath.Dir(p))+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return found
}
