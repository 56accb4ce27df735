package layout_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	refname "github.com/opendao/dao/registry/name"

	"github.com/opendao/dao/registry/internal/regtest"

	"github.com/google/go-cmp/cmp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/layout"
	"github.com/opendao/dao/registry/oci"
)

// testImage builds an image of two layers for arch.
func testImage(t *testing.T, arch string) *oci.Image { return regtest.Image(t, arch) }

func testIndex(t *testing.T) *oci.Index {
	t.Helper()
	ix, err := oci.NewIndex([]*oci.Image{testImage(t, "amd64"), testImage(t, "arm64")})
	if err != nil {
		t.Fatalf("NewIndex: %v", err)
	}
	return ix
}

// descriptors lists the descriptors of a's blobs.
func descriptors(a oci.Artifact) []ocispec.Descriptor {
	var ds []ocispec.Descriptor
	for _, b := range a.Blobs() {
		ds = append(ds, b.Descriptor())
	}
	return ds
}

// blobContents reads every blob of a, keyed by digest.
func blobContents(t *testing.T, a oci.Artifact) map[string]string {
	t.Helper()
	m := make(map[string]string)
	for _, b := range a.Blobs() {
		rc, err := b.Open()
		if err != nil {
			t.Fatalf("open %s: %v", b.Descriptor().Digest, err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("read %s: %v", b.Descriptor().Digest, err)
		}
		m[b.Descriptor().Digest.String()] = string(data)
	}
	return m
}

func TestLayoutRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	img, ix := testImage(t, "amd64"), testIndex(t)
	dir := t.TempDir()
	if err := layout.Write(ctx, dir, "example.com/app:1", img); err != nil {
		t.Fatalf("layout.Write image: %v", err)
	}
	if err := layout.Write(ctx, dir, "example.com/app:multi", ix); err != nil {
		t.Fatalf("layout.Write index: %v", err)
	}
	// Writing a name again replaces its entry.
	if err := layout.Write(ctx, dir, "example.com/app:1", img); err != nil {
		t.Fatalf("layout.Write image again: %v", err)
	}

	l, err := layout.Read(ctx, dir)
	if err != nil {
		t.Fatalf("layout.Read: %v", err)
	}
	var names []string
	for _, r := range l.Entries {
		names = append(names, r.Name)
		if got := r.Descriptor.Annotations[ocispec.AnnotationRefName]; got != r.Name {
			t.Errorf("%s: ref name annotation %q", r.Name, got)
		}
	}
	if diff := cmp.Diff([]string{"example.com/app:multi", "example.com/app:1"}, names); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}

	for _, tt := range []struct {
		name string
		want oci.Artifact
	}{{"example.com/app:1", img}, {"example.com/app:multi", ix}} {
		got, err := l.Find(tt.name)
		if err != nil {
			t.Fatalf("Find(%q): %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.want.Descriptor(), got.Descriptor()); diff != "" {
			t.Errorf("%s: descriptor (-want +got):\n%s", tt.name, diff)
		}
		if diff := cmp.Diff(descriptors(tt.want), descriptors(got)); diff != "" {
			t.Errorf("%s: blobs (-want +got):\n%s", tt.name, diff)
		}
		if diff := cmp.Diff(blobContents(t, tt.want), blobContents(t, got)); diff != "" {
			t.Errorf("%s: blob contents (-want +got):\n%s", tt.name, diff)
		}
	}

	read, _ := l.Find("example.com/app:1")
	readImg, ok := read.(*oci.Image)
	if !ok {
		t.Fatalf("Find returned %T, want *oci.Image", read)
	}
	for i, layer := range readImg.Layers() {
		if diff := cmp.Diff(regtest.ReadLayer(t, img.Layers()[i]), regtest.ReadLayer(t, layer)); diff != "" {
			t.Errorf("layer %d entries (-want +got):\n%s", i, diff)
		}
	}
	if _, err := l.Find("example.com/other:1"); !errors.Is(err, layout.ErrNotFound) {
		t.Errorf("Find of a missing name: got %v, want ErrNotFound", err)
	}
}

func TestLayoutTar(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ix := testIndex(t)
	var first, second bytes.Buffer
	if err := layout.WriteTar(ctx, &first, "example.com/app:1", ix); err != nil {
		t.Fatalf("layout.WriteTar: %v", err)
	}
	if err := layout.WriteTar(ctx, &second, "example.com/app:1", ix); err != nil {
		t.Fatalf("layout.WriteTar again: %v", err)
	}
	if !bytes.Equal(first.Bytes(), second.Bytes()) {
		t.Errorf("two tars of one index differ")
	}

	dir := t.TempDir()
	tr := tar.NewReader(&first)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		name := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(name, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, _ := io.ReadAll(tr)
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l, err := layout.Read(ctx, dir)
	if err != nil {
		t.Fatalf("layout.Read of the extracted tar: %v", err)
	}
	got, err := l.Find("example.com/app:1")
	if err != nil {
		t.Fatalf("Find: %v", err)
	}
	if diff := cmp.Diff(blobContents(t, ix), blobContents(t, got)); diff != "" {
		t.Errorf("blob contents (-want +got):\n%s", diff)
	}
}

func TestLayoutRefusesBadName(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"", "Upper/Case", "a:b:c", "example.com/app:"} {
		err := layout.Write(context.Background(), t.TempDir(), name, testImage(t, "amd64"))
		if !errors.Is(err, refname.ErrInvalidName) {
			t.Errorf("layout.Write(%q): got %v, want ErrInvalidName", name, err)
		}
	}
}

