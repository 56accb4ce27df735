package registry_test

import (
	"context"
	"crypto/rand"
	"io"
	"sync"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/registry"
)

// plainHTTP returns WithHosts that reaches each host over plain HTTP.
func plainHTTP(hosts ...string) registry.Option {
	m := make(map[string]registry.HostConfig)
	for _, h := range hosts {
		m[h] = registry.HostConfig{PlainHTTP: true}
	}
	return registry.WithHosts(m)
}

// newClient returns a client for tests: plain HTTP to hosts, quick retries.
func newClient(t testing.TB, hosts []string, opts ...registry.Option) *registry.Client {
	t.Helper()
	all := append([]registry.Option{
		plainHTTP(hosts...),
		registry.WithRetry(registry.RetryPolicy{MaxAttempts: 5, MinDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond, MaxRetryAfter: time.Minute}),
	}, opts...)
	c, err := registry.NewClient(all...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// randomImage builds an image of one layer of n random bytes (in a file), for platform
// linux/arch.
func randomImage(t testing.TB, n int, arch string) *registry.Image {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	b, err := registry.NewLayerBuilder(registry.WithCompression(registry.Uncompressed))
	if err != nil {
		t.Fatal(err)
	}
	b.AddFile("data", 0o644, data)
	layer, err := b.Build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { layer.Close() })
	img, err := registry.NewImage([]*registry.Layer{layer}, ocispec.ImageConfig{Cmd: []string{"/data"}},
		registry.WithPlatform(ocispec.Platform{OS: "linux", Architecture: arch}))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// layerBytes returns the content of img's only layer.
func layerBytes(t testing.TB, img *registry.Image) []byte {
	t.Helper()
	rc, err := img.Layers()[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// progressLog collects progress reports.
type progressLog struct {
	mu  sync.Mutex
	all []registry.Progress
}

func (p *progressLog) add(pr registry.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.all = append(p.all, pr)
}

func (p *progressLog) reports() []registry.Progress {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]registry.Progress(nil), p.all...)
}

// startRegistry starts a plain docker-registry for t.
func startRegistry(t testing.TB) *testutil.Registry { return testutil.StartRegistry(t) }
