package remote_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/registry/layout"
	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/remote"
)

func TestPushResolveFetch(t *testing.T) {
	reg := startRegistry(t)
	ctx := context.Background()
	var prog progressLog
	c := newClient(t, []string{reg.Addr}, remote.WithProgress(prog.Add))
	img := randomImage(t, 3<<20, "amd64")
	ref := reg.Ref("app:1")
	desc, err := c.Push(ctx, ref, img)
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	if got, want := desc.Digest, img.Descriptor().Digest; got != want {
		t.Errorf("pushed digest %s, want %s", got, want)
	}
	got, err := c.Resolve(ctx, ref)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if got.Digest != desc.Digest || got.Size != desc.Size || got.MediaType != desc.MediaType {
		t.Errorf("Resolve: got %+v, want %+v", got, desc)
	}
	m, err := c.Manifest(ctx, ref)
	if err != nil {
		t.Fatalf("Manifest: %v", err)
	}
	if m.Image == nil || len(m.Image.Layers) != 1 {
		t.Fatalf("Manifest: %+v", m)
	}
	rc, err := c.FetchBlob(ctx, reg.Ref("app"), m.Image.Layers[0])
	if err != nil {
		t.Fatalf("FetchBlob: %v", err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatalf("read blob: %v", err)
	}
	if !bytes.Equal(data, layerBytes(t, img)) {
		t.Errorf("fetched layer differs from the pushed one")
	}
	if _, err := c.Resolve(ctx, reg.Ref("app:nope")); !errors.Is(err, remote.ErrManifestUnknown) {
		t.Errorf("Resolve of a missing tag: %v, want ErrManifestUnknown", err)
	}
	t.Logf("%d progress reports", len(prog.Reports()))
}

func TestTagsCatalogDelete(t *testing.T) {
	reg := startRegistry(t)
	ctx := context.Background()
	c := newClient(t, []string{reg.Addr})
	img := randomImage(t, 1<<10, "amd64")
	var want []string
	for i := 0; i < 7; i++ {
		tag := fmt.Sprintf("v%d", i)
		want = append(want, tag)
		if _, err := c.Push(ctx, reg.Ref("app:"+tag), img); err != nil {
			t.Fatalf("Push: %v", err)
		}
	}
	for _, repo := range []string{"a/one", "b", "c"} {
		if _, err := c.Push(ctx, reg.Ref(repo+":1"), img); err != nil {
			t.Fatalf("Push: %v", err)
		}
	}
	tags, err := c.Tags(ctx, reg.Ref("app"), remote.WithPageSize(3))
	if err != nil {
		t.Fatalf("Tags: %v", err)
	}
	slices.Sort(tags) // distribution 2.8 lists tags in no order
	if diff := cmp.Diff(want, tags); diff != "" {
		t.Errorf("Tags in pages of 3 (-want +got):\n%s", diff)
	}
	repos, err := c.Catalog(ctx, reg.Addr, remote.WithPageSize(2))
	if err != nil {
		t.Fatalf("Catalog: %v", err)
	}
	if diff := cmp.Diff([]string{"a/one", "app", "b", "c"}, repos); diff != "" {
		t.Errorf("Catalog in pages of 2 (-want +got):\n%s", diff)
	}

	// Distribution 2.8 deletes by digest only.
	if err := c.Delete(ctx, reg.Ref("app:v1")); !errors.Is(err, remote.ErrUnsupported) {
		t.Errorf("Delete by tag: %v, want ErrUnsupported", err)
	}
	dgst := img.Descriptor().Digest
	if err := c.Delete(ctx, reg.Ref("app@"+dgst.String())); err != nil {
		t.Fatalf("Delete by digest: %v", err)
	}
	if _, err := c.Resolve(ctx, reg.Ref("app:v1")); !errors.Is(err, remote.ErrManifestUnknown) {
		t.Errorf("Resolve after Delete: %v, want ErrManifestUnknown", err)
	}
	layer := img.Layers()[0].Descriptor()
	if err := c.DeleteBlob(ctx, reg.Ref("b"), layer.Digest); err != nil {
		t.Fatalf("DeleteBlob: %v", err)
	}
	if _, err := c.StatBlob(ctx, reg.Ref("b"), layer.Digest); !errors.Is(err, remote.ErrBlobUnknown) || !errors.Is(err, oci.ErrBlobNotFound) {
		t.Errorf("StatBlob after DeleteBlob: %v, want ErrBlobUnknown", err)
	}
}

// rawBlob is a blob in memory.
type rawBlob struct {
	desc ocispec.Descriptor
	data []byte
}

func newRawBlob(mediaType string, data []byte) *rawBlob {
	return &rawBlob{desc: ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}, data: data}
}

