// Command agent measures the dao agent program (`dao agent`, examples/dao) on a private
// containerd: its memory, idle and with 50 containers, and how long it takes, after a
// reboot with the control plane unreachable, to run its last assignment again, side by side
// with the same 10 containers started by a control plane that is reachable.
//
//	go run ./internal/bench/agent [-runs 5] [-containers 50] [-restore 10] [-dao PROGRAM] [-env "K=V ..."]
//
// A reboot is: the agent, every container process and shim, and containerd killed with
// SIGKILL, containerd's --state directory (a tmpfs on a real machine) unmounted and emptied,
// then containerd and the agent started again, with the control plane gone.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/bench/benchutil"
	"github.com/opendao/dao/internal/daemon"
	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/internal/testutil/controlplane"
)

func main() {
	runs := flag.Int("runs", 5, "runs of each measurement")
	containers := flag.Int("containers", 50, "containers for the loaded memory figure")
	restore := flag.Int("restore", 10, "containers of the assignment restored after the reboot")
	prog := flag.String("dao", "", "a dao program built already (default: go build ./examples/dao)")
	env := flag.String("env", "", "variables added to the agent's environment, to compare settings (\"GOMEMLIMIT=off GOGC=50\")")
	flag.Parse()
	agentEnv = strings.Fields(*env)
	if err := run(*prog, *runs, *containers, *restore); err != nil {
		fmt.Fprintln(os.Stderr, "bench agent:", err)
		os.Exit(1)
	}
}

func run(bin string, runs, containers, restore int) error {
	if bin == "" {
		var err error
		if bin, err = buildDao(); err != nil {
			return err
		}
		defer os.RemoveAll(filepath.Dir(bin))
	}
	var idle, loaded, ctrdRSS []int
	var offline, online []time.Duration
	for i := range runs {
		m, err := measure(bin, containers, restore)
		if err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		fmt.Printf("  run %d: agent RSS idle %.1f MiB, with %d containers %.1f MiB (containerd %.1f MiB); "+
			"%d containers running %s after a start with the control plane reachable, %s after a reboot with it unreachable\n",
			i+1, mib(m.idle), containers, mib(m.loaded), mib(m.containerd), restore, ms(m.online), ms(m.offline))
		idle, loaded, ctrdRSS = append(idle, m.idle), append(loaded, m.loaded), append(ctrdRSS, m.containerd)
		offline, online = append(offline, m.offline), append(online, m.online)
	}
	fmt.Printf("\n| median of %d | dao agent |\n| --- | --- |\n", runs)
	fmt.Printf("| RSS, idle (connected, no containers) | %.1f MiB |\n", mib(medianInt(idle)))
	fmt.Printf("| RSS, %d containers running | %.1f MiB |\n", containers, mib(medianInt(loaded)))
	fmt.Printf("| containerd's own RSS, for scale | %.1f MiB |\n", mib(medianInt(ctrdRSS)))
	fmt.Printf("| %d containers running: agent start, control plane reachable | %s |\n", restore, ms(benchutil.Median(online)))
	fmt.Printf("| %d containers running: agent start after a reboot, control plane unreachable | %s |\n", restore, ms(benchutil.Median(offline)))
	fmt.Printf("| offline restore / online start | %.2fx |\n", float64(benchutil.Median(offline))/float64(benchutil.Median(online)))
	return nil
}

type measurement struct {
	idle, loaded, containerd int // RSS in KiB
	online, offline          time.Duration
}

