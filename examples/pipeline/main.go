// Command pipeline shows Dao's pipeline runner delivering the quickstart's web app
// (examples/quickstart/webapp): it tests the app, builds its image, pushes the image to a
// registry and deploys it through the orchestrator to a 2-replica service on a local edge
// node, with every step's log live and a summary of each run.
//
//	go run ./examples/pipeline [-address /run/containerd/containerd.sock] [-registry host:port] [-f pipeline.yaml] [-runs 2]
//
// The pipeline is pipeline.yaml of this directory (built into the program; -f reads another
// one). pipeline-gha.yaml is the same pipeline written with GitHub Actions' spellings (run,
// shell, timeout-minutes, $GITHUB_OUTPUT): -f examples/pipeline/pipeline-gha.yaml runs it. The program first does what a checkout and a compile would: there is no Go toolchain
// image to run in a step, so it compiles the app and its smoke tests (package smoketest,
// with go test -c) on the host, as static binaries, into the workspace, with a VERSION file.
// The steps then run in containers of Debian's busybox-static image: one prints the version,
// one runs the smoke tests against the binary; a build step packs the binary into an image
// and pushes it to the registry; a deploy step hands the pushed image, pinned to its digest,
// to the orchestrator, which creates the service "web" (first run) or rolls it over to the
// new image one replica at a time, gated on health checks (later runs). The node pulls the
// image from the registry when a task needs it (edge.WithPuller).
//
// It runs the pipeline twice by default, the second time for version 1.0.2 of the same
// binaries: the tests are a cache hit and are skipped, and the service is rolled over.
// Finally it removes the service, its containers and images, and whatever it started.
//
// Without -address (or CONTAINERD_ADDRESS) it starts a private containerd under a temporary
// directory; without -registry it starts a private registry (Dao's own, registry/server,
// in this process, over a temporary directory) on 127.0.0.1. A registry given with -registry must serve plain HTTP; the images pushed to it
// stay there. It needs root, containerd, runc, the CNI plugins, busybox-static and Go.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao"
	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/internal/daemon"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/pipeline"
	"github.com/opendao/dao/policy"
	"github.com/opendao/dao/registry"
	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/ctrd"
	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/remote"
	"github.com/opendao/dao/registry/server"
	"github.com/opendao/dao/registry/server/storage"
)

const (
	nodeNamespace = "dao-pipeline"    // the node's containers and images
	ciNamespace   = "dao-pipeline-ci" // the pipeline's step containers and images
	bridge        = "daopipe0"
	subnet        = "198.18.70.0/24"
	nodeID        = "local"
	busyboxRef    = "dao.example/busybox:latest"
	serviceName   = "web"
	replicas      = 2
)

//go:embed pipeline.yaml
var defaultPipeline []byte

// config is what the flags set.
type config struct {
	// address is containerd's socket; "" starts a private containerd.
	address string
	// registry is the host:port of a plain-HTTP registry; "" starts a private one.
	registry string
	// file is the pipeline file; "" is the pipeline.yaml built into the program.
	file string
	// runs is how many times the pipeline runs, each time for the next version.
	runs int
}

func main() {
	var cfg config
	flag.StringVar(&cfg.address, "address", os.Getenv("CONTAINERD_ADDRESS"), "containerd socket; empty starts a private containerd")
	flag.StringVar(&cfg.registry, "registry", "", "host:port of a plain-HTTP registry to push to; empty starts a private one")
	flag.StringVar(&cfg.file, "f", "", "pipeline file; empty runs the pipeline.yaml built into the program")
	flag.IntVar(&cfg.runs, "runs", 2, "runs of the pipeline, for versions 1.0.1, 1.0.2, ...")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "pipeline:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, cfg config) error {
	began := time.Now()
	if err := deliver(ctx, &console{out: out}, cfg); err != nil {
		return err
	}
	fmt.Fprintf(out, "\npipeline example finished in %s\n", since(began))
	return nil
}

