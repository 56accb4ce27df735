package ctrd_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/ctrd"
	"github.com/opendao/dao/registry/oci"
)

// pushRaw pushes a manifest of config and layers, as they are, to ref.
func (e *pullEnv) pushRaw(t *testing.T, ref string, config *memBlob, layers ...*memBlob) ocispec.Descriptor {
	t.Helper()
	repo, _, _ := strings.Cut(ref, ":")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		repo = ref[:i]
	}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: config.desc}
	for _, b := range append([]*memBlob{config}, layers...) {
		if err := e.Client.PushBlob(e.Ctx, repo, b); err != nil {
			t.Fatalf("PushBlob: %v", err)
		}
		if b != config {
			m.Layers = append(m.Layers, b.desc)
		}
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := e.Client.PushManifest(e.Ctx, ref, ocispec.MediaTypeImageManifest, data)
	if err != nil {
		t.Fatalf("PushManifest: %v", err)
	}
	return desc
}

// imageConfig is the config of an image of layers with these diff IDs, for this host.
func imageConfig(diffIDs ...digest.Digest) *memBlob {
	data, _ := json.Marshal(ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
	})
	return newMemBlob(ocispec.MediaTypeImageConfig, data)
}

// TestPullRefusesArtifacts pulls an artifact (a manifest whose config is not an image
// config) into containerd: Pull refuses it, naming the media type, before fetching a blob
// and without an image record, whether it unpacks or not; PullLayout copies it.
func TestPullRefusesArtifacts(t *testing.T) {
	e := newPullEnv(t)
	const configType = "application/vnd.example.chart.config.v1+json"
	data := make([]byte, 4096)
	rand.Read(data)
	layer := newMemBlob("application/vnd.example.chart.content.v1.tar+gzip", data)
	ref := e.Reg.Ref("chart:1")
	e.pushRaw(t, ref, newMemBlob(configType, []byte(`{"name":"chart"}`)), layer)
	for _, tc := range []struct {
		name string
		opts []ctrd.Option
	}{{"unpack", nil}, {"content only", []ctrd.Option{ctrd.WithoutUnpack()}}} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ctrd.Pull(e.Ctx, e.Ctrd.Client, e.Client, ref, tc.opts...)
			if !errors.Is(err, oci.ErrNotImage) || !errors.Is(err, oci.ErrInvalidImage) || !strings.Contains(err.Error(), configType) {
				t.Fatalf("Pull of an artifact: %v, want ErrNotImage naming %s", err, configType)
			}
			t.Logf("Pull: %v", err)
			if e.hasImage(t, ref) {
				t.Errorf("an image record was made for an artifact")
			}
			if e.hasBlob(t, layer.desc.Digest) {
				t.Errorf("the artifact's blob was fetched")
			}
		})
	}
	if _, err := e.Client.PullLayout(e.Ctx, ref, t.TempDir()); err != nil {
		t.Errorf("PullLayout of an artifact: %v", err)
	}
}

// TestPullRefusesLayerMediaTypeBeforeFetching pulls an image config whose layer has a media
// type containerd cannot unpack: Pull fails naming it, before it fetches the layer.
func TestPullRefusesLayerMediaTypeBeforeFetching(t *testing.T) {
	e := newPullEnv(t)
	layer := newMemBlob("application/vnd.example.unknown.layer", []byte("not a tar"))
	ref := e.Reg.Ref("oddlayer:1")
	e.pushRaw(t, ref, imageConfig(layer.desc.Digest), layer)
	_, err := ctrd.Pull(e.Ctx, e.Ctrd.Client, e.Client, ref)
	if !errors.Is(err, oci.ErrInvalidImage) || !strings.Contains(err.Error(), layer.desc.MediaType) {
		t.Fatalf("Pull: %v, want ErrInvalidImage naming %s", err, layer.desc.MediaType)
	}
	if e.hasBlob(t, layer.desc.Digest) {
		t.Errorf("the layer was fetched")
	}
}

