// Command remote measures the control plane with its nodes behind the real node protocol
// (package cluster: gRPC over loopback, mutual TLS), against the same nodes added to the
// orchestrator in its own process, and how long the control plane takes to replace the
// tasks of a node whose agent died or fell silent.
//
//	go run ./internal/bench/remote [-runs 5] [-agents 1000] [-tasks 10000] [-procs 4]
//	    [-only fanout,kill,stop] [-cpuprofile FILE] [-agentprofile FILE] [-pin] [-v]
//
// Fan-out: the control plane (orchestrator over the memory store, cluster.Server on
// 127.0.0.1) runs in this process; the agents (simnode.Node behind cluster.Client) run in
// -procs child processes (package agentsim: this executable run again), so that the control
// plane's CPU time is counted apart from theirs. Their identities come from one pki.CA: the
// first node joins with a join token (cluster.Join), the others' certificates are issued
// directly (pki.CA.IssueNodeCertForKey); all are saved with cluster.Identity.Save in a
// temporary directory the children read. A service of -tasks replicas is created, and the
// clock runs from CreateService until the nodes hold all its tasks in their assignments (as
// the children count them), and until the store has every task running (as the nodes
// reported it back). Beside it, in alternating order, the same run on -agents simulated
// nodes added with Orchestrator.AddNode in this process, beating and reporting directly.
// Each run starts from a new control plane; connecting the nodes is not timed. With -pin,
// this process (the control plane, in both runs) keeps to CPU 0 and the agents' processes
// to the other CPUs, so that each side has cores of its own, as with the agents on other
// machines; the in-process run then has the one core too.
//
// Failure detection, with the orchestrator's and the protocol's defaults: three agents, each
// in a child process of its own, run a service of 6 replicas. One child is killed with
// SIGKILL (its kernel closes its connection) or stopped with SIGSTOP (a silent peer whose
// socket stays open, as behind a partition), and the clock runs until the orchestrator has
// every slot of the service running again on the two others.
//
// Medians of -runs runs. No child outlives the program: each is killed when its run ends,
// and by the kernel when this process dies (Pdeathsig).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/cluster"
	"github.com/opendao/dao/cluster/pki"
	"github.com/opendao/dao/internal/bench/benchutil"
	"github.com/opendao/dao/internal/bench/remote/agentsim"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/orchestrator/simnode"
)

