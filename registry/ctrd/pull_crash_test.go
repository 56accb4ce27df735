package ctrd_test

import (
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/ctrd"
	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/registrytest"
	"github.com/opendao/dao/registry/remote"
)

// TestPullContainerdCrash kills containerd with SIGKILL in the middle of a pull and starts
// it again: the pull fails with an error that says containerd went away (or, if it got
// through, leaves a whole image), no image record points at missing content, and the next
// pull completes the image and unpacks it, leaving no extraction snapshot or lease behind:
// the failed pull's clean-up waits for containerd to come back.
func TestPullContainerdCrash(t *testing.T) {
	forEachContentPath(t, testPullContainerdCrash)
}

func testPullContainerdCrash(t *testing.T, contentPath ctrd.Option) {
	e := newPullEnv(t)
	img, big, proxy, ref := e.slowLastLayer(t, "crash:1")

	// containerd stays down for a second, a longer outage than a restart.
	crashed := make(chan error, 1)
	var once atomic.Bool
	c := newClient(t, []string{proxy.Addr}, remote.WithProgress(func(p remote.Progress) {
		if p.Descriptor.Digest == big.Digest && p.Done >= big.Size/3 && !once.Swap(true) {
			go func() {
				e.Ctrd.Containerd.Kill()
				time.Sleep(time.Second)
				crashed <- e.Ctrd.Containerd.Start()
			}()
		}
	}))
	_, err := ctrd.Pull(e.Ctx, e.Ctrd.Client, c, ref, ctrd.WithConcurrency(1), contentPath)
	if !once.Load() {
		t.Fatal("the pull ended before containerd was crashed")
	}
	if err := <-crashed; err != nil {
		t.Fatalf("start containerd again: %v", err)
	}
	t.Logf("Pull during the crash: %v", err)
	if err != nil && !strings.Contains(err.Error(), "registry:") {
		t.Errorf("Pull: %v, want an error that says which step of the pull failed", err)
	}
	if err == nil || e.hasImage(t, ref) {
		// Whatever record there is must be whole.
		checkImageWhole(t, e, ref)
	}

	rec, err := ctrd.Pull(e.Ctx, e.Ctrd.Client, c, ref, contentPath)
	if err != nil {
		t.Fatalf("Pull after containerd came back: %v", err)
	}
	if rec.Target.Digest != img.Descriptor().Digest {
		t.Errorf("record target %s, want %s", rec.Target.Digest, img.Descriptor().Digest)
	}
	checkImageWhole(t, e, ref)
	if ok, err := client.NewImage(e.Ctrd.Client, rec).IsUnpacked(e.Ctx, "overlayfs"); !ok || err != nil {
		t.Errorf("IsUnpacked = %v, %v; want true", ok, err)
	}
	if keys := e.activeSnapshots(t); len(keys) > 0 {
		t.Errorf("active snapshots left: %q", keys)
	}
	checkNoLeases(t, e)
}

// checkImageWhole fails t unless containerd's image record name exists and every blob it
// refers to is in the content store with the digest it is named by.
func checkImageWhole(t *testing.T, e *pullEnv, name string) {
	t.Helper()
	rec, err := e.Ctrd.Client.ImageService().Get(e.Ctx, name)
	if err != nil {
		t.Fatalf("image record %s: %v", name, err)
	}
	cs := e.Ctrd.Client.ContentStore()
	_, _, _, missing, err := images.Check(e.Ctx, cs, rec.Target, platforms.Default())
	if err != nil {
		t.Fatalf("check image %s: %v", name, err)
	}
	if len(missing) > 0 {
		t.Errorf("image record %s points at missing content: %v", name, missing)
	}
	_, err = images.Config(e.Ctx, cs, rec.Target, platforms.Default())
	if err != nil {
		t.Errorf("config of %s: %v", name, err)
	}
	manifest, err := images.Manifest(e.Ctx, cs, rec.Target, platforms.Default())
	if err != nil {
		t.Fatalf("manifest of %s: %v", name, err)
	}
	for _, l := range manifest.Layers {
		ra, err := cs.ReaderAt(e.Ctx, l)
		if err != nil {
			t.Errorf("layer %s: %v", l.Digest, err)
			continue
		}
		d := digest.Canonical.Digester()
		if _, err := io.Copy(d.Hash(), content.NewReader(ra)); err != nil || d.Digest() != l.Digest {
			t.Errorf("layer %s reads back as %s (%v)", l.Digest, d.Digest(), err)
		}
		ra.Close()
	}
}

// slowLastLayer pushes an image of two small layers and a big one as name, and returns it,
// the big layer, and a proxy in front of the registry that serves the big layer slowly
// enough for a test to act while it is being fetched, with the reference through it.
func (e *pullEnv) slowLastLayer(t *testing.T, name string) (*oci.Image, ocispec.Descriptor, *faultProxy, string) {
	t.Helper()
	img := randomLayersImage(t, build.Gzip, 512<<10, 512<<10, 12<<20)
	big := img.Layers()[2].Descriptor()
	e.Push(t, e.Reg.Ref(name), img)
	proxy := startFaultProxy(t, e.Reg.Addr)
	proxy.MustAdd(t, fault{Kind: registrytest.Delay, Method: "GET", Path: big.Digest.String(), Times: registrytest.Forever})
	return img, big, proxy, proxy.Ref(name)
}