// gzipBomb returns a gzip layer of a tar that holds one file of fileSize zero bytes and
// then trailing more zeros after the end of the archive, made of gzip members of 1 MiB of
// zeros each: a few kilobytes a member, so the blob is about a thousandth of the stream.
func gzipBomb(t *testing.T, fileSize, trailing int64) []byte {
	t.Helper()
	var head bytes.Buffer
	tw := tar.NewWriter(&head)
	if err := tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: fileSize, ModTime: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	member := func(data []byte) []byte {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		zw.Write(data)
		zw.Close()
		return b.Bytes()
	}
	var blob bytes.Buffer
	blob.Write(member(head.Bytes()))
	mib := member(make([]byte, 1<<20))
	zeros := fileSize + 1024 + trailing // the file, the end of the archive, the rest
	for ; zeros >= 1<<20; zeros -= 1 << 20 {
		blob.Write(mib)
	}
	blob.Write(member(make([]byte, zeros)))
	return blob.Bytes()
}

// TestPullUnpackLimit pulls decompression bombs: the pull fails with ErrTooLarge as the
// limit is passed, and leaves no image record and no snapshot of the bomb.
func TestPullUnpackLimit(t *testing.T) {
	e := newPullEnv(t)
	for i, tc := range []struct {
		name string
		// fileSize and trailing make the bomb (gzipBomb).
		fileSize, trailing int64
		opts               []ctrd.Option
	}{
		// 2 MiB of blob for a 2 GiB file: more than the default's 1 GiB.
		{name: "default limit", fileSize: 2 << 30},
		{name: "file larger than the limit", fileSize: 64 << 20, opts: []ctrd.Option{ctrd.WithUnpackLimit(16 << 20)}},
		{name: "zeros after the archive", fileSize: 1 << 20, trailing: 128 << 20, opts: []ctrd.Option{ctrd.WithUnpackLimit(32 << 20)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bomb := newMemBlob(ocispec.MediaTypeImageLayerGzip, gzipBomb(t, tc.fileSize, tc.trailing))
			t.Logf("bomb: %d bytes of blob for %d of file and %d after the archive", bomb.desc.Size, tc.fileSize, tc.trailing)
			// The diff ID is not the bomb's: the pull must fail before it is checked.
			ref := e.Reg.Ref(fmt.Sprintf("bomb%d:1", i))
			e.pushRaw(t, ref, imageConfig(digest.FromString("not computed")), bomb)
			start := time.Now()
			_, err := ctrd.Pull(e.Ctx, e.Ctrd.Client, e.Client, ref, append(tc.opts, ctrd.WithKeep(0))...)
			t.Logf("Pull: %v after %v", err, time.Since(start))
			if !errors.Is(err, oci.ErrTooLarge) || !strings.Contains(err.Error(), "unpack to more than") {
				t.Errorf("Pull of a bomb: %v, want ErrTooLarge", err)
			}
			if e.hasImage(t, ref) {
				t.Errorf("image record %s exists after the bomb", ref)
			}
			if keys := e.activeSnapshots(t); len(keys) > 0 {
				t.Errorf("active snapshots left: %q", keys)
			}
		})
	}
}

// TestPullUnpackLimitKeepsGoodImages pulls an ordinary image under a small explicit limit
// that it fits in.
func TestPullUnpackLimitKeepsGoodImages(t *testing.T) {
	e := newPullEnv(t)
	img := randomLayersImage(t, build.Gzip, 256<<10, 1<<20)
	ref := e.Reg.Ref("fits:1")
	e.Push(t, ref, img)
	if _, err := ctrd.Pull(e.Ctx, e.Ctrd.Client, e.Client, ref, ctrd.WithUnpackLimit(4<<20)); err != nil {
		t.Fatalf("Pull: %v", err)
	}
}

// TestPullUnpackLimitRefusesBadValues gives WithUnpackLimit values it refuses.
func TestPullUnpackLimitRefusesBadValues(t *testing.T) {
	c := newClient(t, nil)
	for _, n := range []int64{0, -1} {
		if _, err := ctrd.Pull(context.Background(), nil, c, "x", ctrd.WithUnpackLimit(n)); !errors.Is(err, ctrd.ErrInvalidOption) {
			t.Errorf("WithUnpackLimit(%d): %v, want ErrInvalidOption", n, err)
		}
	}
}