// deliver does what run says, and removes what it made before it returns.
func deliver(ctx context.Context, con *console, cfg config) error {
	if cfg.runs < 1 {
		return fmt.Errorf("-runs %d: must be at least 1", cfg.runs)
	}
	if os.Geteuid() != 0 {
		return errors.New("run me as root: containers need it")
	}
	p, err := loadPipeline(cfg.file)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "dao-pipeline-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	// 1. containerd and a registry
	if cfg.address == "" {
		con.step("starting a private containerd")
		t := time.Now()
		d, err := daemon.StartContainerd()
		if err != nil {
			return firstLine(err)
		}
		defer func() {
			con.step("removing the private containerd")
			d.Close()
		}()
		cfg.address = d.Address
		con.done("containerd at %s (%s)", cfg.address, since(t))
	}
	c, err := client.New(cfg.address)
	if err != nil {
		return fmt.Errorf("containerd at %s: %w", cfg.address, err)
	}
	defer c.Close()
	if cfg.registry == "" {
		con.step("starting a private registry (Dao's registry/server)")
		t := time.Now()
		addr, stop, err := startRegistry()
		if err != nil {
			return firstLine(err)
		}
		defer func() {
			con.step("removing the private registry")
			stop()
		}()
		cfg.registry = addr
		con.done("registry at %s (%s)", cfg.registry, since(t))
	}
	reg, err := registry.NewClient(remote.WithHosts(map[string]remote.HostConfig{cfg.registry: {PlainHTTP: true}}))
	if err != nil {
		return err
	}
	defer reg.Close()
	if p.Env == nil {
		p.Env = map[string]string{}
	}
	p.Env["REGISTRY"] = cfg.registry

	// 2. the checkout: binaries compiled on the host, and the busybox image for the steps
	con.step("preparing the workspace: compiling the app and its smoke tests on the host (CGO_ENABLED=0)")
	t := time.Now()
	ws := filepath.Join(work, "workspace")
	if err := os.MkdirAll(ws, 0o755); err != nil {
		return err
	}
	if err := compile(ws); err != nil {
		return err
	}
	con.done("workspace %s: webapp, webapp.test (%s)", ws, since(t))
	ciCtx := namespaces.WithNamespace(ctx, ciNamespace)
	bb, err := busyboxImage(ctx)
	if err != nil {
		return err
	}
	if _, err := ctrd.Import(ciCtx, c, busyboxRef, bb, ctrd.WithUnpack("overlayfs")); err != nil {
		return err
	}
	defer deleteImages(c, ciNamespace)
	con.done("image %s for the steps, from /usr/bin/busybox", busyboxRef)

	// 3. the control plane and one local edge node, as in the quickstart
	con.step("starting the orchestrator and a local edge node (CNI bridge %s, %s)", bridge, subnet)
	store, err := orchestrator.NewMemoryStore()
	if err != nil {
		return err
	}
	defer store.Close()
	o, err := orchestrator.New(store)
	if err != nil {
		return err
	}
	nodeRT, err := edge.NewFromClient(c, edge.WithNamespace(nodeNamespace), edge.WithLogDir(filepath.Join(work, "node-logs")),
		edge.WithPuller(reg), // the node pulls the images of its tasks from the registry
		edge.WithNetwork(edge.Network{
			Name:     "dao-pipeline-example",
			Bridge:   bridge,
			Subnet:   subnet,
			StateDir: filepath.Join(work, "cni"),
			NetNSDir: filepath.Join(work, "netns"),
		}))
	if err != nil {
		return err
	}
	defer nodeRT.Close()
	defer exec.Command("ip", "link", "delete", bridge).Run()
	agent, err := edge.NewAgent(nodeRT, edge.WithStateDir(filepath.Join(work, "agent")),
		edge.WithStatusFunc(func(u edge.TaskUpdate) { o.ReportStatus(nodeID, u) }),
		edge.WithHeartbeat(time.Second, func() { _ = o.Heartbeat(nodeID) }))
	if err != nil {
		return err
	}
	lctx, stopLoops := context.WithCancel(ctx)
	var loops sync.WaitGroup
	defer func() {
		stopLoops()
		loops.Wait()
	}()
	goLoop := func(f func(context.Context)) {
		loops.Add(1)
		go func() {
			defer loops.Done()
			f(lctx)
		}()
	}
	goLoop(func(ctx context.Context) { _ = o.Run(ctx) })
	if err := o.AddNode(ctx, dao.Node{ID: nodeID, Hostname: "localhost"}, agent); err != nil {
		return err
	}
	goLoop(func(ctx context.Context) { _ = agent.Run(ctx) })
	d := &deployer{o: o, c: c, con: con}
	goLoop(d.follow)
	defer d.cleanup(ctx, nodeRT)
	con.done("node %q ready", nodeID)

	// 4. the pipeline, run after run
	ciRT, err := edge.NewFromClient(c, edge.WithNamespace(ciNamespace), edge.WithLogDir(filepath.Join(work, "ci-logs")))
	if err != nil {
		return err
	}
	defer ciRT.Close()
	runner, err := pipeline.NewRunner(ciRT,
		pipeline.WithPusher(reg),
		pipeline.WithDeployer(d),
		pipeline.WithCacheDir(filepath.Join(work, "cache")),
		pipeline.WithScratchDir(work),
		pipeline.WithStopGrace(time.Second))
	if err != nil {
		return err
	}
	for i := 1; i <= cfg.runs; i++ {
		version := fmt.Sprintf("1.0.%d", i)
		if err := os.WriteFile(filepath.Join(ws, "VERSION"), []byte(version+"\n"), 0o644); err != nil {
			return err
		}
		con.step("run %d of pipeline %q: version %s", i, p.Name, version)
		if i == 1 {
			con.done("(each line: its time, its step, then | for the step's own output or * for Dao's)")
		}
		rec, err := runner.Run(ctx, p,
			pipeline.WithWorkspace(ws),
			pipeline.WithRunID(fmt.Sprintf("run%d", i)),
			pipeline.WithLogFunc(func(l pipeline.LogLine) { con.log(l.Time, l.Step, l.Runner, l.Text) }))
		if rec != nil {
			con.summary(rec)
		}
		if err != nil {
			return fmt.Errorf("run %d: %w", i, runError(rec, err))
		}
		if err := d.greet(ctx); err != nil {
			return err
		}
	}

	// 5. clean up (the deferred calls remove the rest)
	con.step("removing service %s", serviceName)
	if err := d.remove(ctx, nodeRT); err != nil {
		return err
	}
	con.done("service and containers removed")
	return nil
}

