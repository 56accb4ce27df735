package ctrd_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/pkg/cio"
	ctroci "github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/google/go-cmp/cmp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/ctrd"
	"github.com/opendao/dao/registry/oci"
)

// busyboxImage builds an image of the host's static busybox at /bin/busybox, with applet
// links, compressed with c.
func busyboxImage(t *testing.T, c build.Compression, opts ...oci.ImageOption) *oci.Image {
	t.Helper()
	if _, err := os.Stat("/usr/bin/busybox"); err != nil {
		t.Skip("needs /usr/bin/busybox (Debian package busybox-static)")
	}
	b := newBuilder(t, build.WithCompression(c))
	mustAdd(t, b.AddHostFile("/bin/busybox", "/usr/bin/busybox"))
	for _, applet := range []string{"sh", "echo", "cat", "ls"} {
		mustAdd(t, b.AddSymlink("/bin/"+applet, "busybox"))
	}
	mustAdd(t, b.AddFile("/etc/greeting", 0o644, []byte("hi from "+c.String()+"\n")))
	mustAdd(t, b.AddDir("/tmp", 0o777|os.ModeSticky))
	img, err := oci.NewImage([]*oci.Layer{mustBuild(t, b)}, ocispec.ImageConfig{
		Cmd: []string{"/bin/sh"},
		Env: []string{"PATH=/bin"},
	}, opts...)
	if err != nil {
		t.Fatalf("NewImage: %v", err)
	}
	return img
}

// run runs args in a container of image and returns what it printed on stdout.
func run(t *testing.T, ctx context.Context, d *testutil.Containerd, image string, args ...string) string {
	t.Helper()
	c := d.Client
	img, err := c.GetImage(ctx, image)
	if err != nil {
		t.Fatalf("GetImage(%s): %v", image, err)
	}
	id := fmt.Sprintf("registry-%d", time.Now().UnixNano())
	container, err := c.NewContainer(ctx, id,
		client.WithNewSnapshot(id, img),
		client.WithNewSpec(ctroci.WithImageConfig(img), ctroci.WithProcessArgs(args...)))
	if err != nil {
		t.Fatalf("NewContainer: %v", err)
	}
	defer container.Delete(context.WithoutCancel(ctx), client.WithSnapshotCleanup)
	// One buffer per stream: cio copies each on its own goroutine, with bytes.Buffer.ReadFrom.
	var stdout, stderr bytes.Buffer
	fifos := filepath.Join(d.Dir, "fifo")
	task, err := container.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, &stdout, &stderr), cio.WithFIFODir(fifos)))
	if err != nil {
		t.Fatalf("NewTask: %v", err)
	}
	defer task.Delete(context.WithoutCancel(ctx), client.WithProcessKill)
	exited, err := task.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	var code uint32
	select {
	case st := <-exited:
		code = st.ExitCode()
	case <-time.After(30 * time.Second):
		t.Fatalf("%v did not exit within 30s", args)
	}
	task.IO().Wait()
	if code != 0 {
		t.Errorf("%v exited with %d; stderr: %s", args, code, stderr.String())
	}
	return stdout.String()
}

func TestImportRunsInContainerd(t *testing.T) {
	d := testutil.StartContainerd(t)
	ctx := d.Context(context.Background())
	for _, comp := range []build.Compression{build.Gzip, build.Zstd, build.Uncompressed} {
		t.Run(comp.String(), func(t *testing.T) {
			img := busyboxImage(t, comp)
			name := "dao.test/registry/busybox:" + comp.String()
			rec, err := ctrd.Import(ctx, d.Client, name, img,
				ctrd.WithUnpack(""), ctrd.WithLabels(map[string]string{"built-by": "test"}))
			if err != nil {
				t.Fatalf("Import: %v", err)
			}
			if got, want := rec.Target.Digest, img.Descriptor().Digest; got != want {
				t.Errorf("image record target = %s, want %s", got, want)
			}
			if got, want := rec.Labels["built-by"], "test"; got != want {
				t.Errorf("image label = %q, want %q", got, want)
			}

			unpacked, err := client.NewImage(d.Client, rec).IsUnpacked(ctx, "overlayfs")
			if err != nil || !unpacked {
				t.Errorf("IsUnpacked(overlayfs) = %v, %v; want true", unpacked, err)
			}

			info, err := d.Client.ContentStore().Info(ctx, img.Descriptor().Digest)
			if err != nil {
				t.Fatalf("manifest not in the content store: %v", err)
			}
			m := img.Manifest()
			want := map[string]string{
				"containerd.io/gc.ref.content.config": m.Config.Digest.String(),
				"containerd.io/gc.ref.content.l.0":    m.Layers[0].Digest.String(),
			}
			got := maps.Clone(info.Labels)
			maps.DeleteFunc(got, func(k, _ string) bool { return !strings.HasPrefix(k, "containerd.io/gc.ref.content.") })
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("manifest GC labels (-want +got):\n%s", diff)
			}

			if got, want := run(t, ctx, d, name, "/bin/busybox", "echo", "hi"), "hi\n"; got != want {
				t.Errorf("echo printed %q, want %q", got, want)
			}
			if got, want := run(t, ctx, d, name, "cat", "/etc/greeting"), "hi from "+comp.String()+"\n"; got != want {
				t.Errorf("cat printed %q, want %q", got, want)
			}
		})
	}
}

