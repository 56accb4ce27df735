// Command recovery measures how fast edge.Agent brings back a container that was killed
// from outside, beside the naive restart a user would write with the containerd client.
//
//	go run ./internal/bench/recovery [-kills 30] [-hogs 2] [-slowest 3]
//
// Two containers of the same image and spec run on one private containerd: "victim", a task
// under an agent, and "naive", in a namespace of its own, which a small loop of this program
// restarts with the containerd client (on its /tasks/exit event: delete the task, create a new
// one, start it). Each time, a container's process is killed with SIGKILL (as the kernel or an
// operator would) and the clock runs until containerd itself reports the container's new
// process started (its /tasks/start event, read on a subscription of this program's own). The
// kills of the two alternate, so both see the same machine. Between kills the container runs
// for longer than its restart policy's ResetAfter, so every kill is a fresh failure that earns
// the immediate first retry, as a service that crashes now and then gets.
//
// The kills are made twice: on the machine as it is ("idle"), then with -hogs processes
// spinning at normal priority (`yes > /dev/null`). For each path and load the program prints
// p50/p90/p99/max, the ratios the targets are set in, the median of every phase of a restart,
// and where the time of the slowest restarts went: the timestamps of containerd's events (set
// by the shim: exit, delete, create, start) and of the restarting side's own steps.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/opendao/dao"
	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/internal/bench/benchutil"
	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/registry/ctrd"
)

func main() {
	kills := flag.Int("kills", 30, "kills of each container under each load")
	hogs := flag.Int("hogs", 2, "CPU hogs (`yes > /dev/null`) of the second round; 0 skips it")
	slowest := flag.Int("slowest", 3, "slowest restarts of each path and load to break down")
	flag.Parse()
	if *kills < 1 || *hogs < 0 || *slowest < 0 {
		fmt.Fprintln(os.Stderr, "recovery: -kills must be at least 1, -hogs and -slowest not negative")
		os.Exit(2)
	}
	if err := run(*kills, *hogs, *slowest); err != nil {
		fmt.Fprintln(os.Stderr, "recovery:", err)
		os.Exit(1)
	}
}

const (
	resetAfter = 500 * time.Millisecond
	daoID      = "victim"
	naiveID    = "naive"
	naiveNS    = benchutil.Namespace + "-naive"
)

// A sample is one kill and the restart that followed.
type sample struct {
	path   string // "dao" or "naive"
	load   string // "idle" or "hogs"
	killed time.Time
	total  time.Duration // from the kill until this program received the /tasks/start event
	marks  []mark        // what happened meanwhile, in order
}

func run(kills, hogs, slowest int) error {
	env, err := benchutil.Start()
	if err != nil {
		return err
	}
	defer env.Close()
	ctx, cancel := context.WithCancel(env.Ctx)
	defer cancel()
	logDir := filepath.Join(env.Daemon.Dir, "logs")

	// One subscription of this program's own to the task events of both namespaces.
	events := newEventLog()
	envelopes, errs := env.Client.Subscribe(ctx,
		`topic=="/tasks/exit"`, `topic=="/tasks/delete"`, `topic=="/tasks/create"`, `topic=="/tasks/start"`)
	go events.follow(envelopes, errs)

	// Dao: a task under an agent.
	trace := newTracer(daoID)
	rt, err := edge.NewFromClient(env.Client, edge.WithNamespace(benchutil.Namespace),
		edge.WithLogDir(logDir))
	if err != nil {
		return err
	}
	defer rt.Close()
	agent, err := edge.NewAgent(rt, edge.WithAgentLogger(trace.logger()), edge.WithStatusFunc(trace.status))
	if err != nil {
		return err
	}
	go agent.Run(ctx)
	spec := dao.ContainerSpec{Image: testutil.TestAppImageName}
	err = agent.Assign(edge.Assignment{Revision: 1, Tasks: []dao.Task{{
		ID:           daoID,
		Spec:         spec,
		Restart:      dao.RestartPolicy{ResetAfter: dao.Duration(resetAfter)},
		DesiredState: dao.TaskRunning,
	}}})
	if err != nil {
		return err
	}

	if _, err := events.wait(benchutil.Namespace, daoID, "/tasks/start", time.Now().Add(-time.Minute), 60*time.Second); err != nil {
		return err
	}
	if _, err := trace.waitRunning(0, 10*time.Second); err != nil {
		return err
	}

	// The naive path: the same spec, made by a Runtime of the other namespace (which is
	// closed at once, so that nothing of Dao's watches the container), then driven by a loop
	// over the containerd client with the same logger as Dao's container.
	nv, err := newNaive(ctx, env, spec, logDir)
	if err != nil {
		return err
	}
	go nv.run(ctx)
	if _, err := nv.waitStarted(10 * time.Second); err != nil {
		return err
	}

	loads := []string{"idle"}
	if hogs > 0 {
		loads = append(loads, "hogs")
	}
	var samples []sample
	for _, load := range loads {
		var stop func()
		if load == "hogs" {
			if stop, err = startHogs(hogs); err != nil {
				return err
			}
			time.Sleep(time.Second) // let the hogs take their share
		}
		before := loadavg()
		for i := range kills {
			// Alternate which goes first, so neither always follows the other's restart.
			order := []string{"dao", "naive"}
			if i%2 == 1 {
				order = []string{"naive", "dao"}
			}
			for _, path := range order {
				time.Sleep(resetAfter + 200*time.Millisecond)
				var s sample
				var err error
				if path == "dao" {
					s, err = killDao(env, events, trace)
				} else {
					s, err = killNaive(env, events, nv)
				}
				if err != nil {
					if stop != nil {
						stop()
					}
					return fmt.Errorf("%s, %s, kill %d: %w", path, load, i, err)
				}
				s.load = load
				samples = append(samples, s)
			}
		}
		if stop != nil {
			stop()
		}
		fmt.Printf("%s round: load average %s before, %s after\n", load, before, loadavg())
	}
	report(samples, loads, kills, hogs, slowest)
	return nil
}

