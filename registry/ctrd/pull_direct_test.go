package ctrd_test

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"

	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/ctrd"
	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/registrytest"
)

// directLog records what Pull wrote directly into containerd's content store.
type directLog struct {
	mu    sync.Mutex
	blobs map[digest.Digest]bool // shared: containerd saw the blob in its store
}

func (l *directLog) hook(d digest.Digest, shared bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.blobs == nil {
		l.blobs = make(map[digest.Digest]bool)
	}
	l.blobs[d] = shared
}

func (l *directLog) get() map[digest.Digest]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.blobs
}

// contentRoot returns the root of the containerd's local content store, as it exports it.
func (e *pullEnv) contentRoot(t *testing.T) string {
	t.Helper()
	resp, err := e.Ctrd.Client.IntrospectionService().Plugins(e.Ctx, "type==io.containerd.content.v1,id==content")
	if err != nil || len(resp.Plugins) != 1 || resp.Plugins[0].Exports["root"] == "" {
		t.Fatalf("content plugin: %v, %+v", err, resp)
	}
	return resp.Plugins[0].Exports["root"]
}

// blobFiles returns the digests of the files under the store's blobs/sha256.
func blobFiles(t *testing.T, root string) map[digest.Digest]os.FileMode {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(root, "blobs", "sha256"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	files := make(map[digest.Digest]os.FileMode)
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		files[digest.NewDigestFromEncoded(digest.SHA256, e.Name())] = fi.Mode().Perm()
	}
	return files
}

// collectGarbage runs containerd's garbage collector and waits for it to finish (deleting a
// lease synchronously does).
func (e *pullEnv) collectGarbage(t *testing.T) {
	t.Helper()
	ls := e.Ctrd.Client.LeasesService()
	l, err := ls.Create(e.Ctx, leases.WithRandomID())
	if err != nil {
		t.Fatal(err)
	}
	if err := ls.Delete(e.Ctx, l, leases.SynchronousDelete); err != nil {
		t.Fatal(err)
	}
}

// checkNoIngests fails t if containerd lists an ingest or its store's ingest directory holds
// anything.
func (e *pullEnv) checkNoIngests(t *testing.T, root string) {
	t.Helper()
	for _, st := range e.ingests(t) {
		t.Errorf("ingest %s left (%d bytes)", st.Ref, st.Offset)
	}
	e.checkNoStrayIngests(t, root)
}

// checkNoStrayIngests fails t if the store's ingest directory holds anything but the
// ingests containerd lists (a partial ingest that a failed pull keeps is one).
func (e *pullEnv) checkNoStrayIngests(t *testing.T, root string) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(root, "ingest"))
	if err != nil {
		t.Fatal(err)
	}
	listed := len(e.ingests(t))
	for _, ent := range ents {
		if _, err := os.Stat(filepath.Join(root, "ingest", ent.Name(), "ref")); err != nil {
			sub, _ := os.ReadDir(filepath.Join(root, "ingest", ent.Name()))
			t.Errorf("%s left in the store's ingest directory, no ingest: %v", ent.Name(), sub)
		}
	}
	if len(ents) != listed {
		t.Errorf("%d entries in the store's ingest directory, containerd lists %d ingests", len(ents), listed)
	}
}