// loadPipeline reads the pipeline file, or the one built in.
func loadPipeline(file string) (*pipeline.Pipeline, error) {
	if file != "" {
		return pipeline.Load(file)
	}
	return pipeline.Parse(defaultPipeline)
}

// runError says in one line which step failed and why.
func runError(rec *pipeline.Record, err error) error {
	if rec == nil || !errors.Is(err, pipeline.ErrFailed) {
		return err
	}
	for _, s := range rec.Steps {
		if s.Status == pipeline.StatusFailure || s.Status == pipeline.StatusTimedOut {
			return fmt.Errorf("step %s: %s: %s (its log is above)", s.Name, s.Status, s.Reason)
		}
	}
	return err
}

// firstLine keeps the first line of err: package daemon adds the daemon's whole log.
func firstLine(err error) error {
	msg, _, cut := strings.Cut(err.Error(), "\n")
	if !cut {
		return err
	}
	return errors.New(msg)
}

// compile builds the web app and its smoke tests as static binaries into ws.
func compile(ws string) error {
	_, self, _, _ := runtime.Caller(0)
	here := filepath.Dir(self)
	for _, c := range []struct {
		dir  string
		args []string
	}{
		{filepath.Join(here, "..", "quickstart", "webapp"), []string{"build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(ws, "webapp"), "."}},
		{filepath.Join(here, "smoketest"), []string{"test", "-c", "-trimpath", "-o", filepath.Join(ws, "webapp.test"), "."}},
	} {
		cmd := exec.Command("go", c.args...)
		cmd.Dir = c.dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s in %s: %v: %s", strings.Join(c.args[:2], " "), c.dir, err, strings.TrimSpace(string(b)))
		}
	}
	return nil
}

// busyboxImage is an image of Debian's static busybox with the applets the steps use.
func busyboxImage(ctx context.Context) (*oci.Image, error) {
	if _, err := os.Stat("/usr/bin/busybox"); err != nil {
		return nil, errors.New("the steps' image needs /usr/bin/busybox (Debian package busybox-static)")
	}
	lb, err := build.NewLayerBuilder()
	if err != nil {
		return nil, err
	}
	if err := lb.AddHostFile("bin/busybox", "/usr/bin/busybox"); err != nil {
		return nil, err
	}
	for _, a := range []string{"sh", "cat", "echo", "tee", "ls", "date", "sleep", "wget", "true", "false", "env"} {
		if err := lb.AddSymlink("bin/"+a, "busybox"); err != nil {
			return nil, err
		}
	}
	if err := lb.AddDir("tmp", 0o777|os.ModeSticky); err != nil {
		return nil, err
	}
	if err := lb.AddFile("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n")); err != nil {
		return nil, err
	}
	layer, err := lb.Build(ctx)
	if err != nil {
		return nil, err
	}
	return oci.NewImage([]*oci.Layer{layer}, ocispec.ImageConfig{
		Cmd: []string{"/bin/sh"},
		Env: []string{"PATH=/bin"},
	})
}

