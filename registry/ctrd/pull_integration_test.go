package ctrd_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao"
	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/ctrd"
	"github.com/opendao/dao/registry/internal/regtest"
	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/remote"
)

// layeredImage builds a busybox image of three layers, compressed with gzip, zstd and not
// at all, where the upper layers replace a file, delete one (a whiteout) and empty a
// directory (an opaque whiteout).
func layeredImage(t *testing.T) *oci.Image {
	t.Helper()
	if _, err := os.Stat("/usr/bin/busybox"); err != nil {
		testutil.RequireIntegration(t, "busybox-needs-/usr/bin/busybox")
	}
	a := newBuilder(t, build.WithCompression(build.Gzip))
	mustAdd(t, a.AddHostFile("/bin/busybox", "/usr/bin/busybox"))
	for _, applet := range []string{"sh", "cat", "ls", "echo"} {
		mustAdd(t, a.AddSymlink("/bin/"+applet, "busybox"))
	}
	mustAdd(t, a.AddFile("/etc/greeting", 0o644, []byte("from a\n")))
	mustAdd(t, a.AddFile("/data/keep", 0o644, []byte("kept\n")))
	mustAdd(t, a.AddFile("/data/gone", 0o644, []byte("deleted above\n")))
	mustAdd(t, a.AddFile("/opq/old", 0o644, []byte("hidden above\n")))
	b := newBuilder(t, build.WithCompression(build.Zstd))
	mustAdd(t, b.AddFile("/etc/greeting", 0o644, []byte("from b\n")))
	mustAdd(t, b.AddWhiteout("/data/gone"))
	mustAdd(t, b.AddOpaqueWhiteout("/opq"))
	mustAdd(t, b.AddFile("/opq/new", 0o644, []byte("new\n")))
	c := newBuilder(t, build.WithCompression(build.Uncompressed))
	mustAdd(t, c.AddFile("/etc/c", 0o600, []byte("from c\n")))
	img, err := oci.NewImage([]*oci.Layer{mustBuild(t, a), mustBuild(t, b), mustBuild(t, c)}, ocispec.ImageConfig{
		Cmd: []string{"/bin/sh"},
		Env: []string{"PATH=/bin"},
	})
	if err != nil {
		t.Fatalf("NewImage: %v", err)
	}
	return img
}

// pullEnv is a registry, a containerd and a client between them.
type pullEnv struct{ *testutil.PullEnv }

// newPullEnv is testutil.NewPullEnv with the quick retries of the package's other clients.
func newPullEnv(t *testing.T, opts ...remote.Option) *pullEnv {
	t.Helper()
	return &pullEnv{testutil.NewPullEnv(t, append([]remote.Option{regtest.QuickRetry()}, opts...)...)}
}

