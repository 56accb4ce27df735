package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/pkg/identifiers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/spf13/pflag"

	"github.com/opendao/dao"
	"github.com/opendao/dao/cluster"
	"github.com/opendao/dao/cluster/pki"
	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/registry"
)

// The agent's state directory.
const (
	// agentIdentityDir holds the node's cluster.Identity.
	agentIdentityDir = "identity"
	// agentAssignmentDir is the edge agent's state directory (edge.WithStateDir): its last
	// assignment, which it runs again after a restart with the control plane unreachable.
	agentAssignmentDir = "assignment"
	// agentLogDir holds the containers' logs unless --log-dir says otherwise.
	agentLogDir = "logs"
)

// agentOptions are the flags and argument of dao agent.
type agentOptions struct {
	join       string
	stateDir   string
	nodeID     string
	labels     []string
	containerd string
	namespace  string
	logDir     string
	registries string
	hostsDir   string
	verbose    bool

	address string // the control plane's host:port, the one argument
}

func (o *agentOptions) flags(fs *pflag.FlagSet) {
	fs.StringVar(&o.join, "join", "", "join the cluster with the join `TOKEN` the control plane printed; needed at the first start only")
	fs.StringVar(&o.stateDir, "state-dir", "", "keep the node's identity, its last assignment and its containers' logs in `DIR`; required")
	fs.StringVar(&o.nodeID, "node-id", "", "the node's `ID` in the cluster, at the first start (default: the host name)")
	fs.StringArrayVar(&o.labels, "label", nil, "a node label `KEY=VALUE`, for placement constraints; repeatable")
	fs.StringVar(&o.containerd, "containerd", "", "containerd's `SOCKET` (default: dao's --address, $CONTAINERD_ADDRESS, else "+defaultAddress+")")
	fs.StringVarP(&o.namespace, "namespace", "n", "", "run the containers in containerd namespace `NS` (default: dao's --namespace, $CONTAINERD_NAMESPACE, else "+edge.DefaultNamespace+")")
	fs.StringVar(&o.logDir, "log-dir", "", "write the containers' logs into `DIR` (default: STATE-DIR/logs)")
	fs.StringVar(&o.hostsDir, "hosts-dir", "", "read containerd's registry hosts from `DIR`/HOST/hosts.toml, as dao pull does (default "+defaultHostsDir+" when it exists)")
	fs.StringVar(&o.registries, "registries", "", "pull missing images with the mirrors, insecure hosts and credentials of `FILE`, as dao pull does (default $DAO_REGISTRIES_CONFIG, else "+defaultRegistriesConfig+" when it exists)")
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "log debug messages too")
}

func agentCommand() *command {
	var o agentOptions
	c := &command{
		name:    "agent",
		summary: "run this machine as a node of a dao control-plane",
		flags:   o.flags,
		usage: `Usage: dao agent --join TOKEN ADDRESS --state-dir DIR [options]   (the first start)
       dao agent ADDRESS --state-dir DIR [options]                (every later start)

Runs this machine as a node of the control plane at ADDRESS (host:port, as dao
control-plane prints it): it joins the cluster once with the join TOKEN and keeps the
node's certificate in DIR/identity, connects out to the control plane over mutual TLS (no
port needs to be open on this machine), runs the tasks it is assigned as containers on
containerd, restarts them by their restart policy, and reports their status.

The node works on without the control plane: its last assignment is in DIR/assignment, so
after a restart of the agent, or a reboot of the machine, it runs its tasks again while the
control plane cannot be reached. If the control plane refuses the node (removed, revoked or
expired), the agent says so and keeps running what it has until it is stopped; to come
back, remove DIR/identity and join again with a new token.

SIGINT or SIGTERM stops the agent; its containers keep running. Logs go to stderr.
`,
	}
	c.run = func(ctx context.Context, g *globals, args []string) int {
		info, err := o.check(g, args)
		if err != nil {
			return usageError(g.stderr, c.name, err.Error())
		}
		if err := runAgent(ctx, g, &o, info); err != nil {
			return fail(g, c.name, err)
		}
		return exitOK
	}
	return c
}