// deleteImages deletes the images of the namespace, which is the program's own.
func deleteImages(c *client.Client, ns string) {
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), ns), 30*time.Second)
	defer cancel()
	imgs, err := c.ImageService().List(ctx)
	if err != nil {
		return
	}
	for _, img := range imgs {
		_ = c.ImageService().Delete(ctx, img.Name)
	}
}

// deployer is the pipeline's Deployer: the orchestrator creates the service with the image,
// or rolls the service over to it (orchestrator.Deploy); the node pulls the image.
type deployer struct {
	o   *orchestrator.Orchestrator
	c   *client.Client
	con *console

	mu        sync.Mutex
	deploying bool // print the orchestrator's decisions as they happen
}

var _ pipeline.Deployer = (*deployer)(nil)

// Deploy implements pipeline.Deployer.
func (d *deployer) Deploy(ctx context.Context, service, image string) error {
	d.mu.Lock()
	d.deploying = true
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.deploying = false
		d.mu.Unlock()
	}()
	t := time.Now()
	if _, err := d.o.Service(ctx, service); errors.Is(err, orchestrator.ErrNotFound) {
		d.note("service %s does not exist yet: creating it with %d replicas", service, replicas)
		if _, err := d.o.CreateService(ctx, serviceSpec(service, image)); err != nil {
			return err
		}
		if err := d.waitHealthy(ctx, service, image); err != nil {
			return err
		}
		d.note("%d replicas running and healthy after %s", replicas, since(t))
		return nil
	} else if err != nil {
		return err
	}
	spec := serviceSpec(service, image)
	d.note("rolling service %s over to the new image, one replica at a time, start-first, gated on health;", service)
	d.note("each new replica is watched for %s, as long as its health check may take to find it bad",
		policy.MonitorWindow(spec.Update, spec.Container.HealthCheck))
	if err := d.o.Deploy(ctx, service, image); err != nil {
		return err
	}
	d.note("update completed after %s", since(t))
	return nil
}