// TestPullRunsWithEdge pulls a three-layer image into containerd and runs it through
// edge.Runtime: the layers stack as they should, whiteouts included.
func TestPullRunsWithEdge(t *testing.T) {
	e := newPullEnv(t)
	img := layeredImage(t)
	ref := e.Reg.Ref("layered:1")
	e.Push(t, ref, img)

	var prog progressLog
	c := newClient(t, []string{e.Reg.Addr}, remote.WithProgress(prog.Add))
	rec, err := ctrd.Pull(e.Ctx, e.Ctrd.Client, c, ref)
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if rec.Name != ref || rec.Target.Digest != img.Descriptor().Digest {
		t.Errorf("record %s -> %s, want %s -> %s", rec.Name, rec.Target.Digest, ref, img.Descriptor().Digest)
	}
	ci := client.NewImage(e.Ctrd.Client, rec)
	if ok, err := ci.IsUnpacked(e.Ctx, "overlayfs"); err != nil || !ok {
		t.Fatalf("IsUnpacked = %v, %v; want true", ok, err)
	}
	complete := 0
	for _, p := range prog.Reports() {
		if p.Complete {
			complete++
		}
	}
	if complete != len(img.Layers())+1 { // and the config
		t.Errorf("%d blobs reported complete, want %d", complete, len(img.Layers())+1)
	}
	checkNoLeases(t, e)

	rt, err := edge.NewFromClient(e.Ctrd.Client, edge.WithNamespace(testutil.Namespace), edge.WithLogDir(filepath.Join(e.Ctrd.Dir, "logs")))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if _, err := rt.Run(e.Ctx, "pulled", dao.ContainerSpec{
		Image:   ref,
		Command: []string{"sh", "-c", "cat /etc/greeting /etc/c; ls /data /opq"},
	}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	st, err := rt.Wait(e.Ctx, "pulled")
	if err != nil || st.ExitCode != 0 {
		t.Fatalf("Wait: %+v, %v", st, err)
	}
	lr, err := rt.Logs(e.Ctx, "pulled", edge.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer lr.Close()
	out, _ := io.ReadAll(lr)
	want := "from b\nfrom c\n/data:\nkeep\n\n/opq:\nnew\n"
	if string(out) != want {
		t.Errorf("container printed %q, want %q", out, want)
	}
}

// checkNoLeases fails t if a lease is left.
func checkNoLeases(t *testing.T, e *pullEnv) {
	t.Helper()
	ls, err := e.Ctrd.Client.LeasesService().List(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 0 {
		t.Errorf("leases left: %+v", ls)
	}
}

// TestPullReusesContent pulls an image twice, the second time under another name, and
// without unpacking into a second namespace first: what containerd has is not fetched again.
func TestPullReusesContent(t *testing.T) {
	e := newPullEnv(t)
	img := randomLayersImage(t, build.Gzip, 1<<20, 1<<20)
	e.Push(t, e.Reg.Ref("reuse:1"), img)
	proxy := startFaultProxy(t, e.Reg.Addr)
	ref := proxy.Ref("reuse:1")
	c := newClient(t, []string{proxy.Addr})

	rec, err := ctrd.Pull(e.Ctx, e.Ctrd.Client, c, ref, ctrd.WithoutUnpack())
	if err != nil {
		t.Fatalf("Pull without unpack: %v", err)
	}
	if ok, _ := client.NewImage(e.Ctrd.Client, rec).IsUnpacked(e.Ctx, "overlayfs"); ok {
		t.Errorf("image unpacked by a pull without unpack")
	}
	if got := proxy.Count("GET", "/v2/reuse/blobs/"); got != 3 {
		t.Errorf("first pull fetched %d blobs, want 3", got)
	}
	proxy.Reset()
	rec, err = ctrd.Pull(e.Ctx, e.Ctrd.Client, c, ref, ctrd.WithName("example.com/reuse:again"))
	if err != nil {
		t.Fatalf("second Pull: %v", err)
	}
	if rec.Name != "example.com/reuse:again" {
		t.Errorf("record name %q", rec.Name)
	}
	if got := proxy.Find("", "/blobs/"); len(got) != 0 {
		t.Errorf("second pull fetched blobs: %q", got)
	}
	if ok, err := client.NewImage(e.Ctrd.Client, rec).IsUnpacked(e.Ctx, "overlayfs"); !ok || err != nil {
		t.Errorf("IsUnpacked after the second pull = %v, %v", ok, err)
	}
	checkNoLeases(t, e)
}

// TestPullIndex pulls an index of two platforms: the record names the index, and only the
// requested platform's image is fetched and unpacked.
func TestPullIndex(t *testing.T) {
	e := newPullEnv(t)
	amd := randomLayersImage(t, build.Gzip, 300<<10)
	armLayer := randomLayersImage(t, build.Gzip, 300<<10).Layers()[0]
	arm, err := oci.NewImage([]*oci.Layer{armLayer}, ocispec.ImageConfig{Cmd: []string{"/x"}},
		oci.WithPlatform(ocispec.Platform{OS: "linux", Architecture: "arm64"}))
	if err != nil {
		t.Fatal(err)
	}
	amd2, err := oci.NewImage(amd.Layers(), ocispec.ImageConfig{Cmd: []string{"/x"}},
		oci.WithPlatform(ocispec.Platform{OS: "linux", Architecture: "amd64"}))
	if err != nil {
		t.Fatal(err)
	}
	ix, err := oci.NewIndex([]*oci.Image{amd2, arm})
	if err != nil {
		t.Fatal(err)
	}
	ref := e.Reg.Ref("multi:1")
	e.Push(t, ref, ix)
	rec, err := ctrd.Pull(e.Ctx, e.Ctrd.Client, e.Client, ref, ctrd.WithPlatform(ocispec.Platform{OS: "linux", Architecture: "arm64"}))
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if rec.Target.Digest != ix.Descriptor().Digest || !images.IsIndexType(rec.Target.MediaType) {
		t.Errorf("record target %+v, want the index %s", rec.Target, ix.Descriptor().Digest)
	}
	if !e.hasBlob(t, armLayer.Descriptor().Digest) || e.hasBlob(t, amd.Layers()[0].Descriptor().Digest) {
		t.Errorf("content store: arm64 layer %v, amd64 layer %v; want only the arm64 one",
			e.hasBlob(t, armLayer.Descriptor().Digest), e.hasBlob(t, amd.Layers()[0].Descriptor().Digest))
	}
	sn := e.Ctrd.Client.SnapshotService("overlayfs")
	if _, err := sn.Stat(e.Ctx, armLayer.DiffID().String()); err != nil {
		t.Errorf("snapshot of the arm64 layer: %v", err)
	}

	_, err = ctrd.Pull(e.Ctx, e.Ctrd.Client, e.Client, ref, ctrd.WithPlatform(ocispec.Platform{OS: "windows", Architecture: "amd64"}))
	if !errors.Is(err, oci.ErrNoPlatform) {
		t.Errorf("Pull of a platform the index lacks = %v, want ErrNoPlatform", err)
	}
}

// TestPullConcurrent pulls one image twice at once into one containerd: both succeed, and
// the layers are fetched once.
func TestPullConcurrent(t *testing.T) {
	e := newPullEnv(t)
	img := randomLayersImage(t, build.Gzip, 4<<20, 4<<20, 4<<20)
	e.Push(t, e.Reg.Ref("twice:1"), img)
	proxy := startFaultProxy(t, e.Reg.Addr)
	ref := proxy.Ref("twice:1")
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := ctrd.Pull(e.Ctx, e.Ctrd.Client, newClient(t, []string{proxy.Addr}), ref)
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("Pull: %v", err)
		}
	}
	for _, l := range img.Layers() {
		if got := proxy.Find("GET", "/v2/twice/blobs/"+l.Descriptor().Digest.String()); len(got) != 1 {
			t.Errorf("layer fetched %d times, want once: %q", len(got), got)
		}
	}
	if keys := e.activeSnapshots(t); len(keys) > 0 {
		t.Errorf("active snapshots left: %q", keys)
	}
	checkNoLeases(t, e)
}