// check completes the options from the globals and the argument, and returns the node's
// registration (the ID is the one asked for: the identity's, if there is one, wins). Its
// error is a usage error.
func (o *agentOptions) check(g *globals, args []string) (dao.Node, error) {
	switch len(args) {
	case 0:
		return dao.Node{}, errors.New("want the control plane's ADDRESS (host:port)")
	case 1:
		o.address = args[0]
	default:
		return dao.Node{}, fmt.Errorf("want one ADDRESS, got %d arguments: %s", len(args), strings.Join(args, " "))
	}
	if !strings.Contains(o.address, ":") || strings.Contains(o.address, "://") {
		return dao.Node{}, fmt.Errorf("address %q: want host:port, such as 10.0.0.1:7450", o.address)
	}
	if o.stateDir == "" {
		return dao.Node{}, errors.New("--state-dir is required: the node keeps its identity and its assignment there")
	}
	dir, err := filepath.Abs(o.stateDir)
	if err != nil {
		return dao.Node{}, fmt.Errorf("--state-dir %q: %v", o.stateDir, err)
	}
	o.stateDir = dir
	if o.logDir == "" {
		o.logDir = filepath.Join(dir, agentLogDir)
	} else if o.logDir, err = filepath.Abs(o.logDir); err != nil {
		return dao.Node{}, fmt.Errorf("--log-dir: %v", err)
	}
	if o.containerd == "" {
		o.containerd = g.address
	}
	if o.namespace == "" {
		o.namespace = g.namespace
	}
	if err := identifiers.Validate(o.namespace); err != nil {
		return dao.Node{}, fmt.Errorf("--namespace %q: want letters and digits, joined by single '.', '_' or '-'", o.namespace)
	}
	if o.join != "" {
		if _, err := pki.ParseJoinToken(o.join); err != nil {
			return dao.Node{}, fmt.Errorf("--join: %v", err)
		}
	}
	host, _ := os.Hostname()
	info := dao.Node{ID: o.nodeID, Hostname: host}
	if info.ID == "" {
		info.ID = host
	}
	if err := pki.ValidateNodeID(info.ID); err != nil {
		what := "--node-id"
		if o.nodeID == "" {
			what = "the host name, the default node ID,"
		}
		return dao.Node{}, fmt.Errorf("%s %q cannot name a node: want letters, digits, '.', '_' or '-', beginning and ending with a letter or digit", what, info.ID)
	}
	for _, l := range o.labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return dao.Node{}, fmt.Errorf("--label %q: want KEY=VALUE, such as zone=eu-1", l)
		}
		if info.Labels == nil {
			info.Labels = map[string]string{}
		}
		info.Labels[k] = v
	}
	if err := info.Validate(); err != nil {
		return dao.Node{}, fmt.Errorf("--label: %v", err)
	}
	return info, nil
}

// runAgent runs the node until ctx is done.
func runAgent(ctx context.Context, g *globals, o *agentOptions, info dao.Node) error {
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
	g.address, g.namespace, g.verbose = o.containerd, o.namespace, o.verbose
	ctx = namespaces.WithNamespace(ctx, o.namespace)

	id, err := o.identity(ctx, log, info.ID)
	if err != nil {
		return err
	}
	info.ID = id.NodeID
	info.Platform = dao.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	info.Capacity = machineResources()
	info.Allocatable = info.Capacity

	// The edge node: a Runtime on containerd, which pulls missing images as dao pull does.
	cl, err := connect(ctx, g) // a clear error at once when containerd is not there
	if err != nil {
		return err
	}
	cl.Close()
	popts := pullOptions{config: o.registries, hostsDir: o.hostsDir}
	ropts, err := popts.clientOptions(g)
	if err != nil {
		return err
	}
	puller, err := registry.NewClient(ropts...)
	if err != nil {
		return err
	}
	defer puller.Close()
	rt, err := edge.New(o.containerd, edge.WithNamespace(o.namespace), edge.WithLogDir(o.logDir),
		edge.WithPuller(puller), edge.WithLogger(log))
	if err != nil {
		return err
	}
	defer rt.Close()

	var client *cluster.Client // set below: the agent reports to it
	agent, err := edge.NewAgent(rt,
		edge.WithStateDir(filepath.Join(o.stateDir, agentAssignmentDir)),
		edge.WithStatusFunc(func(u dao.TaskUpdate) { client.Report(u) }),
		edge.WithAgentLogger(log))
	if err != nil {
		return err
	}
	defer agent.Close()
	setMemoryBudget(log, len(agent.Tasks()))
	client, err = cluster.NewClient(o.address, id, info, budgeted{agent, log},
		cluster.WithIdentityDir(filepath.Join(o.stateDir, agentIdentityDir)),
		cluster.WithClientLogger(log))
	if err != nil {
		return err
	}

	log.Info("dao agent starting", "node", info.ID, "control_plane", o.address,
		"containerd", o.containerd, "namespace", o.namespace, "state_dir", o.stateDir,
		"cpus", info.Capacity.MilliCPU/1000, "memory_mib", info.Capacity.Memory/dao.MiB,
		"certificate_expires", id.Expires().Format("2006-01-02"))
	if rev, tasks := agent.Revision(), agent.Tasks(); rev > 0 {
		log.Info("restored the last assignment from disk: running it until the control plane says otherwise",
			"revision", rev, "tasks", len(tasks), "dir", filepath.Join(o.stateDir, agentAssignmentDir))
	} else {
		log.Info("no assignment on disk: waiting for the control plane's")
	}

	agentDone := make(chan error, 1)
	clientDone := make(chan error, 1)
	go func() { agentDone <- agent.Run(ctx) }()
	runCtx, stopClient := context.WithCancel(ctx)
	defer stopClient()
	go func() { clientDone <- client.Run(runCtx) }()

	for agentDone != nil || clientDone != nil {
		select {
		case err := <-clientDone:
			clientDone = nil
			if ctx.Err() == nil {
				log.Error("the control plane refuses this node for good: no more assignments, no status reported; "+
					"its containers keep running as last assigned until the agent is stopped; "+
					"to come back, remove the identity and join again with a new token",
					"node", info.ID, "err", err, "identity", filepath.Join(o.stateDir, agentIdentityDir))
			}
		case err := <-agentDone:
			agentDone = nil
			if ctx.Err() == nil {
				stopClient()
				if clientDone != nil {
					<-clientDone
				}
				return fmt.Errorf("the edge agent stopped: %w", err)
			}
		}
	}
	log.Info("dao agent stopped; the containers keep running", "node", info.ID)
	return nil
}

