package testutil

import (
	"context"
	"testing"
	"time"

	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/remote"
)

// PullEnv is a registry, a containerd, and a registry client between them, for the tests of
// pulls (registry/ctrd's, the dao command's). Everything stops when the test ends.
type PullEnv struct {
	Reg  *Registry
	Ctrd *Containerd
	// Client reaches Reg over plain HTTP, with the options NewPullEnv was given after that.
	Client *remote.Client
	// Ctx carries the containerd namespace and ends with the test, or after two minutes.
	Ctx context.Context
}

// NewPullEnv starts a registry and a containerd for t, and a client of the registry with
// opts.
func NewPullEnv(t *testing.T, opts ...remote.Option) *PullEnv {
	t.Helper()
	reg := StartRegistry(t)
	ctrd := StartContainerd(t)
	c, err := remote.NewClient(append([]remote.Option{remote.WithHosts(map[string]remote.HostConfig{reg.Addr: {PlainHTTP: true}})}, opts...)...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return &PullEnv{Reg: reg, Ctrd: ctrd, Client: c, Ctx: ctrd.Context(ctx)}
}

// Push pushes a to ref with the env's client.
func (e *PullEnv) Push(t testing.TB, ref string, a oci.Artifact) {
	t.Helper()
	if _, err := e.Client.Push(e.Ctx, ref, a); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}
