package testutil

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/opendao/dao/internal/daemon"
)

// Namespace is the containerd namespace tests use unless they choose their own: one per
// test process (daemon.TestNamespacePrefix and the process ID). runc keeps its state in
// /run/containerd/runc/NAMESPACE, which every containerd on the host shares, so two test
// binaries running at once (go test -p 2) with containers of the same ID in one namespace
// would act on each other's containers; daemon.ReapStale removes the directories of
// processes that have ended.
var Namespace = daemon.TestNamespacePrefix + strconv.Itoa(os.Getpid())

// Containerd is a private containerd daemon for one test, with its own root, state, socket
// and config under a temporary directory. StartContainerd starts it; when the test ends its
// containers are killed, it is stopped and its directory removed, and its log is printed if
// the test failed.
type Containerd struct {
	*daemon.Containerd
	// Client is connected to the daemon, with Namespace as its default namespace; it
	// reconnects by itself after Restart.
	Client *client.Client

	t testing.TB
}

// StartContainerd starts a private containerd for t and waits until it answers.
func StartContainerd(t testing.TB) *Containerd {
	t.Helper()
	RequireIntegration(t, "containerd", "runc", "containerd-shim-runc-v2")
	d, err := daemon.StartContainerd()
	if err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	c := &Containerd{Containerd: d, t: t}
	t.Cleanup(c.cleanup)
	cl, err := client.New(d.Address, client.WithDefaultNamespace(Namespace))
	if err != nil {
		t.Fatalf("connect to containerd: %v\n%s", err, d.Log())
	}
	c.Client = cl
	return c
}

// Context returns ctx with the test namespace.
func (c *Containerd) Context(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, Namespace)
}

// Restart stops the daemon and starts it again on the same directories. Running containers
// survive it; c.Client reconnects.
func (c *Containerd) Restart() {
	c.t.Helper()
	if err := c.Containerd.Restart(); err != nil {
		c.t.Fatalf("restart containerd: %v\n%s", err, c.Log())
	}
}

// Start starts the daemon again after Kill or Stop, on the same directories.
func (c *Containerd) Start() {
	c.t.Helper()
	if err := c.Containerd.Start(); err != nil {
		c.t.Fatalf("start containerd again: %v\n%s", err, c.Log())
	}
}

func (c *Containerd) cleanup() {
	if c.t.Failed() {
		log := c.Log()
		const keep = 6 << 10
		if len(log) > keep {
			log = "...\n" + log[len(log)-keep:]
		}
		c.t.Logf("containerd log (%s):\n%s", c.LogPath, log)
	}
	if c.Client != nil {
		if c.Running() {
			daemon.KillAll(c.Client)
		}
		c.Client.Close()
	}
	if err := c.Close(); err != nil {
		c.t.Logf("remove %s: %v", c.Dir, err)
	}
}
