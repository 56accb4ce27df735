package ctrd_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/opendao/dao/registry/ctrd"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// memBlob is a blob held in memory, for content the image builder refuses to make.
type memBlob struct {
	desc ocispec.Descriptor
	data []byte
}

func newMemBlob(mediaType string, data []byte) *memBlob {
	return &memBlob{desc: ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}, data: data}
}

func (b *memBlob) Descriptor() ocispec.Descriptor { return b.desc }
func (b *memBlob) Open() (io.ReadCloser, error)   { return io.NopCloser(bytes.NewReader(b.data)), nil }

// TestPullConfinesHostileLayers pulls a layer written to escape its snapshot (a path that
// climbs out with "..", and a file written through a symlink to an absolute host path): the
// pull may fail or succeed, but nothing may land outside the snapshot.
func TestPullConfinesHostileLayers(t *testing.T) {
	e := newPullEnv(t)
	outside := t.TempDir()
	marker := "escape-" + strconv.FormatInt(time.Now().UnixNano(), 36)

	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	add := func(h *tar.Header, data string) {
		h.Size = int64(len(data))
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, data); err != nil {
			t.Fatal(err)
		}
	}
	add(&tar.Header{Name: "../../../../../../../.." + filepath.Join(outside, marker+"-dots"), Typeflag: tar.TypeReg}, "dots\n")
	add(&tar.Header{Name: "out", Typeflag: tar.TypeSymlink, Linkname: outside, Mode: 0o777}, "")
	add(&tar.Header{Name: "out/" + marker + "-symlink", Typeflag: tar.TypeReg}, "symlink\n")
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	lb := newMemBlob(ocispec.MediaTypeImageLayer, layer.Bytes())
	config, _ := json.Marshal(ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{lb.desc.Digest}},
	})
	cb := newMemBlob(ocispec.MediaTypeImageConfig, config)
	manifest, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest, Config: cb.desc, Layers: []ocispec.Descriptor{lb.desc}})

	repo := e.Reg.Addr + "/hostile"
	for _, b := range []*memBlob{lb, cb} {
		if err := e.Client.PushBlob(e.Ctx, repo, b); err != nil {
			t.Fatalf("PushBlob: %v", err)
		}
	}
	ref := repo + ":1"
	if _, err := e.Client.PushManifest(e.Ctx, ref, ocispec.MediaTypeImageManifest, manifest); err != nil {
		t.Fatalf("PushManifest: %v", err)
	}

	_, err := ctrd.Pull(e.Ctx, e.Ctrd.Client, e.Client, ref)
	t.Logf("Pull of a hostile layer: err = %v", err)
	entries, rerr := os.ReadDir(outside)
	if rerr != nil {
		t.Fatal(rerr)
	}
	for _, de := range entries {
		t.Errorf("the layer wrote %s outside its snapshot", filepath.Join(outside, de.Name()))
	}
}
