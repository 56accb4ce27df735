// Command quickstart shows Dao on one machine: it builds a web app image from Go source with
// Dao's image builder, deploys it as a 3-replica service through the orchestrator and a local
// edge node on containerd, kills one replica and times its return, rolls the service over to
// a second version one replica at a time, gated on health checks, and removes everything it
// created.
//
//	go run ./examples/quickstart [-address /run/containerd/containerd.sock]
//
// Without -address (or CONTAINERD_ADDRESS) it starts a private containerd under a temporary
// directory and removes it at the end. It needs root, containerd and runc.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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
	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/ctrd"
	"github.com/opendao/dao/registry/oci"
)

const (
	namespace = "dao-quickstart"
	bridge    = "daoqs0"
	nodeID    = "local"
)

func main() {
	address := flag.String("address", os.Getenv("CONTAINERD_ADDRESS"), "containerd socket; empty starts a private containerd")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *address); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, address string) error {
	began := time.Now()
	if os.Geteuid() != 0 {
		return errors.New("run me as root: containers need it")
	}
	work, err := os.MkdirTemp("", "dao-quickstart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	// 1. containerd
	if address == "" {
		step("starting a private containerd")
		t := time.Now()
		d, err := daemon.StartContainerd()
		if err != nil {
			return err
		}
		defer func() {
			step("removing the private containerd")
			d.Close()
		}()
		address = d.Address
		done("containerd at %s (%s)", address, since(t))
	}
	c, err := client.New(address, client.WithDefaultNamespace(namespace))
	if err != nil {
		return fmt.Errorf("containerd at %s: %w", address, err)
	}
	defer c.Close()
	ctx = namespaces.WithNamespace(ctx, namespace)

	// 2. images
	step("building the web app from Go source, and its images v1 and v2")
	t := time.Now()
	bin, err := buildWebapp(work)
	if err != nil {
		return err
	}
	for _, v := range []string{"v1", "v2"} {
		img, err := webappImage(ctx, bin, v)
		if err != nil {
			return err
		}
		if _, err := ctrd.Import(ctx, c, imageName(v), img, ctrd.WithUnpack("overlayfs")); err != nil {
			return err
		}
		done("%s  %s", imageName(v), img.Descriptor().Digest.Encoded()[:12])
	}
	defer removeImages(c)
	done("built and imported in %s", since(t))

	// 3. the control plane (an orchestrator over a memory store) and one local edge node
	store, err := orchestrator.NewMemoryStore()
	if err != nil {
		return err
	}
	defer store.Close()
	o, err := orchestrator.New(store)
	if err != nil {
		return err
	}
	rt, err := edge.NewFromClient(c, edge.WithNamespace(namespace), edge.WithLogDir(filepath.Join(work, "logs")),
		edge.WithNetwork(edge.Network{
			Name:     "dao-quickstart",
			Bridge:   bridge,
			Subnet:   "198.18.50.0/24",
			StateDir: filepath.Join(work, "cni"),
			NetNSDir: filepath.Join(work, "netns"),
		}))
	if err != nil {
		return err
	}
	defer rt.Close()
	defer exec.Command("ip", "link", "delete", bridge).Run()
	agent, err := edge.NewAgent(rt, edge.WithStateDir(filepath.Join(work, "agent")),
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
	loops.Add(2)
	go func() { defer loops.Done(); _ = o.Run(lctx) }()
	if err := o.AddNode(ctx, dao.Node{ID: nodeID, Hostname: "localhost"}, agent); err != nil {
		return err
	}
	go func() { defer loops.Done(); _ = agent.Run(lctx) }()
	cp := &controlPlane{o: o, rt: rt}
	go cp.follow(lctx)

	step("deploying service web: 3 replicas of v1, through the orchestrator and a local edge node")
	t = time.Now()
	if _, err := o.CreateService(ctx, webSpec("v1")); err != nil {
		return err
	}
	if err := cp.waitVersion(ctx, "v1", 60*time.Second); err != nil {
		return err
	}
	done("3 replicas running and healthy in %s", since(t))
	cp.table(ctx)
	cp.greet(ctx)

	// 4. a crash
	live, err := cp.live(ctx)
	if err != nil {
		return err
	}
	victim := live[1].ID
	st, err := rt.Status(ctx, victim)
	if err != nil {
		return err
	}
	step(fmt.Sprintf("killing %s (pid %d) with SIGKILL, as a crash would", victim, st.PID))
	t = time.Now()
	if err := syscall.Kill(int(st.PID), syscall.SIGKILL); err != nil {
		return err
	}
	for {
		now, err := rt.Status(ctx, victim)
		if err == nil && now.State == edge.StateRunning && now.PID != st.PID {
			done("%s is back: new pid %d after %s, restarted by the node itself", victim, now.PID, since(t))
			break
		}
		if time.Since(t) > 20*time.Second {
			return fmt.Errorf("%s did not come back within 20s", victim)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cp.waitVersion(ctx, "v1", 30*time.Second); err != nil {
		return err
	}
	cp.table(ctx)

	// 5. a rolling update
	step("rolling update of web to v2: one replica at a time, start-first, gated on health")
	t = time.Now()
	cp.printCauses(true)
	if _, err := o.UpdateService(ctx, "web", webSpec("v2")); err != nil {
		return err
	}
	if err := cp.waitVersion(ctx, "v2", 90*time.Second); err != nil {
		return err
	}
	done("all replicas run v2 after %s", since(t))
	for { // each new replica is watched for its monitor window before the next one, or the end
		svc, err := o.Service(ctx, "web")
		if err != nil {
			return err
		}
		if svc.UpdateStatus.State == orchestrator.UpdateCompleted {
			break
		}
		if time.Since(t) > 60*time.Second {
			return fmt.Errorf("update of web still %s: %s", svc.UpdateStatus.State, svc.UpdateStatus.Message)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cp.printCauses(false)
	done("update completed in %s (each new replica is watched until its health check could have proved it bad)", since(t))
	cp.table(ctx)
	cp.greet(ctx)

	// 6. clean up
	step("removing service web")
	if err := o.RemoveService(ctx, "web"); err != nil {
		return err
	}
	if err := cp.waitNoContainers(ctx, 30*time.Second); err != nil {
		return err
	}
	done("all containers removed")
	fmt.Printf("\nquickstart finished in %s\n", since(began))
	return nil
}

func imageName(version string) string { return "dao.example/webapp:" + version }

func webSpec(version string) dao.ServiceSpec {
	return dao.ServiceSpec{
		Name:     "web",
		Replicas: 3,
		Container: dao.ContainerSpec{
			Image:     imageName(version),
			Resources: dao.Resources{MilliCPU: 250, Memory: 32 * dao.MiB, Pids: 64},
			HealthCheck: &dao.HealthCheck{
				Command:  []string{"/webapp", "-check", "http://127.0.0.1:8080/healthz"},
				Interval: dao.Duration(250 * time.Millisecond),
				Timeout:  dao.Duration(time.Second),
			},
			StopGracePeriod: dao.Duration(2 * time.Second),
		},
		Restart: dao.RestartPolicy{ResetAfter: dao.Duration(2 * time.Second)},
		Update: dao.UpdatePolicy{Parallelism: 1, Order: dao.StartFirst, Monitor: dao.Duration(time.Second),
			FailureAction: dao.ActionRollback},
	}
}

// buildWebapp compiles ./webapp as a static binary.
func buildWebapp(dir string) (string, error) {
	out := filepath.Join(dir, "webapp")
	_, self, _, _ := runtime.Caller(0)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = filepath.Join(filepath.Dir(self), "webapp")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build webapp: %v\n%s", err, b)
	}
	return out, nil
}

// webappImage is an image of the binary alone, which answers with version.
func webappImage(ctx context.Context, bin, version string) (*oci.Image, error) {
	lb, err := build.NewLayerBuilder()
	if err != nil {
		return nil, err
	}
	if err := lb.AddHostFile("webapp", bin); err != nil {
		return nil, err
	}
	layer, err := lb.Build(ctx)
	if err != nil {
		return nil, err
	}
	return oci.NewImage([]*oci.Layer{layer}, ocispec.ImageConfig{
		Entrypoint: []string{"/webapp"},
		Cmd:        []string{"-listen", ":8080", "-version", version},
		Labels:     map[string]string{"org.opencontainers.image.version": version},
	})
}

func removeImages(c *client.Client) {
	ctx := namespaces.WithNamespace(context.Background(), namespace)
	for _, v := range []string{"v1", "v2"} {
		_ = c.ImageService().Delete(ctx, imageName(v))
	}
}

// controlPlane wraps the orchestrator with what the quickstart shows of it.
type controlPlane struct {
	o  *orchestrator.Orchestrator
	rt *edge.Runtime

	mu     sync.Mutex
	causes bool // print the causes of task changes as they happen
}

// live returns the service's live tasks, by slot.
func (cp *controlPlane) live(ctx context.Context) ([]orchestrator.Task, error) {
	ts, err := cp.o.Tasks(ctx, orchestrator.TaskFilter{ServiceID: "web", Live: true})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ts, func(a, b orchestrator.Task) int { return a.Slot - b.Slot })
	return ts, nil
}

// waitVersion waits until the service runs 3 healthy replicas of version and nothing else.
func (cp *controlPlane) waitVersion(ctx context.Context, version string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		ts, err := cp.live(ctx)
		if err != nil {
			return err
		}
		ok := 0
		for _, t := range ts {
			if t.Spec.Image == imageName(version) && t.Status.State == dao.TaskRunning && t.Status.Health == dao.HealthHealthy {
				ok++
			}
		}
		if ok == 3 && len(ts) == 3 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of 3 replicas of %s healthy after %s", ok, version, within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (cp *controlPlane) waitNoContainers(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		list, err := cp.rt.List(ctx)
		if err != nil {
			return err
		}
		if len(list) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d containers still there after %s", len(list), within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (cp *controlPlane) printCauses(on bool) {
	cp.mu.Lock()
	cp.causes = on
	cp.mu.Unlock()
}

// follow prints, while printCauses is on, each change to the service's tasks that the
// orchestrator decided, with the loop and reason it gives.
func (cp *controlPlane) follow(ctx context.Context) {
	events, err := cp.o.Watch(ctx, 0, orchestrator.WatchTypes(orchestrator.TaskObject))
	if err != nil {
		return
	}
	last := ""
	for e := range events {
		cp.mu.Lock()
		on := cp.causes
		cp.mu.Unlock()
		if !on || e.Cause == last || strings.HasPrefix(e.Cause, "status") {
			continue
		}
		last = e.Cause
		cause := e.Cause
		if len(cause) > 110 {
			cause = cause[:107] + "..."
		}
		done("event: %s", cause)
	}
}

// greet asks every replica over the network, from this program, what it is.
func (cp *controlPlane) greet(ctx context.Context) {
	c := http.Client{Timeout: 10 * time.Second}
	ts, _ := cp.live(ctx)
	for _, t := range ts {
		if len(t.Status.Addresses) == 0 {
			continue
		}
		url := "http://" + t.Status.Addresses[0] + ":8080/"
		resp, err := c.Get(url)
		if err != nil {
			done("GET %s: %v", url, err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done("GET %s -> %s", url, strings.TrimSpace(string(b)))
	}
}

// table prints the service's live tasks as the orchestrator sees them.
func (cp *controlPlane) table(ctx context.Context) {
	ts, err := cp.live(ctx)
	if err != nil {
		return
	}
	w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  SLOT\tTASK\tNODE\tSTATE\tHEALTH\tADDRESS\tRESTARTS\tIMAGE")
	for _, t := range ts {
		fmt.Fprintf(w, "  %d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", t.Slot, t.ID, t.NodeID, t.Status.State,
			orDash(string(t.Status.Health)), orDash(strings.Join(t.Status.Addresses, ",")), t.Status.Restarts, t.Spec.Image)
	}
	w.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func step(s string) { fmt.Printf("\n==> %s\n", s) }

func done(format string, args ...any) { fmt.Printf("    %s\n", fmt.Sprintf(format, args...)) }

func since(t time.Time) string { return time.Since(t).Round(time.Millisecond).String() }
