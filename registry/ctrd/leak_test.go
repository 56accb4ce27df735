package ctrd_test

import (
	"fmt"
	"testing"

	"go.uber.org/goleak"

	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/ctrd"
	"github.com/opendao/dao/registry/internal/regtest"
	"github.com/opendao/dao/registry/oci"
)

// TestPullLeavesNothingRunning pulls images of fresh content, each with a client of its
// own that is closed afterwards, unpacking them or not, and checks that no goroutine of the
// pull engine (fetches, taps, decoders, extractors, clean-ups) or of the clients is left.
// It does not run in parallel, so that other tests' goroutines do not count.
func TestPullLeavesNothingRunning(t *testing.T) {
	e := newPullEnv(t)
	const rounds = 8
	imgs := make([]*oci.Image, rounds)
	for i := range imgs {
		imgs[i] = randomLayersImage(t, build.Gzip, 256<<10, 64<<10)
		e.Push(t, e.Reg.Ref(fmt.Sprintf("leak%d:1", i)), imgs[i])
	}
	// The containerd client's connection, and what it starts, are there before.
	if _, err := ctrd.Pull(e.Ctx, e.Ctrd.Client, e.Client, e.Reg.Ref("leak0:1")); err != nil {
		t.Fatal(err)
	}

	ignore := goleak.IgnoreCurrent()
	for i := 1; i < rounds; i++ {
		rc := regtest.NewClient(t, []string{e.Reg.Addr})
		opts := []ctrd.Option{ctrd.WithConcurrency(2)}
		if i%2 == 0 {
			opts = append(opts, ctrd.WithoutUnpack())
		}
		if _, err := ctrd.Pull(e.Ctx, e.Ctrd.Client, rc, e.Reg.Ref(fmt.Sprintf("leak%d:1", i)), opts...); err != nil {
			t.Fatalf("round %d: Pull: %v", i, err)
		}
		if _, err := ctrd.Pull(e.Ctx, e.Ctrd.Client, rc, e.Reg.Ref("missing:1")); err == nil {
			t.Fatalf("round %d: Pull of a missing image succeeded", i)
		}
		rc.Close()
	}
	goleak.VerifyNone(t, ignore)
}
