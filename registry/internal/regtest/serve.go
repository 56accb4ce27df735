package regtest

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opendao/dao/registry/registrytest"
)

// MemRegistry is an in-memory registrytest.Registry served over HTTP for one test, for the
// tests that need an OCI registry but none of Distribution's own behaviour.
type MemRegistry struct {
	*registrytest.Registry
	// Addr is the server's host:port, the registry part of references to it.
	Addr string
}

// StartMemRegistry serves a registrytest.Registry made with opts until the test ends.
func StartMemRegistry(t testing.TB, opts ...registrytest.Option) *MemRegistry {
	t.Helper()
	reg, err := registrytest.New(opts...)
	if err != nil {
		t.Fatalf("registrytest.New: %v", err)
	}
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	return &MemRegistry{Registry: reg, Addr: srv.Listener.Addr().String()}
}

// Ref returns the reference of repo (with its tag or digest) on the registry.
func (r *MemRegistry) Ref(repo string) string { return r.Addr + "/" + repo }

// FaultProxy is a registrytest.FaultProxy served over HTTP for one test.
type FaultProxy struct {
	*registrytest.FaultProxy
	// Addr is the proxy's host:port, the registry part of references through it.
	Addr string
}

// StartFaultProxy serves a registrytest.FaultProxy in front of the registry at upstream
// (host:port, a Distribution registry of testutil.StartRegistry, say) until the test ends.
func StartFaultProxy(t testing.TB, upstream string) *FaultProxy {
	t.Helper()
	p, err := registrytest.NewFaultProxyURL(upstream)
	if err != nil {
		t.Fatalf("NewFaultProxyURL: %v", err)
	}
	return ServeFaultProxy(t, p)
}

// ServeFaultProxy serves p until the test ends, and closes it first, so that its stalls end
// before the server waits for them.
func ServeFaultProxy(t testing.TB, p *registrytest.FaultProxy) *FaultProxy {
	t.Helper()
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	t.Cleanup(p.Close) // cleanups run last first: the proxy closes before the server
	return &FaultProxy{FaultProxy: p, Addr: srv.Listener.Addr().String()}
}

// Ref returns the reference of repo (with its tag or digest) through the proxy.
func (p *FaultProxy) Ref(repo string) string { return p.Addr + "/" + repo }

// MustAdd adds faults, and fails the test if the proxy refuses one.
func (p *FaultProxy) MustAdd(t testing.TB, faults ...registrytest.Fault) {
	t.Helper()
	if err := p.FaultProxy.Add(faults...); err != nil {
		t.Fatalf("FaultProxy.Add: %v", err)
	}
}

// Find returns the requests the proxy saw of method ("" for any) whose path contains path,
// in the order they came.
func (p *FaultProxy) Find(method, path string) []registrytest.Request {
	var out []registrytest.Request
	for _, r := range p.Requests() {
		if (method == "" || r.Method == method) && strings.Contains(r.Path, path) {
			out = append(out, r)
		}
	}
	return out
}

// Ranged returns the requests of reqs that have a Range header.
func Ranged(reqs []registrytest.Request) []registrytest.Request {
	var out []registrytest.Request
	for _, r := range reqs {
		if r.Range != "" {
			out = append(out, r)
		}
	}
	return out
}
