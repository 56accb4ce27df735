package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/spf13/pflag"

	"github.com/opendao/dao"
	"github.com/opendao/dao/cluster"
	"github.com/opendao/dao/cluster/pki"
	"github.com/opendao/dao/orchestrator"
)

// The control plane's state directory.
const (
	// controlPlaneCADir holds the cluster's CA (pki.CA.Save).
	controlPlaneCADir = "ca"
	// controlPlaneStore is the orchestrator's bbolt store.
	controlPlaneStore = "store.db"
	// defaultListen is where dao control-plane serves the node protocol.
	defaultListen = "127.0.0.1:7450"
	// defaultAgentStateDir is the state directory of the agent command it prints.
	defaultAgentStateDir = "/var/lib/dao-agent"
)

// controlPlaneOptions are the flags of dao control-plane.
type controlPlaneOptions struct {
	listen    string
	stateDir  string
	services  []string
	advertise string
	verbose   bool
	etcd      etcdOptions
}

func (o *controlPlaneOptions) flags(fs *pflag.FlagSet) {
	fs.StringVar(&o.listen, "listen", defaultListen, "serve the nodes on `ADDR` (host:port; 0.0.0.0:7450 for every interface)")
	fs.StringVar(&o.stateDir, "state-dir", "", "keep the cluster's CA and the store of services, tasks and nodes in `DIR`; required")
	fs.StringArrayVar(&o.services, "service", nil, "create the service of `FILE.json` (a dao.ServiceSpec in JSON) at start, or update it to that spec; repeatable")
	fs.StringVar(&o.advertise, "advertise", "", "the host:port `ADDR` the nodes reach this control plane at, for the agent command it prints (default: --listen's)")
	o.etcd.flags(fs)
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "log the node protocol's sessions and the orchestrator's decisions too ; without it, only warnings and errors are logged")
}

func controlPlaneCommand() *command {
	var o controlPlaneOptions
	c := &command{
		name:    "control-plane",
		summary: "run a control plane that remote nodes (dao agent) join",
		flags:   o.flags,
		usage: `Usage: dao control-plane --state-dir DIR [options]

Runs a control plane: an orchestrator whose services, tasks and nodes are kept in
DIR/store.db, and the node protocol on --listen, where nodes that run dao agent join with a
token and connect over mutual TLS. The cluster's CA is in DIR/ca, made at the first start.

At each start it makes a new join token (valid for 24 hours; the CA keeps only its hash)
and prints the command that joins a machine to the cluster. Services given with --service
are created, or updated to the file's spec. Then it prints, one line each, the changes of
nodes and tasks as they happen.

A service file is a dao.ServiceSpec in JSON, such as (dao import busybox makes the image
on each node):

  {"name": "web", "replicas": 2,
   "container": {"image": "dao.local/busybox:latest",
                 "command": ["busybox", "httpd", "-f", "-p", "8080"],
                 "resources": {"milliCPU": 100, "memory": 33554432}}}

The admin API is on the unix socket DIR/admin.sock, mode 0600: only the user who runs
the control plane, and root, may call it (the kernel says who calls). dao node ls, dao
node rm, dao service ls, dao service rm and dao service scale, run on this machine with
--state-dir DIR, call it. Nothing of it is on the network: a node's certificate, which a
join token buys, can never administer the cluster.

SIGINT or SIGTERM stops it; the nodes keep running their tasks and reconnect when it is
back.

With --etcd, the store is in etcd instead, and any number of control planes started
with the same --etcd (and --etcd-prefix) are replicas of one: one leads (it runs the
orchestrator's loops, fenced on its leadership), the others stand by, serve the API,
send the nodes to the leader and take over within seconds when it is lost. The first
replica puts the cluster's CA in etcd (its key too: protect etcd with TLS and
authentication), and the others take it from there. Give the agents every replica:

  dao agent --join TOKEN cp1:7450,cp2:7450,cp3:7450 --state-dir DIR

Each replica serves the admin API on the socket in its own --state-dir, whether it
leads or stands by.

The etcd client takes --etcd-cacert, --etcd-cert and --etcd-key for TLS, and
--etcd-user with the password in $DAO_ETCD_PASSWORD.
`,
	}
	c.run = func(ctx context.Context, g *globals, args []string) int {
		if err := noArguments(args); err != nil {
			return usageError(g.stderr, c.name, err.Error())
		}
		specs, err := o.check()
		if err != nil {
			return usageError(g.stderr, c.name, err.Error())
		}
		if err := runControlPlane(ctx, g, &o, specs); err != nil {
			return fail(g, c.name, err)
		}
		return exitOK
	}
	return c
}

