// Command quickstart shows Dao on one machine: it builds a web app image from Go source with
// Dao's image builder, runs three replicas of it on containerd through an edge agent, kills
// one and times its return, rolls the replicas over to a second version one by one, gated
// on health checks, and removes everything it created.
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
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao"
	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/internal/daemon"
	"github.com/opendao/dao/registry"
)

const (
	namespace = "dao-quickstart"
	bridge    = "daoqs0"
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
		if _, err := registry.Import(ctx, c, imageName(v), img, registry.WithUnpack("overlayfs")); err != nil {
			return err
		}
		done("%s  %s", imageName(v), img.Descriptor().Digest.Encoded()[:12])
	}
	defer removeImages(c)
	done("built and imported in %s", since(t))

	// 3. the node: a runtime and an agent
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
	agent, err := edge.NewAgent(rt, edge.WithStateDir(filepath.Join(work, "agent")))
	if err != nil {
		return err
	}
	actx, cancelAgent := context.WithCancel(ctx)
	agentDone := make(chan error, 1)
	go func() { agentDone <- agent.Run(actx) }()
	defer func() {
		cancelAgent()
		<-agentDone
	}()
	n := &node{agent: agent, rt: rt}

	step("deploying 3 replicas of v1")
	t = time.Now()
	slots := []string{"web-1", "web-2", "web-3"}
	tasks := map[string]dao.Task{}
	for _, s := range slots {
		tasks[s] = webTask(s, "v1")
	}
	if err := n.assign(tasks); err != nil {
		return err
	}
	if err := n.waitHealthy(ctx, ids(tasks), 60*time.Second); err != nil {
		return err
	}
	done("3 replicas running and healthy in %s", since(t))
	n.table()
	n.greet(ctx)

	// 4. a crash
	victim := tasks["web-2"].ID
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
	if err := n.waitHealthy(ctx, ids(tasks), 30*time.Second); err != nil {
		return err
	}
	n.table()

	// 5. a rolling update, one slot at a time, each gated on the new replica's health
	step("rolling update to v2, one replica at a time, each gated on the new one's health")
	t = time.Now()
	for _, s := range slots {
		tasks[s] = webTask(s, "v2")
		if err := n.assign(tasks); err != nil {
			return err
		}
		if err := n.waitHealthy(ctx, []string{tasks[s].ID}, 60*time.Second); err != nil {
			return fmt.Errorf("update of %s: %w", s, err)
		}
		done("%s now runs v2 and is healthy", s)
	}
	if err := n.waitGone(ctx, []string{"web-1-v1", "web-2-v1", "web-3-v1"}, 30*time.Second); err != nil {
		return err
	}
	done("rolled over in %s", since(t))
	n.table()
	n.greet(ctx)

	// 6. clean up
	step("removing everything")
	if err := n.assign(nil); err != nil {
		return err
	}
	if err := n.waitGone(ctx, ids(tasks), 30*time.Second); err != nil {
		return err
	}
	done("all containers removed")
	fmt.Printf("\nquickstart finished in %s\n", since(began))
	return nil
}

func imageName(version string) string { return "dao.example/webapp:" + version }

func webTask(slot, version string) dao.Task {
	return dao.Task{
		ID:        slot + "-" + version,
		ServiceID: "web",
		Spec: dao.ContainerSpec{
			Image:     imageName(version),
			Resources: dao.Resources{MilliCPU: 250, Memory: 32 * dao.MiB, Pids: 64},
			HealthCheck: &dao.HealthCheck{
				Command:  []string{"/webapp", "-check", "http://127.0.0.1:8080/healthz"},
				Interval: dao.Duration(250 * time.Millisecond),
				Timeout:  dao.Duration(2 * time.Second),
			},
			StopGracePeriod: dao.Duration(2 * time.Second),
		},
		Restart:      dao.RestartPolicy{ResetAfter: dao.Duration(2 * time.Second)},
		DesiredState: dao.TaskRunning,
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
func webappImage(ctx context.Context, bin, version string) (*registry.Image, error) {
	lb, err := registry.NewLayerBuilder()
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
	return registry.NewImage([]*registry.Layer{layer}, ocispec.ImageConfig{
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

// node wraps the agent with the quickstart's bookkeeping.
type node struct {
	agent    *edge.Agent
	rt       *edge.Runtime
	revision uint64
}

func (n *node) assign(tasks map[string]dao.Task) error {
	n.revision++
	var list []dao.Task
	for _, t := range tasks {
		list = append(list, t)
	}
	return n.agent.Assign(edge.Assignment{Revision: n.revision, Tasks: list})
}

func (n *node) waitHealthy(ctx context.Context, ids []string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		healthy := 0
		var bad []string
		for _, t := range n.agent.Tasks() {
			for _, id := range ids {
				if t.ID != id {
					continue
				}
				switch {
				case t.Status.State == dao.TaskRunning && t.Status.Health == dao.HealthHealthy:
					healthy++
				case t.Status.State.Terminal():
					bad = append(bad, fmt.Sprintf("%s %s: %s", id, t.Status.State, t.Status.Err))
				}
			}
		}
		if len(bad) > 0 {
			return errors.New(strings.Join(bad, "; "))
		}
		if healthy == len(ids) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d replicas healthy after %s", healthy, len(ids), within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (n *node) waitGone(ctx context.Context, ids []string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		left := 0
		for _, id := range ids {
			if _, err := n.rt.Status(ctx, id); !errors.Is(err, edge.ErrNotFound) {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d containers still there after %s", left, within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// greet asks every replica over the network, from this program, what it is.
func (n *node) greet(ctx context.Context) {
	c := http.Client{Timeout: 3 * time.Second}
	for _, t := range n.agent.Tasks() {
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

// table prints the tasks as the node sees them, and what containerd says of each.
func (n *node) table() {
	w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  TASK\tSTATE\tHEALTH\tADDRESS\tPID\tRESTARTS\tIMAGE\tUP")
	for _, t := range n.agent.Tasks() {
		up := ""
		if !t.Status.StartedAt.IsZero() && t.Status.State == dao.TaskRunning {
			up = time.Since(t.Status.StartedAt).Round(100 * time.Millisecond).String()
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", t.ID, t.Status.State, orDash(string(t.Status.Health)),
			orDash(strings.Join(t.Status.Addresses, ",")), t.Status.PID, t.Status.Restarts, t.Spec.Image, up)
	}
	w.Flush()
}

func ids(tasks map[string]dao.Task) []string {
	var out []string
	for _, t := range tasks {
		out = append(out, t.ID)
	}
	return out
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