func main() {
	if agentsim.IsChild() {
		os.Exit(agentsim.Main(os.Args[1:]))
	}
	runs := flag.Int("runs", 5, "runs of each measurement")
	agents := flag.Int("agents", 1000, "simulated nodes of the fan-out")
	tasks := flag.Int("tasks", 10000, "replicas of the fan-out's service")
	procs := flag.Int("procs", 4, "child processes the fan-out's agents are spread over")
	only := flag.String("only", "fanout,kill,stop", "measurements to run, of fanout, kill and stop")
	cpuprofile := flag.String("cpuprofile", "", "write CPU profiles of this process over the first fan-out runs to `file` (remote) and file.local (in-process)")
	agentprofile := flag.String("agentprofile", "", "write CPU profiles of the agent processes over the first remote fan-out run to `file`.0, .1, ...")
	verbose := flag.Bool("v", false, "print the control plane's warnings")
	pin := flag.Bool("pin", false, "run the control plane on CPU 0 and the agents' processes on the other CPUs, as on two machines")
	flag.Parse()
	if *pin {
		if runtime.NumCPU() < 2 {
			fmt.Fprintln(os.Stderr, "remote: -pin needs at least 2 CPUs")
			os.Exit(2)
		}
		if err := benchutil.Pin([]int{0}); err != nil {
			fmt.Fprintln(os.Stderr, "remote:", err)
			os.Exit(1)
		}
		var rest []string
		for c := 1; c < runtime.NumCPU(); c++ {
			rest = append(rest, strconv.Itoa(c))
		}
		agentCPUs = strings.Join(rest, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &bench{ctx: ctx, log: slog.New(slog.DiscardHandler), cpuProfile: *cpuprofile, agentProfile: *agentprofile}
	if *verbose {
		b.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	err := b.run(*runs, *agents, *tasks, *procs, strings.Split(*only, ","))
	b.close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "remote:", err)
		os.Exit(1)
	}
}

// agentCPUs are the CPUs of the agents' processes with -pin.
var agentCPUs string

// bench holds what the runs share: the cluster's CA and the identities it issued.
type bench struct {
	ctx          context.Context
	log          *slog.Logger
	cpuProfile   string
	agentProfile string

	ca     *pki.CA
	token  string
	dir    string // identities, one subdirectory per node
	issued []bool // by node index: an identity is in dir
}

func (b *bench) close() {
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
}

func (b *bench) run(runs, agents, tasks, procs int, only []string) error {
	if runs < 1 || agents < 1 || tasks < 1 || procs < 1 {
		return fmt.Errorf("-runs, -agents, -tasks and -procs must be positive")
	}
	var err error
	if b.ca, err = pki.NewCA(); err != nil {
		return err
	}
	if b.token, err = b.ca.NewJoinToken(); err != nil {
		return err
	}
	// The identities are read by the children: on tmpfs when there is one, as their many
	// small durable writes cost nothing there.
	parent := ""
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		parent = "/dev/shm"
	}
	if b.dir, err = os.MkdirTemp(parent, "dao-bench-remote-"); err != nil {
		return err
	}
	for _, m := range only {
		switch m {
		case "fanout":
			if err := b.fanout(runs, agents, tasks, procs); err != nil {
				return fmt.Errorf("fan-out: %w", err)
			}
		case "kill", "stop":
			if err := b.failures(runs, m); err != nil {
				return fmt.Errorf("failure detection (%s): %w", m, err)
			}
		default:
			return fmt.Errorf("-only: unknown measurement %q (want fanout, kill or stop)", m)
		}
	}
	return nil
}

// plane is one control plane: an orchestrator over a memory store with default settings,
// and, for remote nodes, a cluster.Server on loopback.
type plane struct {
	store  *orchestrator.MemoryStore
	o      *orchestrator.Orchestrator
	srv    *cluster.Server
	addr   string
	cancel context.CancelFunc
	ran    chan error
	served chan error
}