// check validates the options and reads the service files. Its error is a usage error.
func (o *controlPlaneOptions) check() ([]dao.ServiceSpec, error) {
	if o.stateDir == "" {
		return nil, errors.New("--state-dir is required: the CA and the store are kept there")
	}
	dir, err := filepath.Abs(o.stateDir)
	if err != nil {
		return nil, fmt.Errorf("--state-dir %q: %v", o.stateDir, err)
	}
	o.stateDir = dir
	if err := o.etcd.check(); err != nil {
		return nil, err
	}
	if _, _, err := net.SplitHostPort(o.listen); err != nil {
		return nil, fmt.Errorf("--listen %q: want host:port, such as %s", o.listen, defaultListen)
	}
	if o.advertise != "" {
		if host, _, err := net.SplitHostPort(o.advertise); err != nil || host == "" {
			return nil, fmt.Errorf("--advertise %q: want host:port, such as 10.0.0.1:7450", o.advertise)
		}
	}
	var specs []dao.ServiceSpec
	for _, file := range o.services {
		spec, err := readServiceSpec(file)
		if err != nil {
			return nil, fmt.Errorf("--service %s: %v", file, err)
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// readServiceSpec reads a dao.ServiceSpec from a JSON file; a field it does not know is an
// error, so that a typo is not silently ignored.
func readServiceSpec(file string) (dao.ServiceSpec, error) {
	var spec dao.ServiceSpec
	b, err := os.ReadFile(file)
	if err != nil {
		return spec, errors.Unwrap(err) // the path is said already
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return spec, err
	}
	if dec.More() {
		return spec, errors.New("more than one JSON value")
	}
	if err := spec.Validate(); err != nil {
		return spec, err
	}
	return spec, nil
}

// runControlPlane serves until ctx is done.
func runControlPlane(ctx context.Context, g *globals, o *controlPlaneOptions, specs []dao.ServiceSpec) error {
	level := slog.LevelWarn // what the log says at Info, the lines of changes say
	if o.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
	if err := os.MkdirAll(o.stateDir, 0o700); err != nil {
		return err
	}

	if o.etcd.enabled() {
		return runReplica(ctx, g, o, specs, log)
	}
	caDir := filepath.Join(o.stateDir, controlPlaneCADir)
	ca, err := pki.LoadCA(caDir)
	created := false
	if errors.Is(err, fs.ErrNotExist) {
		if ca, err = pki.NewCA(); err == nil {
			err = ca.Save(caDir)
		}
		created = true
	}
	if err != nil {
		return err
	}
	pruned := ca.PruneJoinTokens()

	store, err := orchestrator.OpenBoltStore(filepath.Join(o.stateDir, controlPlaneStore), orchestrator.WithStoreLogger(log))
	if err != nil {
		return err
	}
	defer store.Close()
	orch, err := orchestrator.New(store, orchestrator.WithLogger(log))
	if err != nil {
		return err
	}
	srv, err := cluster.NewServer(ca, orch, cluster.WithCADir(caDir), cluster.WithServerLogger(log))
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	adminL, adminPath, err := listenAdmin(o.stateDir)
	if err != nil {
		l.Close()
		return err
	}

	// From here on, everything started is stopped in order before returning: the server,
	// then the orchestrator, then the watch and the admin API; the store is closed last
	// (deferred above).
	out := &lockedWriter{w: g.stdout}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	events, err := orch.Watch(runCtx, 0, watchedTypes())
	if err != nil {
		l.Close()
		adminL.Close()
		return err
	}
	var wg sync.WaitGroup
	p := &changePrinter{w: out}
	wg.Go(func() { p.follow(runCtx, orch, events) })
	admin := &adminServer{o: orch, srv: srv, log: log, uid: os.Getuid()}
	wg.Go(func() {
		if err := admin.serve(runCtx, adminL); err != nil {
			log.Error("dao control-plane: the admin API stopped", "err", err)
		}
	})
	ran := make(chan error, 1)
	served := make(chan error, 1)
	go func() { ran <- orch.Run(runCtx) }()
	go func() { served <- srv.Serve(l) }()
	defer func() {
		_ = srv.Close()
		<-served
		stop()
		<-ran
		wg.Wait()
	}()

	what := "loaded"
	if created {
		what = "made"
	}
	fmt.Fprintf(out, "dao control-plane %s: serving nodes on %s; state in %s\n", version, l.Addr(), o.stateDir)
	fmt.Fprintf(out, "  CA %s %s (pin %s), %s\n", what, caDir, hex.EncodeToString(pinOf(ca))[:16], inStore(ctx, orch))
	printAdmin(out, adminPath, o.stateDir)
	if pruned > 0 {
		log.Debug("expired join tokens pruned", "tokens", pruned)
	}

	for _, spec := range specs {
		if err := applyService(ctx, out, orch, spec); err != nil {
			return err
		}
	}

	token, err := ca.NewJoinToken()
	if err == nil {
		err = ca.Save(caDir) // the CA keeps the token's hash, not the token
	}
	if err != nil {
		return err
	}
	addr := advertised(o.advertise, l.Addr())
	printJoin(out, token, addr, "")

	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "dao control-plane: stopping; the nodes keep running their tasks")
		return nil
	case err := <-ran:
		ran <- err
		return fmt.Errorf("the orchestrator stopped: %w", err)
	case err := <-served:
		served <- err
		return fmt.Errorf("the node protocol stopped serving: %w", err)
	}
}

// printJoin prints the command that joins a machine with token at addr; where says
// where else the token is good.
func printJoin(out io.Writer, token, addr, where string) {
	fmt.Fprintf(out, "\nTo join a machine to this cluster (the token is valid for %s%s), run there as root:\n\n",
		strings.TrimSuffix(pki.DefaultTokenTTL.String(), "0m0s"), where)
	fmt.Fprintf(out, "  dao agent --join %s %s --state-dir %s\n\n", token, addr, defaultAgentStateDir)
}

// printAdmin prints where the admin API is, for the start banner.
func printAdmin(out io.Writer, path, stateDir string) {
	fmt.Fprintf(out, "  admin API on %s (mode 0600): dao node ls --state-dir %s\n", path, stateDir)
}

// inStore says what the store holds, for the start banner.
func inStore(ctx context.Context, o *orchestrator.Orchestrator) string {
	nodes, _ := o.Nodes(ctx)
	services, _ := o.Services(ctx)
	return plural(len(services), "service", "services") + ", " + plural(len(nodes), "node", "nodes") + " in the store"
}

// watchedTypes are the objects whose changes the control plane prints.
func watchedTypes() orchestrator.WatchFilter {
	return orchestrator.WatchTypes(orchestrator.NodeObject, orchestrator.TaskObject, orchestrator.ServiceObject)
}

// lockedWriter writes whole lines from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(b)
}

