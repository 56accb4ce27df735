package remote_test

import (
	"context"
	"crypto/rand"
	"io"
	"testing"

	"github.com/opendao/dao/registry/internal/regtest"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/registrytest"
	"github.com/opendao/dao/registry/remote"
)

// plainHTTP returns WithHosts that reaches each host over plain HTTP.
func plainHTTP(hosts ...string) remote.Option { return regtest.PlainHTTP(hosts...) }

// newClient returns a client for tests: plain HTTP to hosts, quick retries.
func newClient(t testing.TB, hosts []string, opts ...remote.Option) *remote.Client {
	t.Helper()
	return regtest.NewClient(t, hosts, opts...)
}

// randomImage builds an image of one layer of n random bytes (in a file), for platform
// linux/arch.
func randomImage(t testing.TB, n int, arch string) *oci.Image {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	b, err := build.NewLayerBuilder(build.WithCompression(build.Uncompressed))
	if err != nil {
		t.Fatal(err)
	}
	b.AddFile("data", 0o644, data)
	layer, err := b.Build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { layer.Close() })
	img, err := oci.NewImage([]*oci.Layer{layer}, ocispec.ImageConfig{Cmd: []string{"/data"}},
		oci.WithPlatform(ocispec.Platform{OS: "linux", Architecture: arch}))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// layerBytes returns the content of img's only layer.
func layerBytes(t testing.TB, img *oci.Image) []byte {
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
type progressLog = regtest.ProgressLog

// startRegistry starts a plain docker-registry for t.
func startRegistry(t testing.TB) *testutil.Registry { return testutil.StartRegistry(t) }

// testDigest is a well-formed digest of no blob in particular.
const testDigest = "sha256:4b8bbf7e3cf5c9c3b0a2b4cd0ad5ad7fdb34a5a4e42c6b5a4c6b4a9ad1f1a1c2"

// The fault proxy of the tests: registrytest's, served for one test.
type (
	fault      = registrytest.Fault
	faultProxy = regtest.FaultProxy
)

// startMemRegistry serves an in-memory registry and a fault proxy in front of it, for the
// tests of the client's handling of faults, which need an OCI registry but none of
// Distribution's own behaviour (the *_integration_test.go files test against Distribution,
// and ctrd's fault tests put the proxy in front of it).
func startMemRegistry(t testing.TB) (*regtest.MemRegistry, *faultProxy) {
	t.Helper()
	reg := regtest.StartMemRegistry(t)
	return reg, regtest.ServeFaultProxy(t, registrytest.NewFaultProxy(reg))
}
