package daemon

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// A daemon's directory names the process that started it, so that one whose process died
// without closing it (a test binary killed by its timeout, a panic, Ctrl-C) can be told
// from one in use, and cleaned up by the next process that starts a daemon.

// ownerFile, in a daemon's directory, holds "PID START": the starting process's ID and its
// start time in clock ticks since boot (field 22 of /proc/PID/stat), so that a reused PID
// is not taken for the owner.
const ownerFile = "owner"

// Prefixes of the daemons' directories under os.TempDir().
const (
	containerdPrefix = "dao-ctrd-"
	registryPrefix   = "dao-registry-"
)

// writeOwner marks dir as this process's.
func writeOwner(dir string) error {
	start, err := processStart(os.Getpid())
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ownerFile), fmt.Appendf(nil, "%d %s\n", os.Getpid(), start), 0o644)
}

// processStart returns the start time of process pid, as /proc/PID/stat gives it.
func processStart(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	// The command name (field 2) is in parentheses and may hold spaces: count from after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", fmt.Errorf("daemon: /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return "", fmt.Errorf("daemon: /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	return f[19], nil // field 22
}

// stale reports whether dir has an owner file whose process is gone. A directory without
// one is left alone: nothing says whose it is.
func stale(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return false
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 {
		return false
	}
	start, err := processStart(pid)
	return err != nil || start != f[1]
}

var reapOnce sync.Once

// reapStale runs ReapStale once per process: StartContainerd and StartRegistry call it.
func reapStale() { reapOnce.Do(func() { ReapStale() }) }

// ReapStale cleans up after the daemons of processes that died without closing them, and
// returns the directories it removed. A containerd left behind keeps its shims and
// containers running, and runc keeps their state in /run/containerd/runc/NAMESPACE, which
// every containerd on the host shares: the next test's container of the same ID then
// fails with "container with given ID already exists". Daemons whose process lives, and
// directories that do not say whose they are, are left alone.
func ReapStale() []string {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), containerdPrefix+"*"))
	regs, _ := filepath.Glob(filepath.Join(os.TempDir(), registryPrefix+"*"))
	var reaped []string
	for _, dir := range append(dirs, regs...) {
		if stale(dir) {
			reap(dir)
			reaped = append(reaped, dir)
		}
	}
	// The runc state of the test namespaces of processes that have ended.
	nss, _ := filepath.Glob(filepath.Join(runcRoot, TestNamespacePrefix+"*"))
	for _, dir := range nss {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(dir), TestNamespacePrefix))
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		if os.RemoveAll(dir) == nil {
			reaped = append(reaped, dir)
		}
	}
	return reaped
}

// TestNamespacePrefix begins the containerd namespace of each test process
// (testutil.Namespace): the prefix and the process ID.
const TestNamespacePrefix = "dao-test-"

// reap kills every process that runs from dir (the daemon, containerd's shims), deletes
// the containers whose bundles are under it, unmounts what is mounted under it and
// removes it.
func reap(dir string) {
	killProcesses(dir)
	deleteRuncContainers(dir)
	killProcesses(dir) // shims that were exiting with their containers
	unmountUnder(dir)
	_ = os.RemoveAll(dir)
}

// processesOf returns the PID and command line of every process whose command line names a
// path in dir.
func processesOf(dir string) []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	needle := []byte(dir + "/")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, needle) {
			continue
		}
		pid := filepath.Base(filepath.Dir(p))
		if pid == strconv.Itoa(os.Getpid()) {
			continue
		}
		out = append(out, pid+" "+strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))))
	}
	return out
}

// killProcesses sends SIGKILL to every process whose command line names a path in dir:
// containerd started with its config, docker-registry with its, and the shims, which are
// given the daemon's socket.
func killProcesses(dir string) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	needle := []byte(dir + "/")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, needle) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err == nil && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// deleteRuncContainers force-deletes, with runc, the containers whose state names a path
// in dir (their bundles are in the daemon's state directory): that kills their processes
// and removes their cgroups and runc's record of them.
func deleteRuncContainers(dir string) {
	runc, err := exec.LookPath("runc")
	if err != nil {
		return
	}
	states, _ := filepath.Glob("/run/containerd/runc/*/*/state.json")
	for _, s := range states {
		b, err := os.ReadFile(s)
		if err != nil || !bytes.Contains(b, []byte(dir+"/")) {
			continue
		}
		id := filepath.Dir(s)
		root := filepath.Dir(id)
		_ = exec.Command(runc, "--root", root, "delete", "--force", filepath.Base(id)).Run()
	}
}

// unmountUnder detaches what is mounted under dir, deepest first.
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range bytes.Split(data, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		_ = unix.Unmount(points[i], unix.MNT_DETACH)
	}
}