func pinOf(ca *pki.CA) []byte { pin := ca.Pin(); return pin[:] }

// applyService creates the service, or updates it to spec when it exists.
func applyService(ctx context.Context, w io.Writer, o *orchestrator.Orchestrator, spec dao.ServiceSpec) error {
	_, err := o.CreateService(ctx, spec)
	if err == nil {
		fmt.Fprintf(w, "  service %s created: %s of %s\n", spec.Name, plural(spec.Replicas, "replica", "replicas"), spec.Container.Image)
		return nil
	}
	if !errdefs.IsAlreadyExists(err) {
		return fmt.Errorf("service %s: %w", spec.Name, err)
	}
	old, err := o.Service(ctx, spec.Name)
	if err != nil {
		return err
	}
	s, err := o.UpdateService(ctx, spec.Name, spec)
	if err != nil {
		return fmt.Errorf("service %s: %w", spec.Name, err)
	}
	if s.Version == old.Version {
		fmt.Fprintf(w, "  service %s unchanged (version %d)\n", spec.Name, s.Version)
	} else {
		fmt.Fprintf(w, "  service %s updated to version %d: a rolling update starts\n", spec.Name, s.Version)
	}
	return nil
}

// advertised returns the address for the agent command: --advertise, else the listener's,
// with this machine's name for an unspecified host.
func advertised(advertise string, listen net.Addr) string {
	if advertise != "" {
		return advertise
	}
	host, port, err := net.SplitHostPort(listen.String())
	if err != nil {
		return listen.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if name, err := os.Hostname(); err == nil && name != "" {
			host = name
		}
	}
	return net.JoinHostPort(host, port)
}

// changePrinter prints the changes of nodes, tasks and services, one short line each.
type changePrinter struct {
	w   io.Writer
	now func() time.Time
}

