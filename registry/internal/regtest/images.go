package regtest

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/oci"
)

// Layer builds a layer with one file, "file", of the given content, with its temporary file
// in t's temporary directory, and closes it when the test ends.
func Layer(t testing.TB, content string) *oci.Layer {
	t.Helper()
	b, err := build.NewLayerBuilder(build.WithTempDir(t.TempDir()))
	if err != nil {
		t.Fatalf("NewLayerBuilder: %v", err)
	}
	if err := b.AddFile("file", 0o644, []byte(content)); err != nil {
		t.Fatal(err)
	}
	l, err := b.Build(context.Background())
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TarEntry is what the tests compare of a layer's tar entries.
type TarEntry struct {
	Name     string
	Type     byte
	Mode     int64
	UID, GID int
	Link     string
	Content  string
	ModTime  int64
}

// ReadLayer decompresses l as its media type says, checks its diff ID and returns its
// entries.
func ReadLayer(t testing.TB, l *oci.Layer) []TarEntry {
	t.Helper()
	rc, err := l.Open()
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer rc.Close()
	blob, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read layer: %v", err)
	}
	desc := l.Descriptor()
	if got := digest.FromBytes(blob); got != desc.Digest {
		t.Errorf("blob digest = %s, descriptor says %s", got, desc.Digest)
	}
	if got := int64(len(blob)); got != desc.Size {
		t.Errorf("blob size = %d, descriptor says %d", got, desc.Size)
	}
	var r io.Reader = strings.NewReader(string(blob))
	switch desc.MediaType {
	case ocispec.MediaTypeImageLayerGzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = zr
	case ocispec.MediaTypeImageLayerZstd:
		zr, err := zstd.NewReader(r)
		if err != nil {
			t.Fatalf("zstd: %v", err)
		}
		defer zr.Close()
		r = zr
	}
	plain, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decompress: %v", err)
	}
	if got := digest.FromBytes(plain); got != l.DiffID() {
		t.Errorf("diff ID = %s, tar digest is %s", l.DiffID(), got)
	}
	tr := tar.NewReader(strings.NewReader(string(plain)))
	var entries []TarEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return entries
		}
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("tar %s: %v", h.Name, err)
		}
		if h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: user and group names %q:%q, want none", h.Name, h.Uname, h.Gname)
		}
		entries = append(entries, TarEntry{
			Name: h.Name, Type: h.Typeflag, Mode: h.Mode, UID: h.Uid, GID: h.Gid,
			Link: h.Linkname, Content: string(data), ModTime: h.ModTime.Unix(),
		})
	}
}

// Builder returns a layer builder whose temporary files live in t's temporary directory.
func Builder(t testing.TB, opts ...build.Option) *build.LayerBuilder {
	t.Helper()
	b, err := build.NewLayerBuilder(append([]build.Option{build.WithTempDir(t.TempDir())}, opts...)...)
	if err != nil {
		t.Fatalf("NewLayerBuilder: %v", err)
	}
	return b
}

// Build builds b and closes the layer when the test ends.
func Build(t testing.TB, b *build.LayerBuilder) *oci.Layer {
	t.Helper()
	l, err := b.Build(context.Background())
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// Must fails the test if err is not nil.
func Must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Image builds an image of two small layers for linux/arch.
func Image(t testing.TB, arch string) *oci.Image {
	t.Helper()
	img, err := oci.NewImage(
		[]*oci.Layer{Layer(t, "base"), Layer(t, "app for "+arch)},
		ocispec.ImageConfig{Cmd: []string{"/bin/app"}},
		oci.WithPlatform(ocispec.Platform{OS: "linux", Architecture: arch}))
	if err != nil {
		t.Fatalf("NewImage: %v", err)
	}
	return img
}