func TestLayoutDetectsCorruption(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	img := testImage(t, "amd64")
	layer := img.Layers()[1].Descriptor()
	config := img.Manifest().Config
	manifest := img.Descriptor()
	blob := func(dir string, d ocispec.Descriptor) string {
		return filepath.Join(dir, "blobs", "sha256", d.Digest.Encoded())
	}
	flip := func(t *testing.T, file string) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		data[len(data)/2] ^= 0xff
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name    string
		corrupt func(t *testing.T, dir string)
		// Either layout.Read fails, or reading the layer through the image it returns.
		readErr, layerErr error
		names             string // what the error must mention
	}{
		{"layer byte flipped", func(t *testing.T, dir string) { flip(t, blob(dir, layer)) }, nil, oci.ErrDigestMismatch, layer.Digest.String()},
		{"layer truncated", func(t *testing.T, dir string) { os.Truncate(blob(dir, layer), layer.Size-1) }, oci.ErrDigestMismatch, nil, layer.Digest.String()},
		{"layer missing", func(t *testing.T, dir string) { os.Remove(blob(dir, layer)) }, oci.ErrBlobNotFound, nil, layer.Digest.String()},
		{"config byte flipped", func(t *testing.T, dir string) { flip(t, blob(dir, config)) }, oci.ErrDigestMismatch, nil, config.Digest.String()},
		{"manifest byte flipped", func(t *testing.T, dir string) { flip(t, blob(dir, manifest)) }, oci.ErrDigestMismatch, nil, manifest.Digest.String()},
		{"index.json not JSON", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "index.json"), []byte("{"), 0o644)
		}, layout.ErrInvalidLayout, nil, "index.json"},
		{"no oci-layout", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "oci-layout")) }, layout.ErrInvalidLayout, nil, "oci-layout"},
		{"digest with a path in it", func(t *testing.T, dir string) {
			data, _ := os.ReadFile(filepath.Join(dir, "index.json"))
			data = bytes.Replace(data, []byte(manifest.Digest.String()), []byte("sha256:../../../etc/passwd"), 1)
			os.WriteFile(filepath.Join(dir, "index.json"), data, 0o644)
		}, layout.ErrInvalidLayout, nil, "etc/passwd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := layout.Write(ctx, dir, "example.com/app:1", img); err != nil {
				t.Fatalf("layout.Write: %v", err)
			}
			tt.corrupt(t, dir)
			l, err := layout.Read(ctx, dir)
			if tt.readErr != nil {
				if !errors.Is(err, tt.readErr) || !strings.Contains(err.Error(), tt.names) {
					t.Fatalf("layout.Read: got %v, want %v naming %s", err, tt.readErr, tt.names)
				}
				return
			}
			if err != nil {
				t.Fatalf("layout.Read: %v", err)
			}
			a, err := l.Find("example.com/app:1")
			if err != nil {
				t.Fatalf("Find: %v", err)
			}
			rc, err := a.(*oci.Image).Layers()[1].Open()
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer rc.Close()
			_, err = io.ReadAll(rc)
			if !errors.Is(err, tt.layerErr) || !strings.Contains(err.Error(), tt.names) {
				t.Errorf("reading the layer: got %v, want %v naming %s", err, tt.layerErr, tt.names)
			}
			// Copying the layout elsewhere verifies the blobs too.
			err = layout.Write(ctx, t.TempDir(), "example.com/app:1", a)
			if !errors.Is(err, tt.layerErr) {
				t.Errorf("layout.Write of the corrupt image: got %v, want %v", err, tt.layerErr)
			}
		})
	}
}

func TestLayoutIndexJSONAnnotations(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	img := testImage(t, "amd64")
	if err := layout.Write(context.Background(), dir, "example.com/app:1", img); err != nil {
		t.Fatalf("layout.Write: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var index ocispec.Index
	if err := json.Unmarshal(data, &index); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	want := img.Descriptor()
	want.Annotations = map[string]string{
		"io.containerd.image.name":          "example.com/app:1",
		"org.opencontainers.image.ref.name": "example.com/app:1",
	}
	if diff := cmp.Diff([]ocispec.Descriptor{want}, index.Manifests); diff != "" {
		t.Errorf("index.json manifests (-want +got):\n%s", diff)
	}
	layout, err := os.ReadFile(filepath.Join(dir, "oci-layout"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(layout), `{"imageLayoutVersion":"1.0.0"}`; got != want {
		t.Errorf("oci-layout = %s, want %s", got, want)
	}
}