func (b *rawBlob) Descriptor() ocispec.Descriptor { return b.desc }
func (b *rawBlob) Open() (io.ReadCloser, error)   { return io.NopCloser(bytes.NewReader(b.data)), nil }

func TestReferrersFallback(t *testing.T) {
	reg := startRegistry(t)
	ctx := context.Background()
	c := newClient(t, []string{reg.Addr})
	img := randomImage(t, 1<<10, "amd64")
	subject, err := c.Push(ctx, reg.Ref("app:1"), img)
	if err != nil {
		t.Fatal(err)
	}
	empty := newRawBlob(ocispec.MediaTypeEmptyJSON, []byte("{}"))
	sig := newRawBlob("application/vnd.dao.signature", []byte("signed by dao"))
	for _, b := range []oci.Blob{empty, sig} {
		if err := c.PushBlob(ctx, reg.Ref("app"), b); err != nil {
			t.Fatalf("PushBlob: %v", err)
		}
	}
	subjectDesc := ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	for _, artifactType := range []string{"application/vnd.dao.signature", "application/vnd.dao.sbom"} {
		m := ocispec.Manifest{
			Versioned:    specs.Versioned{SchemaVersion: 2},
			MediaType:    ocispec.MediaTypeImageManifest,
			ArtifactType: artifactType,
			Config:       empty.desc,
			Layers:       []ocispec.Descriptor{sig.desc},
			Subject:      &subjectDesc,
		}
		data, _ := json.Marshal(m)
		if _, err := c.PushManifest(ctx, reg.Ref("app@"+digest.FromBytes(data).String()), ocispec.MediaTypeImageManifest, data); err != nil {
			t.Fatalf("PushManifest with subject: %v", err)
		}
	}
	for _, tc := range []struct {
		artifactType string
		want         []string
	}{
		{"", []string{"application/vnd.dao.signature", "application/vnd.dao.sbom"}},
		{"application/vnd.dao.sbom", []string{"application/vnd.dao.sbom"}},
		{"application/vnd.dao.other", nil},
	} {
		descs, err := c.Referrers(ctx, reg.Ref("app"), subject.Digest, tc.artifactType)
		if err != nil {
			t.Fatalf("Referrers(%q): %v", tc.artifactType, err)
		}
		var got []string
		for _, d := range descs {
			got = append(got, d.ArtifactType)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Referrers(%q) (-want +got):\n%s", tc.artifactType, diff)
		}
	}
	// The fallback index is the tag schema's.
	tags, err := c.Tags(ctx, reg.Ref("app"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(tags)
	if diff := cmp.Diff([]string{"1", "sha256-" + subject.Digest.Encoded()}, tags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
	none, err := c.Referrers(ctx, reg.Ref("app"), sig.desc.Digest, "")
	if err != nil || len(none) != 0 {
		t.Errorf("Referrers of a manifest without any: %v, %v; want none", none, err)
	}
}

func TestCopyBetweenRegistries(t *testing.T) {
	src, dst := startRegistry(t), startRegistry(t)
	ctx := context.Background()
	var prog progressLog
	c := newClient(t, []string{src.Addr, dst.Addr}, remote.WithProgress(prog.Add))
	amd, arm := randomImage(t, 200<<10, "amd64"), randomImage(t, 200<<10, "arm64")
	ix, err := oci.NewIndex([]*oci.Image{amd, arm})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Push(ctx, src.Ref("app:1"), ix); err != nil {
		t.Fatalf("Push index: %v", err)
	}

	got, err := c.Copy(ctx, src.Ref("app:1"), dst.Ref("mirror/app:1"))
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	if got.Digest != ix.Descriptor().Digest {
		t.Errorf("Copy: digest %s, want %s", got.Digest, ix.Descriptor().Digest)
	}
	m, err := c.Manifest(ctx, dst.Ref("mirror/app:1"))
	if err != nil || m.Index == nil || len(m.Index.Manifests) != 2 {
		t.Fatalf("Manifest of the copy: %+v, %v", m, err)
	}
	d, err := oci.SelectPlatform(*m.Index, ocispec.Platform{OS: "linux", Architecture: "arm64"})
	if err != nil {
		t.Fatal(err)
	}
	img, err := c.FetchManifest(ctx, dst.Ref("mirror/app"), d)
	if err != nil {
		t.Fatalf("FetchManifest: %v", err)
	}
	rc, err := c.FetchBlob(ctx, dst.Ref("mirror/app"), img.Image.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(data, layerBytes(t, arm)) {
		t.Errorf("arm64 layer of the copy differs: %v", err)
	}

	// One platform only: the image stands alone.
	got, err = c.Copy(ctx, src.Ref("app:1"), dst.Ref("amd:1"), remote.WithPlatform(ocispec.Platform{OS: "linux", Architecture: "amd64"}))
	if err != nil {
		t.Fatalf("Copy WithPlatform: %v", err)
	}
	if got.Digest != amd.Descriptor().Digest || got.MediaType != ocispec.MediaTypeImageManifest {
		t.Errorf("Copy WithPlatform: %+v, want the amd64 manifest %s", got, amd.Descriptor().Digest)
	}

	// Within one registry blobs are mounted, not sent.
	before := len(prog.Reports())
	if _, err := c.Copy(ctx, dst.Ref("amd:1"), dst.Ref("other:1")); err != nil {
		t.Fatalf("Copy within a registry: %v", err)
	}
	mounts := 0
	for _, p := range prog.Reports()[before:] {
		if p.Action == "mount" {
			mounts++
		}
		if p.Action == "push" && p.Done > 0 && !p.Complete {
			t.Errorf("copy within a registry sent bytes of %s", p.Descriptor.Digest)
		}
	}
	if mounts != 2 {
		t.Errorf("copy within a registry mounted %d blobs, want 2 (config and layer)", mounts)
	}
	if err := c.MountBlob(ctx, dst.Ref("third"), dst.Ref("nothing-here"), amd.Layers()[0].Descriptor()); !errors.Is(err, remote.ErrNotMounted) {
		t.Errorf("MountBlob from a repository without the blob: %v, want ErrNotMounted", err)
	}
}

func TestChunkedUpload(t *testing.T) {
	reg := startRegistry(t)
	ctx := context.Background()
	c := newClient(t, []string{reg.Addr}, remote.WithChunkedUpload(100<<10))
	img := randomImage(t, 1<<20, "amd64")
	if _, err := c.Push(ctx, reg.Ref("app:1"), img); err != nil {
		t.Fatalf("Push in chunks: %v", err)
	}
	rc, err := c.FetchBlob(ctx, reg.Ref("app"), img.Layers()[0].Descriptor())
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(data, layerBytes(t, img)) {
		t.Errorf("layer pushed in chunks differs: %v", err)
	}
}

func TestLayoutRoundTripAndSkopeo(t *testing.T) {
	testutil.RequireIntegration(t, "skopeo")
	reg := startRegistry(t)
	ctx := context.Background()
	c := newClient(t, []string{reg.Addr})
	img := randomImage(t, 300<<10, "amd64")
	desc, err := c.Push(ctx, reg.Ref("app:1"), img)
	if err != nil {
		t.Fatal(err)
	}

	// skopeo reads what we pushed.
	out, err := exec.Command("skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+reg.Ref("app:1")).Output()
	if err != nil {
		t.Fatalf("skopeo inspect: %v", err)
	}
	if got := digest.FromBytes(out); got != desc.Digest {
		t.Errorf("skopeo reads manifest %s, we pushed %s", got, desc.Digest)
	}

	// Registry to layout and back.
	dir := t.TempDir()
	if _, err := c.PullLayout(ctx, reg.Ref("app:1"), dir); err != nil {
		t.Fatalf("PullLayout: %v", err)
	}
	l, err := layout.Read(ctx, dir)
	if err != nil {
		t.Fatalf("layout.Read: %v", err)
	}
	a, err := l.Find(reg.Ref("app:1"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Descriptor().Digest != desc.Digest {
		t.Errorf("layout holds %s, want %s", a.Descriptor().Digest, desc.Digest)
	}
	if _, err := c.PushLayout(ctx, dir, reg.Ref("app:1"), reg.Ref("back:1")); err != nil {
		t.Fatalf("PushLayout: %v", err)
	}

	// skopeo copies into the registry; we read it.
	skDir := t.TempDir()
	if err := layout.Write(ctx, skDir, "dao.test/sk:1", img); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("skopeo", "copy", "--insecure-policy", "--dest-tls-verify=false", "oci:"+skDir+":dao.test/sk:1", "docker://"+reg.Ref("sk:1")).CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	m, err := c.Manifest(ctx, reg.Ref("sk:1"))
	if err != nil {
		t.Fatalf("Manifest of skopeo's copy: %v", err)
	}
	rc, err := c.FetchBlob(ctx, reg.Ref("sk"), m.Image.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	// skopeo compresses the uncompressed layer on its way to a registry.
	zr, err := gzip.NewReader(rc)
	if err != nil {
		t.Fatalf("layer of skopeo's copy (%s): %v", m.Image.Layers[0].MediaType, err)
	}
	data, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(data, layerBytes(t, img)) {
		t.Errorf("layer of skopeo's copy differs: %v", err)
	}
}