// identity loads the node's identity from the state directory, or joins the cluster with
// the token and saves it there.
func (o *agentOptions) identity(ctx context.Context, log *slog.Logger, nodeID string) (*cluster.Identity, error) {
	dir := filepath.Join(o.stateDir, agentIdentityDir)
	id, err := cluster.LoadIdentity(dir)
	switch {
	case err == nil:
		if o.nodeID != "" && o.nodeID != id.NodeID {
			return nil, fmt.Errorf("--node-id %s, but the identity in %s is of node %s: drop --node-id, or use another --state-dir", o.nodeID, dir, id.NodeID)
		}
		if o.join != "" {
			log.Info("already joined: --join ignored", "node", id.NodeID, "identity", dir)
		}
		return id, nil
	case !errdefs.IsNotFound(err):
		return nil, err
	case o.join == "":
		return nil, fmt.Errorf("no identity in %s: join the cluster first with --join TOKEN (dao control-plane prints one)", dir)
	}
	log.Info("joining the cluster", "node", nodeID, "control_plane", o.address)
	id, err = cluster.Join(ctx, o.address, o.join, nodeID)
	if err != nil {
		return nil, err
	}
	if err := id.Save(dir); err != nil {
		return nil, err
	}
	log.Info("joined: identity saved; later starts need no token", "node", id.NodeID, "identity", dir)
	return id, nil
}

// The agent's memory budget: a soft limit of the Go runtime's memory (debug.SetMemoryLimit)
// that grows with the assignment, so that the garbage collector gives back what a burst of
// work (starting 50 containers, say) left behind instead of keeping about twice the live
// heap. Measured (go run ./internal/bench/agent, with -env GOMEMLIMIT=off for no budget;
// linux/amd64, 2 cores): idle with no task, 22 to 23.5 MiB of RSS either way, 19.5 MiB of it
// the program's own pages (its code and the packages' initialisation), which no setting
// changes; with 50 containers, 31 to 33 MiB without the budget and 27 to 29 MiB with it, at
// 1.1% of a core instead of 0.8% (about 3 MiB of live heap, some 20 KiB a task). The budget
// stays several times the live heap, so the collector does not run all the time; a tighter
// one (10 MiB at 50 tasks: 27 MiB) cost 5% of a core.
// GOMEMLIMIT in the environment replaces it (GOMEMLIMIT=off: no limit).
const (
	memoryBudgetBase    = 10 << 20
	memoryBudgetPerTask = 64 << 10
)

// setMemoryBudget sets the memory budget for an assignment of tasks tasks, unless
// GOMEMLIMIT is set.
func setMemoryBudget(log *slog.Logger, tasks int) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	limit := memoryBudgetBase + int64(tasks)*memoryBudgetPerTask
	if old := debug.SetMemoryLimit(limit); old != limit {
		log.Debug("memory budget", "tasks", tasks, "limit_kib", limit>>10)
	}
}

// budgeted is the edge agent, with the memory budget set from each assignment.
type budgeted struct {
	*edge.Agent
	log *slog.Logger
}

func (b budgeted) Assign(a dao.Assignment) error {
	setMemoryBudget(b.log, len(a.Tasks))
	return b.Agent.Assign(a)
}

// machineResources returns what this machine offers: its CPUs (those this process may run
// on) and its memory.
func machineResources() dao.Resources {
	r := dao.Resources{MilliCPU: int64(runtime.NumCPU()) * 1000}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		r.Memory = memTotal(b)
	}
	return r
}

// memTotal returns MemTotal of /proc/meminfo's content in bytes, or 0.
func memTotal(meminfo []byte) int64 {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 {
			return 0
		}
		if len(f) > 1 && f[1] != "kB" {
			return 0
		}
		return kb << 10
	}
	return 0
}
