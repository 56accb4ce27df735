package ctrd_test

import (
	"testing"
	"time"

	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/internal/regtest"
	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/registrytest"
	"github.com/opendao/dao/registry/remote"
)

// The helpers the tests of this package share with those of build and remote.

func newClient(t testing.TB, hosts []string, opts ...remote.Option) *remote.Client {
	t.Helper()
	return regtest.NewClient(t, hosts, opts...)
}

func newBuilder(t *testing.T, opts ...build.Option) *build.LayerBuilder {
	t.Helper()
	return regtest.Builder(t, opts...)
}

func mustBuild(t *testing.T, b *build.LayerBuilder) *oci.Layer {
	t.Helper()
	return regtest.Build(t, b)
}

func mustAdd(t *testing.T, err error) {
	t.Helper()
	regtest.Must(t, err)
}

type progressLog = regtest.ProgressLog

func startRegistry(t testing.TB) *testutil.Registry { return testutil.StartRegistry(t) }

// watchdog is the speed limit of the tests: a body that brings less than 64 KiB/s over
// 200ms, or nothing, is cut.
var watchdog = remote.WithSpeedLimit(remote.SpeedLimit{BytesPerSecond: 64 << 10, Period: 200 * time.Millisecond})

// The fault proxy of the tests: registrytest's, served for one test in front of the
// Distribution registry of the pull environment.
type (
	fault      = registrytest.Fault
	faultProxy = regtest.FaultProxy
)

func startFaultProxy(t testing.TB, registryAddr string) *faultProxy {
	t.Helper()
	return regtest.StartFaultProxy(t, registryAddr)
}