func TestImportIndexUnpacksHostPlatform(t *testing.T) {
	d := testutil.StartContainerd(t)
	ctx := d.Context(context.Background())
	host := busyboxImage(t, build.Gzip)
	other := ocispec.Platform{OS: "linux", Architecture: "s390x"}
	if host.Platform().Architecture == "s390x" {
		other.Architecture = "riscv64"
	}
	foreign := busyboxImage(t, build.Zstd, oci.WithPlatform(other))
	ix, err := oci.NewIndex([]*oci.Image{foreign, host})
	if err != nil {
		t.Fatalf("NewIndex: %v", err)
	}
	const name = "dao.test/registry/multi:1"
	if _, err := ctrd.Import(ctx, d.Client, name, ix, ctrd.WithUnpack("overlayfs")); err != nil {
		t.Fatalf("Import: %v", err)
	}
	info, err := d.Client.ContentStore().Info(ctx, ix.Descriptor().Digest)
	if err != nil {
		t.Fatalf("index not in the content store: %v", err)
	}
	for i, img := range []*oci.Image{foreign, host} {
		if got, want := info.Labels["containerd.io/gc.ref.content.m."+strconv.Itoa(i)], img.Descriptor().Digest.String(); got != want {
			t.Errorf("index label m.%d = %q, want %q", i, got, want)
		}
	}
	if got, want := run(t, ctx, d, name, "cat", "/etc/greeting"), "hi from gzip\n"; got != want {
		t.Errorf("the container printed %q, want %q (the host platform's image)", got, want)
	}
}

func TestImportReplacesAndSurvivesGarbageCollection(t *testing.T) {
	d := testutil.StartContainerd(t)
	ctx := d.Context(context.Background())
	const name = "dao.test/registry/gc:1"
	first, second := busyboxImage(t, build.Gzip), busyboxImage(t, build.Zstd)
	for _, img := range []*oci.Image{first, second} {
		// Importing the second image under the same name updates the record.
		rec, err := ctrd.Import(ctx, d.Client, name, img)
		if err != nil {
			t.Fatalf("Import: %v", err)
		}
		if got, want := rec.Target.Digest, img.Descriptor().Digest; got != want {
			t.Errorf("image record target = %s, want %s", got, want)
		}
	}

	cs := d.Client.ContentStore()
	collect := func() {
		t.Helper()
		l, err := d.Client.LeasesService().Create(ctx, leases.WithRandomID())
		if err != nil {
			t.Fatalf("create lease: %v", err)
		}
		if err := d.Client.LeasesService().Delete(ctx, l, leases.SynchronousDelete); err != nil {
			t.Fatalf("garbage collection: %v", err)
		}
	}
	collect()
	for _, b := range second.Blobs() {
		if _, err := cs.Info(ctx, b.Descriptor().Digest); err != nil {
			t.Errorf("%s %s is gone after garbage collection: %v", b.Descriptor().MediaType, b.Descriptor().Digest, err)
		}
	}
	// The first image lost its name, so its blobs were collected: proof that the collector ran.
	if _, err := cs.Info(ctx, first.Descriptor().Digest); !errdefs.IsNotFound(err) {
		t.Errorf("the replaced image's manifest: got %v, want not found", err)
	}

	if err := d.Client.ImageService().Delete(ctx, name, images.SynchronousDelete()); err != nil {
		t.Fatalf("delete image: %v", err)
	}
	for _, b := range second.Blobs() {
		if _, err := cs.Info(ctx, b.Descriptor().Digest); !errdefs.IsNotFound(err) {
			t.Errorf("%s after the image was deleted: got %v, want not found", b.Descriptor().MediaType, err)
		}
	}
}