func (b *bench) startPlane(remote bool) (*plane, error) {
	store, err := orchestrator.NewMemoryStore()
	if err != nil {
		return nil, err
	}
	o, err := orchestrator.New(store, orchestrator.WithLogger(b.log))
	if err != nil {
		store.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(b.ctx)
	p := &plane{store: store, o: o, cancel: cancel, ran: make(chan error, 1)}
	if remote {
		p.srv, err = cluster.NewServer(b.ca, o, cluster.WithServerLogger(b.log))
		if err != nil {
			cancel()
			store.Close()
			return nil, err
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			cancel()
			store.Close()
			return nil, err
		}
		p.addr = l.Addr().String()
		p.served = make(chan error, 1)
		go func() { p.served <- p.srv.Serve(l) }()
	}
	go func() { p.ran <- o.Run(ctx) }()
	return p, nil
}

func (p *plane) close() {
	if p.srv != nil {
		_ = p.srv.Close()
		<-p.served
	}
	p.cancel()
	<-p.ran
	p.store.Close()
}

// identities makes sure dir holds the identities of the nodes 0 to n-1: the first joins the
// control plane at addr with the join token, as a new machine does; the rest are issued
// directly, which is the same certificate without a thousand round trips.
func (b *bench) identities(addr string, n int) error {
	for len(b.issued) < n {
		b.issued = append(b.issued, false)
	}
	for i := range n {
		if b.issued[i] {
			continue
		}
		id := agentsim.NodeID(i)
		var ident *cluster.Identity
		if i == 0 {
			var err error
			if ident, err = cluster.Join(b.ctx, addr, b.token, id); err != nil {
				return err
			}
			fmt.Printf("  %s joined with a join token (cluster.Join); the other nodes' certificates are issued by the same CA directly\n", id)
		} else {
			key, err := pki.NewNodeKey()
			if err != nil {
				return err
			}
			der, err := b.ca.IssueNodeCertForKey(key.Public(), id, 0)
			if err != nil {
				return err
			}
			pair, err := pki.TLSCertificate(der, key)
			if err != nil {
				return err
			}
			if ident, err = cluster.NewIdentity(pair, b.ca.Certificate()); err != nil {
				return err
			}
		}
		if err := ident.Save(filepath.Join(b.dir, id)); err != nil {
			return err
		}
		b.issued[i] = true
	}
	return nil
}

// children is a set of agent processes.
type children []*agentsim.Proc

// start starts n agents in procs processes (as evenly as they go) on the control plane at
// addr.
func (b *bench) startChildren(addr string, n, procs int) (children, error) {
	var cs children
	per := (n + procs - 1) / procs
	for from := 0; from < n; from += per {
		cfg := agentsim.Config{Addr: addr, Dir: b.dir, From: from, Count: min(per, n-from), CPUs: agentCPUs}
		c, err := agentsim.Start(cfg)
		if err != nil {
			cs.kill()
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

func (cs children) kill() {
	for _, c := range cs {
		c.Kill()
	}
}

func (cs children) err() error {
	for _, c := range cs {
		select {
		case <-c.Exited():
			return c.Err()
		default:
		}
		if err := c.Err(); err != nil {
			return err
		}
	}
	return nil
}

func (cs children) connected() int {
	n := 0
	for _, c := range cs {
		n += c.Connected()
	}
	return n
}

// held returns the tasks the children's nodes hold, and when that last changed.
func (cs children) held() (int, time.Time, error) {
	n, last := 0, time.Time{}
	for _, c := range cs {
		h, at := c.Held()
		n += h
		if at.After(last) {
			last = at
		}
	}
	return n, last, cs.err()
}

func (cs children) assigns() int {
	n := 0
	for _, c := range cs {
		n += c.Assigns()
	}
	return n
}

func (cs children) profile(prefix string) error {
	for k, c := range cs {
		var err error
		if prefix != "" {
			err = c.StartProfile(fmt.Sprintf("%s.%d", prefix, k))
		} else {
			err = c.StopProfile()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (cs children) cpu() (time.Duration, error) {
	var sum time.Duration
	for _, c := range cs {
		d, err := c.CPU()
		if err != nil {
			return 0, err
		}
		sum += d
	}
	return sum, nil
}

// selfCPU returns the CPU time (user and system) this process has used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// waitFor polls cond every 5 ms until it holds, ctx is done, or within has passed.
func (b *bench) waitFor(what string, within time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(within)
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ok {
			return nil
		}
		if err := b.ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readyNodes returns how many nodes the store has ready.
func (p *plane) readyNodes(ctx context.Context) (int, error) {
	ns, err := p.o.Nodes(ctx)
	n := 0
	for _, x := range ns {
		if x.Status.State == dao.NodeReady {
			n++
		}
	}
	return n, err
}

func spec(name string, replicas int) dao.ServiceSpec {
	return dao.ServiceSpec{Name: name, Replicas: replicas, Container: dao.ContainerSpec{
		Image: "registry.example.com/app:1", Resources: dao.Resources{MilliCPU: 100, Memory: 64 * dao.MiB}}}
}

// fanoutResult is one fan-out run.
type fanoutResult struct {
	connect, held, running time.Duration
	cpu, agentsCPU         time.Duration
	assigns                int // assignments the nodes took, all together
}

// nodesView is how measure sees the nodes: how many tasks they hold and since when, how
// many assignments they took, and the CPU time they used apart from this process.
type nodesView interface {
	held() (int, time.Time, error)
	assigns() int
	cpu() (time.Duration, error)
	// profile starts CPU profiles of the nodes' processes into files named from prefix, or
	// ends them ("").
	profile(prefix string) error
}

// localNodes are nodes in this process.
type localNodes struct{ t *agentsim.Tally }

func (l localNodes) held() (int, time.Time, error) { n, at := l.t.Get(); return n, at, nil }
func (l localNodes) assigns() int                  { return l.t.Assigns() }
func (l localNodes) cpu() (time.Duration, error)   { return 0, nil }
func (l localNodes) profile(string) error          { return nil }

func (b *bench) fanout(runs, agents, tasks, procs int) error {
	fmt.Printf("Fan-out: a service of %d replicas on %d simulated nodes, in this process and behind the protocol (%d agent processes); %d runs\n",
		tasks, agents, min(procs, agents), runs)
	var local, remote []fanoutResult
	for r := range runs {
		for k := range 2 {
			isRemote := (r+k)%2 == 1 // alternate which goes first
			var res fanoutResult
			var err error
			if isRemote {
				res, err = b.fanoutRemote(r, agents, tasks, procs)
				remote = append(remote, res)
			} else {
				res, err = b.fanoutLocal(r, agents, tasks)
				local = append(local, res)
			}
			if err != nil {
				return err
			}
			side := "in-process"
			if isRemote {
				side = "remote    "
			}
			fmt.Printf("  run %d %s: nodes connected in %s; all held %s, all running %s; control plane CPU %s, agents' CPU %s; %.1f assignments per node\n",
				r+1, side, sec(res.connect), sec(res.held), sec(res.running), sec(res.cpu), sec(res.agentsCPU), float64(res.assigns)/float64(agents))
		}
	}
	med := func(rs []fanoutResult, f func(fanoutResult) time.Duration) time.Duration {
		ds := make([]time.Duration, len(rs))
		for i, r := range rs {
			ds[i] = f(r)
		}
		return benchutil.Median(ds)
	}
	rows := []struct {
		name string
		f    func(fanoutResult) time.Duration
	}{
		{"all tasks held by the nodes (assignments received)", func(r fanoutResult) time.Duration { return r.held }},
		{"all tasks running in the store (reported back)", func(r fanoutResult) time.Duration { return r.running }},
		{"CPU of the control plane's process", func(r fanoutResult) time.Duration { return r.cpu }},
	}
	fmt.Printf("\n| median of %d | in-process | remote | remote / in-process |\n| --- | --- | --- | --- |\n", runs)
	for _, row := range rows {
		l, m := med(local, row.f), med(remote, row.f)
		fmt.Printf("| %s | %s | %s | %.2fx |\n", row.name, sec(l), sec(m), float64(m)/float64(l))
	}
	fmt.Printf("| CPU of the agents' processes | (in the one above) | %s | |\n", sec(med(remote, func(r fanoutResult) time.Duration { return r.agentsCPU })))
	fmt.Printf("| nodes added / connected (not timed above) | %s | %s | |\n\n",
		sec(med(local, func(r fanoutResult) time.Duration { return r.connect })),
		sec(med(remote, func(r fanoutResult) time.Duration { return r.connect })))
	return nil
}

// fanoutLocal runs the fan-out on simulated nodes added to the orchestrator directly.
func (b *bench) fanoutLocal(run, agents, tasks int) (fanoutResult, error) {
	profile := ""
	if run == 0 && b.cpuProfile != "" {
		profile = b.cpuProfile + ".local"
	}
	p, err := b.startPlane(false)
	if err != nil {
		return fanoutResult{}, err
	}
	defer p.close()
	tally := &agentsim.Tally{}
	begin := time.Now()
	for i := range agents {
		id := agentsim.NodeID(i)
		info := agentsim.NodeInfo(id)
		n, err := simnode.New(info,
			simnode.WithStatusFunc(func(u orchestrator.TaskUpdate) { p.o.ReportStatus(id, u) }),
			// As often as a remote agent beats (cluster.DefaultHeartbeatInterval).
			simnode.WithHeartbeat(cluster.DefaultHeartbeatInterval, func(time.Time) { _ = p.o.Heartbeat(id) }))
		if err != nil {
			return fanoutResult{}, err
		}
		defer n.Close()
		if err := p.o.AddNode(b.ctx, info, agentsim.Count(n, tally)); err != nil {
			return fanoutResult{}, err
		}
	}
	err = b.waitFor("nodes ready", time.Minute, func() (bool, error) {
		n, err := p.readyNodes(b.ctx)
		return n == agents, err
	})
	if err != nil {
		return fanoutResult{}, err
	}
	connect := time.Since(begin)
	res, err := b.measure(p, tasks, localNodes{tally}, profile, "")
	res.connect = connect
	return res, err
}

// fanoutRemote runs the fan-out on agents in child processes, behind the protocol.
func (b *bench) fanoutRemote(run, agents, tasks, procs int) (fanoutResult, error) {
	p, err := b.startPlane(true)
	if err != nil {
		return fanoutResult{}, err
	}
	defer p.close()
	if err := b.identities(p.addr, agents); err != nil {
		return fanoutResult{}, err
	}
	agentProfile, profile := "", ""
	if run == 0 {
		agentProfile, profile = b.agentProfile, b.cpuProfile
	}
	begin := time.Now()
	cs, err := b.startChildren(p.addr, agents, procs)
	if err != nil {
		return fanoutResult{}, err
	}
	defer cs.kill() // before the plane closes: the children see a control plane go away otherwise
	err = b.waitFor("agents connected", 2*time.Minute, func() (bool, error) {
		if cs.connected() < agents {
			return false, cs.err()
		}
		n, err := p.readyNodes(b.ctx)
		return n == agents && len(p.srv.Connected()) == agents, err
	})
	if err != nil {
		return fanoutResult{}, err
	}
	connect := time.Since(begin)
	res, err := b.measure(p, tasks, cs, profile, agentProfile)
	res.connect = connect
	return res, err
}

// measure creates the service, once the nodes have settled, and times it until the nodes
// hold every task (held says how many they hold and since when) and the store has them all
// running; it counts this process's CPU time over that, and the agents' (agentsCPU).
func (b *bench) measure(p *plane, tasks int, nodes nodesView, profile, agentProfile string) (fanoutResult, error) {
	// What follows a connection (the first assignments, the first heartbeats) is over.
	time.Sleep(time.Second)
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	const name = "web"
	prog, err := follow(ctx, p.store, name)
	if err != nil {
		return fanoutResult{}, err
	}
	cpu0 := selfCPU()
	a0, err := nodes.cpu()
	as0 := nodes.assigns()
	if err != nil {
		return fanoutResult{}, err
	}
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return fanoutResult{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fanoutResult{}, err
		}
		defer pprof.StopCPUProfile() // on an error; a second stop does nothing
	}
	if agentProfile != "" {
		if err := nodes.profile(agentProfile); err != nil {
			return fanoutResult{}, err
		}
	}
	begin := time.Now()
	if _, err := p.o.CreateService(ctx, spec(name, tasks)); err != nil {
		return fanoutResult{}, err
	}
	var heldAt, runAt time.Time
	err = b.waitFor(fmt.Sprintf("%d tasks held and running", tasks), 3*time.Minute, func() (bool, error) {
		n, at, err := nodes.held()
		if err != nil {
			return false, err
		}
		if n == tasks && heldAt.IsZero() {
			heldAt = at
		}
		if runAt.IsZero() {
			runAt, err = prog.reachedAt(tasks)
		}
		return !heldAt.IsZero() && !runAt.IsZero(), err
	})
	if err != nil {
		return fanoutResult{}, err
	}
	cpu1 := selfCPU()
	if profile != "" {
		pprof.StopCPUProfile()
	}
	if agentProfile != "" {
		if err := nodes.profile(""); err != nil {
			return fanoutResult{}, err
		}
	}
	a1, err := nodes.cpu()
	if err != nil {
		return fanoutResult{}, err
	}
	if n := prog.nodesLost(); n > 0 {
		return fanoutResult{}, fmt.Errorf("%d times a node stopped being ready during the run: the machine is too busy to measure", n)
	}
	return fanoutResult{held: heldAt.Sub(begin), running: runAt.Sub(begin), cpu: cpu1 - cpu0, agentsCPU: a1 - a0,
		assigns: nodes.assigns() - as0}, nil
}

// progress follows the store's events from when it is made: when the service first had n
// tasks running, and how many times a node stopped being ready. Counting from events, not
// by reading the store, keeps the harness from holding up the store's writers.
type progress struct {
	mu      sync.Mutex
	running map[string]bool
	n       int
	reached map[int]time.Time
	lost    int
	err     error
}

func follow(ctx context.Context, store orchestrator.Store, service string) (*progress, error) {
	var rev uint64
	if err := store.View(ctx, func(tx orchestrator.ReadTx) error { rev = tx.Revision(); return nil }); err != nil {
		return nil, err
	}
	events, err := store.Watch(ctx, rev+1, orchestrator.WatchTypes(orchestrator.TaskObject, orchestrator.NodeObject))
	if err != nil {
		return nil, err
	}
	p := &progress{running: map[string]bool{}, reached: map[int]time.Time{}}
	go func() {
		for e := range events {
			p.mu.Lock()
			p.take(&e, service)
			p.mu.Unlock()
		}
	}()
	return p, nil
}

// take counts one event; p.mu is held.
func (p *progress) take(e *orchestrator.Event, service string) {
	switch {
	case e.Err != nil:
		p.err = e.Err // the harness fell behind: say so rather than guess
	case e.Node != nil:
		if e.Node.Status.State != dao.NodeReady && (e.PrevNode == nil || e.PrevNode.Status.State == dao.NodeReady) {
			p.lost++
		}
	case e.Task != nil && e.Task.ServiceID == service:
		t := e.Task
		now := e.Kind != orchestrator.EventDeleted && t.DesiredState == dao.TaskRunning && t.Status.State == dao.TaskRunning
		if was := p.running[t.ID]; was != now {
			if now {
				p.n++
			} else {
				p.n--
			}
		}
		if now {
			p.running[t.ID] = true
		} else {
			delete(p.running, t.ID)
		}
		if _, ok := p.reached[p.n]; !ok {
			p.reached[p.n] = time.Now()
		}
	}
}

// reached returns when the service first had n tasks running (zero: not yet), or why it
// cannot tell.
func (p *progress) reachedAt(n int) (time.Time, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reached[n], p.err
}

// nodesLost returns how many times a node stopped being ready.
func (p *progress) nodesLost() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lost
}

func sec(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// failureResult is one failure-detection run: when, after the signal, the orchestrator
// had the node disconnected, down, and every slot running elsewhere.
type failureResult struct {
	disconnected, down, replaced time.Duration
}

func (b *bench) failures(runs int, mode string) error {
	what := map[string]string{
		"kill": "agent killed (SIGKILL: its connection closes)",
		"stop": "agent frozen (SIGSTOP: silent, its connection open)",
	}[mode]
	fmt.Printf("Failure detection, defaults (heartbeat every %s, timeout %s, grace %s): 3 agents in 3 processes, a service of 6 replicas; %s; %d runs\n",
		cluster.DefaultHeartbeatInterval, orchestrator.DefaultHeartbeatTimeout, orchestrator.DefaultGrace, what, runs)
	var rs []failureResult
	for r := range runs {
		res, err := b.failure(r, mode)
		if err != nil {
			return err
		}
		fmt.Printf("  run %d: disconnected after %s, down after %s, all 6 running elsewhere after %s\n",
			r+1, sec(res.disconnected), sec(res.down), sec(res.replaced))
		rs = append(rs, res)
	}
	col := func(f func(failureResult) time.Duration) []time.Duration {
		ds := make([]time.Duration, len(rs))
		for i, r := range rs {
			ds[i] = f(r)
		}
		return ds
	}
	rep := col(func(r failureResult) time.Duration { return r.replaced })
	fmt.Printf("\n| %s | disconnected | down | all slots running elsewhere (median) | min | max |\n| --- | --- | --- | --- | --- | --- |\n", mode)
	fmt.Printf("| %s | %s | %s | %s | %s | %s |\n\n", what,
		sec(benchutil.Median(col(func(r failureResult) time.Duration { return r.disconnected }))),
		sec(benchutil.Median(col(func(r failureResult) time.Duration { return r.down }))),
		sec(benchutil.Median(rep)), sec(slices.Min(rep)), sec(slices.Max(rep)))
	return nil
}

// failure runs one failure: the victim is node run%3.
func (b *bench) failure(run int, mode string) (failureResult, error) {
	const replicas = 6
	p, err := b.startPlane(true)
	if err != nil {
		return failureResult{}, err
	}
	defer p.close()
	if err := b.identities(p.addr, 3); err != nil {
		return failureResult{}, err
	}
	cs, err := b.startChildren(p.addr, 3, 3)
	if err != nil {
		return failureResult{}, err
	}
	defer cs.kill()
	err = b.waitFor("agents connected", time.Minute, func() (bool, error) {
		if cs.connected() < 3 {
			return false, cs.err()
		}
		n, err := p.readyNodes(b.ctx)
		return n == 3, err
	})
	if err != nil {
		return failureResult{}, err
	}
	if _, err := p.o.CreateService(b.ctx, spec("web", replicas)); err != nil {
		return failureResult{}, err
	}
	victim := agentsim.NodeID(run % 3)
	// running counts the slots running on another node than the victim, and says whether
	// the victim had tasks.
	running := func() (others int, onVictim int, err error) {
		ts, err := p.o.Tasks(b.ctx, orchestrator.TaskFilter{ServiceID: "web", Live: true})
		for _, t := range ts {
			if t.Status.State != dao.TaskRunning {
				continue
			}
			if t.NodeID == victim {
				onVictim++
			} else {
				others++
			}
		}
		return others, onVictim, err
	}
	err = b.waitFor("6 replicas running", time.Minute, func() (bool, error) {
		o, v, err := running()
		return o+v == replicas && v > 0, err
	})
	if err != nil {
		return failureResult{}, err
	}
	// At a random point of the heartbeat interval, as a failure comes.
	time.Sleep(time.Second + rand.N(cluster.DefaultHeartbeatInterval))
	sig := syscall.SIGKILL
	if mode == "stop" {
		sig = syscall.SIGSTOP
	}
	var res failureResult
	begin := time.Now()
	if err := cs[run%3].Signal(sig); err != nil {
		return failureResult{}, err
	}
	err = b.waitFor("all slots running elsewhere", time.Minute, func() (bool, error) {
		since := time.Since(begin)
		ns, err := p.o.Nodes(b.ctx)
		if err != nil {
			return false, err
		}
		for _, n := range ns {
			if n.ID != victim {
				continue
			}
			if n.Status.State != dao.NodeReady && res.disconnected == 0 {
				res.disconnected = since
			}
			if n.Status.State == dao.NodeDown && res.down == 0 {
				res.down = since
			}
		}
		o, _, err := running()
		if o == replicas {
			res.replaced = since
		}
		return o == replicas, err
	})
	if err != nil {
		return failureResult{}, err
	}
	if res.down == 0 {
		return res, errors.New("the slots were replaced before the node was down")
	}
	return res, nil
}