func measure(bin string, containers, restore int) (m measurement, err error) {
	env, err := benchutil.Start()
	if err != nil {
		return m, err
	}
	defer env.Close()
	p, err := controlplane.Start(controlplane.Config{})
	if err != nil {
		return m, err
	}
	defer p.Stop()
	state, err := os.MkdirTemp("", "dao-bench-agent-")
	if err != nil {
		return m, err
	}
	defer os.RemoveAll(state)

	// Memory: idle, then with containers.
	a, err := startAgent(bin, p, env.Daemon.Address, state, p.Token)
	if err != nil {
		return m, err
	}
	defer a.kill()
	if err := waitFor(30*time.Second, func() bool { return len(p.Server.Connected()) == 1 }); err != nil {
		return m, fmt.Errorf("agent connected: %w\n%s", err, a.log)
	}
	time.Sleep(2 * time.Second)
	m.idle = rssKiB(a.cmd.Process.Pid)
	if _, err := p.Orchestrator.CreateService(p.Ctx, service("mem", containers)); err != nil {
		return m, err
	}
	if err := waitFor(3*time.Minute, func() bool { return len(running(env)) == containers }); err != nil {
		return m, fmt.Errorf("%d containers running: %w", containers, err)
	}
	time.Sleep(3 * time.Second)
	m.loaded = rssKiB(a.cmd.Process.Pid)
	m.containerd = rssKiB(daemonPid(env))
	if err := p.Orchestrator.RemoveService(p.Ctx, "mem"); err != nil {
		return m, err
	}
	if err := waitFor(2*time.Minute, func() bool { return len(running(env)) == 0 }); err != nil {
		return m, fmt.Errorf("containers removed: %w", err)
	}

	// Online: a fresh agent start, the control plane assigns the tasks.
	a.kill()
	if _, err := p.Orchestrator.CreateService(p.Ctx, service("web", restore)); err != nil {
		return m, err
	}
	start := time.Now()
	if a, err = startAgent(bin, p, env.Daemon.Address, state, ""); err != nil {
		return m, err
	}
	defer a.kill()
	if err := waitFor(time.Minute, func() bool { return len(running(env)) == restore }); err != nil {
		return m, fmt.Errorf("online start: %w\n%s", err, a.log)
	}
	m.online = time.Since(start)

	// The reboot, with the control plane gone.
	a.kill()
	if err := env.Daemon.PowerOff(env.Client, benchutil.Namespace); err != nil {
		return m, err
	}
	_ = p.Stop() // and the control plane is gone when it comes back
	if err := env.Daemon.Start(); err != nil {
		return m, err
	}
	if n := len(running(env)); n != 0 {
		return m, fmt.Errorf("%d containers run after the wipe", n)
	}
	start = time.Now()
	if a, err = startAgent(bin, p, env.Daemon.Address, state, ""); err != nil {
		return m, err
	}
	defer a.kill()
	if err := waitFor(time.Minute, func() bool { return len(running(env)) == restore }); err != nil {
		return m, fmt.Errorf("offline restore: %w\n%s", err, a.log)
	}
	m.offline = time.Since(start)
	return m, nil
}

func service(name string, n int) dao.ServiceSpec {
	return dao.ServiceSpec{Name: name, Replicas: n, Container: dao.ContainerSpec{Image: testutil.TestAppImageName,
		Resources: dao.Resources{MilliCPU: 10, Memory: 8 * dao.MiB}}}
}

// agentEnv is added to the agent's environment (-env).
var agentEnv []string

type agentProc struct {
	cmd    *exec.Cmd
	log    *strings.Builder
	exited chan struct{}
}

func startAgent(bin string, p *controlplane.Plane, socket, state, token string) (*agentProc, error) {
	args := []string{"agent"}
	if token != "" {
		args = append(args, "--join", token)
	}
	args = append(args, p.Addr, "--state-dir", state, "--node-id", "bench-node",
		"--containerd", socket, "--namespace", benchutil.Namespace)
	a := &agentProc{cmd: exec.Command(bin, args...), log: &strings.Builder{}, exited: make(chan struct{})}
	a.cmd.Stderr = a.log
	a.cmd.Env = append(os.Environ(), agentEnv...)
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := a.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = a.cmd.Wait(); close(a.exited) }()
	return a, nil
}

func (a *agentProc) kill() {
	select {
	case <-a.exited:
	default:
		_ = a.cmd.Process.Kill()
		<-a.exited
	}
}

func running(env *benchutil.Env) map[string]uint32 {
	ctx, cancel := context.WithTimeout(env.Ctx, 10*time.Second)
	defer cancel()
	out, _ := daemon.RunningTasks(ctx, env.Client)
	return out
}

func waitFor(within time.Duration, cond func() bool) error {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", within)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// rssKiB returns a process's resident set size, from /proc.
func rssKiB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return n
		}
	}
	return 0
}

// daemonPid finds containerd's process by its socket.
func daemonPid(env *benchutil.Env) int {
	for _, pid := range procsWith(env.Daemon.Dir, "containerd") {
		return pid
	}
	return 0
}

func procsWith(arg, prog string) []int {
	var out []int
	files, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) == 0 || filepath.Base(args[0]) != prog || !slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, arg) }) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(f))); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

func buildDao() (string, error) {
	dir, err := os.MkdirTemp("", "dao-bench-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "dao")
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	cmd := exec.Command(goBin, "build", "-o", bin, "./examples/dao")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", errors.Join(fmt.Errorf("go build ./examples/dao (run from the module's root): %w", err), errors.New(string(out)))
	}
	return bin, nil
}

func medianInt(xs []int) int {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func mib(kib int) float64 { return float64(kib) / 1024 }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