// follow prints the events until ctx is done; a watch that falls behind is started again.
func (p *changePrinter) follow(ctx context.Context, o *orchestrator.Orchestrator, events <-chan orchestrator.Event) {
	for {
		for e := range events {
			if e.Err != nil {
				p.printf("(the change log fell behind: %v; following it again)", e.Err)
				break
			}
			p.print(e)
		}
		if ctx.Err() != nil {
			return
		}
		var err error
		if events, err = o.Watch(ctx, 0, watchedTypes()); err != nil {
			return
		}
	}
}

func (p *changePrinter) printf(format string, args ...any) {
	now := time.Now
	if p.now != nil {
		now = p.now
	}
	fmt.Fprintf(p.w, "%s %s\n", now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// print prints e when it says something a person follows: a node that joins, changes
// state or goes; a task created, placed, in a new state or health, asked to stop, deleted;
// a service removed or its update finished. Heartbeats and the like print nothing.
func (p *changePrinter) print(e orchestrator.Event) {
	switch {
	case e.Node != nil:
		n := e.Node
		switch {
		case e.Kind == orchestrator.EventDeleted:
			p.printf("node %s removed", n.ID)
		case e.Kind == orchestrator.EventCreated:
			p.printf("node %s joined: %s", n.ID, describeNode(&n.Node))
		case e.PrevNode != nil && e.PrevNode.Status.State != n.Status.State:
			p.printf("node %s %s%s", n.ID, n.Status.State, suffix(n.Status.Message))
		}
	case e.Task != nil:
		t := e.Task
		where := ""
		if t.NodeID != "" {
			where = " on " + t.NodeID
		}
		switch {
		case e.Kind == orchestrator.EventDeleted:
			p.printf("task %s deleted", t.ID)
		case e.Kind == orchestrator.EventCreated:
			p.printf("task %s created%s: %s", t.ID, where, t.Status.State)
		case e.PrevTask == nil:
		case e.PrevTask.NodeID != t.NodeID && t.NodeID != "":
			p.printf("task %s placed%s", t.ID, where)
		case e.PrevTask.Status.State != t.Status.State:
			msg := t.Status.Err
			if msg == "" && t.Status.Message != t.Status.State.String() {
				msg = t.Status.Message
			}
			p.printf("task %s%s: %s%s", t.ID, where, t.Status.State, suffix(msg))
		case e.PrevTask.Status.Health != t.Status.Health && t.Status.Health != "":
			p.printf("task %s%s: %s", t.ID, where, t.Status.Health)
		case e.PrevTask.DesiredState != t.DesiredState && t.DesiredState > dao.TaskRunning:
			p.printf("task %s%s: to be stopped (%s)", t.ID, where, shorten(e.Cause, 100))
		case e.PrevTask.Status.Restarts != t.Status.Restarts:
			p.printf("task %s%s: restarted by its node (%d restarts)", t.ID, where, t.Status.Restarts)
		}
	case e.Service != nil:
		s := e.Service
		switch {
		case e.Kind == orchestrator.EventDeleted:
			p.printf("service %s removed", s.ID)
		case e.PrevService != nil && e.PrevService.UpdateStatus.State != s.UpdateStatus.State && s.UpdateStatus.State != "":
			p.printf("service %s: update %s%s", s.ID, s.UpdateStatus.State, suffix(s.UpdateStatus.Message))
		}
	}
}

// describeNode says what a node offers: "host a, linux/amd64, 2 CPUs, 3.9 GiB, zone=eu".
func describeNode(n *dao.Node) string {
	var parts []string
	if n.Hostname != "" {
		parts = append(parts, "host "+n.Hostname)
	}
	if n.Platform.OS != "" {
		parts = append(parts, n.Platform.String())
	}
	if c := n.Capacity.MilliCPU; c > 0 {
		parts = append(parts, fmt.Sprintf("%g CPUs", float64(c)/1000))
	}
	if m := n.Capacity.Memory; m > 0 {
		parts = append(parts, fmt.Sprintf("%.1f GiB", float64(m)/float64(dao.GiB)))
	}
	for _, k := range sortedLabelKeys(n.Labels) {
		parts = append(parts, k+"="+n.Labels[k])
	}
	if len(parts) == 0 {
		return "no details"
	}
	return strings.Join(parts, ", ")
}

func sortedLabelKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func suffix(msg string) string {
	if msg == "" {
		return ""
	}
	return " (" + shorten(msg, 100) + ")"
}

func shorten(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