// killDao kills the agent's container and waits for its restart.
func killDao(env *benchutil.Env, events *eventLog, trace *tracer) (sample, error) {
	c, err := env.Client.LoadContainer(env.Ctx, daoID)
	if err != nil {
		return sample{}, err
	}
	task, err := c.Task(env.Ctx, nil)
	if err != nil {
		return sample{}, err
	}
	pid := task.Pid()
	begin := time.Now()
	if err := syscall.Kill(int(pid), syscall.SIGKILL); err != nil {
		return sample{}, fmt.Errorf("kill %d: %w", pid, err)
	}
	at, err := events.wait(benchutil.Namespace, daoID, "/tasks/start", begin, 10*time.Second)
	if err != nil {
		return sample{}, err
	}
	reported, err := trace.waitRunning(pid, 10*time.Second)
	if err != nil {
		return sample{}, err
	}
	task, err = c.Task(env.Ctx, nil)
	if err != nil {
		return sample{}, err
	}
	if st, err := task.Status(env.Ctx); err != nil || st.Status != client.Running || task.Pid() == pid {
		return sample{}, fmt.Errorf("containerd says %v (pid %d, was %d), %v", st.Status, task.Pid(), pid, err)
	}
	marks := events.marks(benchutil.Namespace, daoID, begin)
	marks = append(marks, trace.marks(begin)...)
	marks = append(marks, mark{"reported running", reported})
	return sample{path: "dao", killed: begin, total: at.Sub(begin), marks: sortMarks(marks)}, nil
}

// killNaive kills the naive loop's container and waits for its restart.
func killNaive(env *benchutil.Env, events *eventLog, nv *naive) (sample, error) {
	pid := nv.pid()
	begin := time.Now()
	if err := syscall.Kill(int(pid), syscall.SIGKILL); err != nil {
		return sample{}, fmt.Errorf("kill %d: %w", pid, err)
	}
	at, err := events.wait(naiveNS, naiveID, "/tasks/start", begin, 10*time.Second)
	if err != nil {
		return sample{}, err
	}
	own, err := nv.waitStarted(10 * time.Second)
	if err != nil {
		return sample{}, err
	}
	if nv.pid() == pid {
		return sample{}, fmt.Errorf("still pid %d after the restart", pid)
	}
	marks := append(events.marks(naiveNS, naiveID, begin), own...)
	return sample{path: "naive", killed: begin, total: at.Sub(begin), marks: sortMarks(marks)}, nil
}

// importInto makes the test app image known in namespace ns as well.
func importInto(env *benchutil.Env, ns string) error {
	img, err := testutil.TestApp()
	if err != nil {
		return err
	}
	_, err = ctrd.Import(namespaces.WithNamespace(env.Ctx, ns), env.Client, testutil.TestAppImageName, img,
		ctrd.WithUnpack("overlayfs"))
	return err
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