func serviceSpec(name, image string) dao.ServiceSpec {
	return dao.ServiceSpec{
		Name:     name,
		Replicas: replicas,
		Container: dao.ContainerSpec{
			Image:     image,
			Resources: dao.Resources{MilliCPU: 250, Memory: 32 * dao.MiB, Pids: 64},
			HealthCheck: &dao.HealthCheck{
				Command:  []string{"/webapp", "-check", "http://127.0.0.1:8080/healthz"},
				Interval: dao.Duration(250 * time.Millisecond),
				Timeout:  dao.Duration(500 * time.Millisecond),
			},
			StopGracePeriod: dao.Duration(2 * time.Second),
		},
		Restart: dao.RestartPolicy{ResetAfter: dao.Duration(2 * time.Second)},
		Update: dao.UpdatePolicy{Parallelism: 1, Order: dao.StartFirst, Monitor: dao.Duration(time.Second),
			FailureAction: dao.ActionRollback},
	}
}

// note prints a line in the deploy step's log, as the deployer's own.
func (d *deployer) note(format string, args ...any) {
	d.con.log(time.Now(), "deploy", true, fmt.Sprintf(format, args...))
}

// live returns the service's live tasks, by slot.
func (d *deployer) live(ctx context.Context, service string) ([]orchestrator.Task, error) {
	ts, err := d.o.Tasks(ctx, orchestrator.TaskFilter{ServiceID: service, Live: true})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ts, func(a, b orchestrator.Task) int { return a.Slot - b.Slot })
	return ts, nil
}