// ingests returns the ingests containerd lists.
func (e *pullEnv) ingests(t *testing.T) []content.Status {
	t.Helper()
	sts, err := e.Ctrd.Client.ContentStore().ListStatuses(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	return sts
}

// TestPullDirectContent pulls an image whose layers go straight into containerd's local
// content store: containerd's metadata knows every blob in the namespace, its garbage
// collector keeps them while the image exists and removes them once it is deleted.
func TestPullDirectContent(t *testing.T) {
	e := newPullEnv(t)
	root := e.contentRoot(t)
	img := randomLayersImage(t, build.Gzip, 1<<20, 3<<20, 2<<20)
	ref := e.Reg.Ref("direct:1")
	e.Push(t, ref, img)

	var dl directLog
	rec, err := ctrd.Pull(e.Ctx, e.Ctrd.Client, e.Client, ref, ctrd.WithContent("", dl.hook))
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	want := make(map[digest.Digest]bool)
	for _, l := range img.Layers() {
		want[l.Descriptor().Digest] = true
	}
	if diff := cmp.Diff(want, dl.get()); diff != "" {
		t.Errorf("blobs written directly (digest: seen by containerd), -want +got:\n%s", diff)
	}
	if ok, err := client.NewImage(e.Ctrd.Client, rec).IsUnpacked(e.Ctx, "overlayfs"); !ok || err != nil {
		t.Errorf("IsUnpacked = %v, %v; want true", ok, err)
	}
	files := blobFiles(t, root)
	cs := e.Ctrd.Client.ContentStore()
	for _, l := range img.Layers() {
		d := l.Descriptor()
		info, err := cs.Info(e.Ctx, d.Digest)
		if err != nil {
			t.Errorf("Info of layer %s: %v", d.Digest, err)
			continue
		}
		if info.Size != d.Size || info.Labels["containerd.io/uncompressed"] != l.DiffID().String() {
			t.Errorf("layer %s: size %d, labels %v; want size %d and its diff ID %s", d.Digest, info.Size, info.Labels, d.Size, l.DiffID())
		}
		if mode, ok := files[d.Digest]; !ok || mode != 0o444 {
			t.Errorf("file of layer %s: found %v, mode %v; want mode 0444, as containerd commits", d.Digest, ok, mode)
		}
		// containerd reads what was written directly.
		data, err := content.ReadBlob(e.Ctx, cs, d)
		if err != nil || digest.FromBytes(data) != d.Digest {
			t.Errorf("read layer %s from containerd: %v", d.Digest, err)
		}
	}
	e.checkNoIngests(t, root)
	checkNoLeases(t, e)

	// The image keeps its blobs through a garbage collection...
	e.collectGarbage(t)
	for _, l := range img.Layers() {
		if !e.hasBlob(t, l.Descriptor().Digest) {
			t.Errorf("layer %s gone after a garbage collection while the image exists", l.Descriptor().Digest)
		}
	}
	if got := len(blobFiles(t, root)); got != len(files) {
		t.Errorf("%d blob files after a garbage collection, want the %d there were", got, len(files))
	}
	// ...and they go with it.
	if err := e.Ctrd.Client.ImageService().Delete(e.Ctx, rec.Name, images.SynchronousDelete()); err != nil {
		t.Fatal(err)
	}
	e.collectGarbage(t)
	files = blobFiles(t, root)
	for _, l := range img.Layers() {
		d := l.Descriptor().Digest
		if e.hasBlob(t, d) {
			t.Errorf("layer %s still in the namespace after the image is deleted", d)
		}
		if _, ok := files[d]; ok {
			t.Errorf("file of layer %s still in the store after the image is deleted", d)
		}
	}
}

// TestPullDirectBadBlob pulls a layer that arrives corrupted: the pull fails, and no file
// of it is ever named in containerd's store.
func TestPullDirectBadBlob(t *testing.T) {
	e := newPullEnv(t)
	root := e.contentRoot(t)
	img := randomLayersImage(t, build.Uncompressed, 256<<10, 2<<20)
	layer := img.Layers()[1].Descriptor()
	e.Push(t, e.Reg.Ref("bad:1"), img)
	proxy := startFaultProxy(t, e.Reg.Addr)
	proxy.MustAdd(t, fault{Kind: registrytest.Corrupt, Method: "GET", Path: layer.Digest.String(), At: 1_500_000, Times: registrytest.Forever})
	ref := proxy.Ref("bad:1")

	var dl directLog
	_, err := ctrd.Pull(e.Ctx, e.Ctrd.Client, newClient(t, []string{proxy.Addr}), ref, ctrd.WithContent(root, dl.hook))
	if !errors.Is(err, oci.ErrDigestMismatch) {
		t.Fatalf("Pull = %v, want ErrDigestMismatch", err)
	}
	if _, ok := dl.get()[layer.Digest]; ok {
		t.Errorf("the bad layer was registered")
	}
	e.checkNothingOf(t, ref, layer.Digest)
	// Every file in the store is a blob containerd knows (the config, the good layer).
	for d := range blobFiles(t, root) {
		if !e.hasBlob(t, d) {
			t.Errorf("file %s in the store is no blob of the namespace", d)
		}
	}
	e.checkNoStrayIngests(t, root)
}

// TestPullDirectFallback pulls with blobs written into a directory containerd does not read,
// as when a daemon on another host has a store at the same path: containerd does not see
// the first blob, which then goes through the content API, as do all after it.
func TestPullDirectFallback(t *testing.T) {
	e := newPullEnv(t)
	img := randomLayersImage(t, build.Gzip, 1<<20, 1<<20, 1<<20)
	ref := e.Reg.Ref("fallback:1")
	e.Push(t, ref, img)
	elsewhere := t.TempDir()
	if err := os.Mkdir(filepath.Join(elsewhere, "ingest"), 0o755); err != nil {
		t.Fatal(err)
	}

	var dl directLog
	rec, err := ctrd.Pull(e.Ctx, e.Ctrd.Client, e.Client, ref, ctrd.WithContent(elsewhere, dl.hook), ctrd.WithConcurrency(1))
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	first := img.Layers()[0].Descriptor().Digest
	if diff := cmp.Diff(map[digest.Digest]bool{first: false}, dl.get()); diff != "" {
		t.Errorf("blobs written directly (digest: seen by containerd), -want +got:\n%s", diff)
	}
	if ok, err := client.NewImage(e.Ctrd.Client, rec).IsUnpacked(e.Ctx, "overlayfs"); !ok || err != nil {
		t.Errorf("IsUnpacked = %v, %v; want true", ok, err)
	}
	for _, l := range img.Layers() {
		if !e.hasBlob(t, l.Descriptor().Digest) {
			t.Errorf("layer %s missing", l.Descriptor().Digest)
		}
	}
	e.checkNoIngests(t, e.contentRoot(t))
	checkNoLeases(t, e)

	// Through the API only, nothing is written directly.
	e.Ctrd.Client.ImageService().Delete(e.Ctx, rec.Name, images.SynchronousDelete())
	dl = directLog{}
	if _, err := ctrd.Pull(e.Ctx, e.Ctrd.Client, e.Client, ref, ctrd.WithContent("", dl.hook), ctrd.WithDirectContent(false), ctrd.WithName("example.com/api:1")); err != nil {
		t.Fatalf("Pull through the API: %v", err)
	}
	if got := dl.get(); len(got) != 0 {
		t.Errorf("blobs written directly through the API: %v", got)
	}
}