// waitHealthy waits until the service runs its replicas of image, healthy, and nothing else.
func (d *deployer) waitHealthy(ctx context.Context, service, image string) error {
	for {
		ts, err := d.live(ctx, service)
		if err != nil {
			return err
		}
		ok := 0
		for _, t := range ts {
			if t.Spec.Image == image && t.Status.State == dao.TaskRunning && t.Status.Health == dao.HealthHealthy {
				ok++
			}
		}
		if ok == replicas && len(ts) == replicas {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d replicas healthy: %w", ok, replicas, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// follow prints, while a deploy is under way, each change to the service and its tasks that
// the orchestrator decided, with the reason it gives.
func (d *deployer) follow(ctx context.Context) {
	events, err := d.o.Watch(ctx, 0, orchestrator.WatchTypes(orchestrator.TaskObject, orchestrator.ServiceObject))
	if err != nil {
		return
	}
	seen := map[string]bool{}
	for e := range events {
		d.mu.Lock()
		on := d.deploying
		d.mu.Unlock()
		if !on {
			clear(seen)
			continue
		}
		// A write may give several reasons, joined by "; ".
		for _, cause := range strings.Split(e.Cause, "; ") {
			if seen[cause] || strings.HasPrefix(cause, "status") || strings.HasPrefix(cause, "api:") {
				continue
			}
			seen[cause] = true
			d.note("orchestrator: %s", cause)
		}
	}
}

// greet asks every replica over the network, from this program, what it is.
func (d *deployer) greet(ctx context.Context) error {
	ts, err := d.live(ctx, serviceName)
	if err != nil {
		return err
	}
	hc := http.Client{Timeout: 10 * time.Second}
	for _, t := range ts {
		if len(t.Status.Addresses) == 0 {
			return fmt.Errorf("task %s has no address", t.ID)
		}
		url := "http://" + t.Status.Addresses[0] + ":8080/"
		resp, err := hc.Get(url)
		if err != nil {
			return fmt.Errorf("replica %d of %s: %w", t.Slot, serviceName, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		d.con.done("GET %s -> %s", url, strings.TrimSpace(string(b)))
	}
	return nil
}

// remove removes the service and waits until its containers are gone.
func (d *deployer) remove(ctx context.Context, rt *edge.Runtime) error {
	if err := d.o.RemoveService(ctx, serviceName); err != nil {
		return err
	}
	// Normally a second or two. containerd 1.6's shim can stall for half a minute on a
	// loaded machine before the last container goes, so the wait is generous.
	const wait = 90 * time.Second
	deadline := time.Now().Add(wait)
	for {
		list, err := rt.List(ctx)
		if err != nil {
			return err
		}
		if len(list) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			var left []string
			for _, c := range list {
				left = append(left, fmt.Sprintf("%s (%s)", c.ID, c.State))
			}
			return fmt.Errorf("%d containers still there %s after %s was removed: %s", len(list), wait, serviceName, strings.Join(left, ", "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// cleanup removes, whatever happened before, the service's containers and the images the
// node pulled.
func (d *deployer) cleanup(ctx context.Context, rt *edge.Runtime) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_ = d.o.RemoveService(ctx, serviceName)
	if list, err := rt.List(ctx); err == nil {
		for _, c := range list {
			_ = rt.Remove(ctx, c.ID)
		}
	}
	deleteImages(d.c, nodeNamespace)
}

// console prints the program's progress: steps, results and the steps' log lines. It is
// safe for simultaneous use.
type console struct {
	mu  sync.Mutex
	out io.Writer
}

func (c *console) step(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.out, "\n==> %s\n", fmt.Sprintf(format, args...))
}

func (c *console) done(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.out, "    %s\n", fmt.Sprintf(format, args...))
}

// log prints one log line of a step with its time; runner marks what Dao itself says.
func (c *console) log(at time.Time, step string, runner bool, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	mark := "|"
	if runner {
		mark = "*"
	}
	fmt.Fprintf(c.out, "    %s %-8s %s %s\n", at.Format("15:04:05.000"), step, mark, text)
}

// summary prints a run's steps: status, duration, cache and what each produced.
func (c *console) summary(rec *pipeline.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.out, "\n    run %s: %s in %s\n", rec.RunID, rec.Status, rec.FinishedAt.Sub(rec.StartedAt).Round(time.Millisecond))
	w := tabwriter.NewWriter(c.out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "    STEP\tSTATUS\tDURATION\tCACHE\tRESULT")
	for _, s := range rec.Steps {
		dur := "-"
		if !s.StartedAt.IsZero() && !s.FinishedAt.IsZero() {
			dur = s.FinishedAt.Sub(s.StartedAt).Round(time.Millisecond).String()
		}
		cache := "-"
		if s.Cache != nil {
			cache = "miss"
			if s.Cache.Hit {
				cache = "hit"
			}
		}
		fmt.Fprintf(w, "    %s\t%s\t%s\t%s\t%s\n", s.Name, s.Status, dur, cache, result(s))
	}
	w.Flush()
}

// result says in a few words what a step gave, or why it did not run.
func result(s pipeline.StepRecord) string {
	switch {
	case s.Reason != "":
		return s.Reason
	case s.Outputs["service"] != "":
		return "service " + s.Outputs["service"] + " runs " + short(s.Outputs["image"])
	case s.Outputs["image"] != "":
		return "pushed " + short(s.Outputs["image"])
	case s.Cache != nil && s.Cache.Saved:
		return fmt.Sprintf("saved in the cache as %.12s", s.Cache.Key)
	case len(s.Outputs) > 0:
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(s.Outputs)) {
			kv = append(kv, k+"="+s.Outputs[k])
		}
		return strings.Join(kv, " ")
	}
	return ""
}

// short shortens the digest of a pinned reference to 12 hex digits.
func short(ref string) string {
	if i := strings.Index(ref, "@sha256:"); i >= 0 && len(ref) > i+8+12 {
		return ref[:i+8+12]
	}
	return ref
}

func since(t time.Time) string { return time.Since(t).Round(time.Millisecond).String() }

// startRegistry serves Dao's registry (registry/server over a file system store in a
// temporary directory) on a loopback port, until stop.
func startRegistry() (addr string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "dao-pipeline-registry-")
	if err != nil {
		return "", nil, err
	}
	st, err := storage.OpenFS(dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	srv, err := server.New(st)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second}
	go hs.Serve(l)
	return l.Addr().String(), func() {
		hs.Close()
		os.RemoveAll(dir)
	}, nil
}
