package oci_test

import (
	"encoding/json"
	"errors"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/opendao/dao/registry/internal/regtest"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/oci"
)

// testLayer builds a layer with one file of the given content.
func testLayer(t *testing.T, content string) *oci.Layer { return regtest.Layer(t, content) }

func TestNewImage(t *testing.T) {
	t.Parallel()
	l1, l2 := testLayer(t, "one"), testLayer(t, "two")
	config := ocispec.ImageConfig{
		User:         "1000:1000",
		ExposedPorts: map[string]struct{}{"8080/tcp": {}},
		Env:          []string{"PATH=/bin", "EMPTY="},
		Entrypoint:   []string{"/bin/app"},
		Cmd:          []string{"--serve"},
		WorkingDir:   "/srv",
		Labels:       map[string]string{"team": "dao"},
	}
	img, err := oci.NewImage([]*oci.Layer{l1, l2}, config,
		oci.WithAnnotations(map[string]string{"org.opencontainers.image.title": "app"}))
	if err != nil {
		t.Fatalf("NewImage: %v", err)
	}

	platform := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if runtime.GOARCH == "arm" {
		platform.Variant = "v7"
	}
	wantConfig := ocispec.Image{
		Platform: platform,
		Config:   config,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{l1.DiffID(), l2.DiffID()}},
		History: []ocispec.History{
			{CreatedBy: "github.com/opendao/dao/registry"},
			{CreatedBy: "github.com/opendao/dao/registry"},
		},
	}
	if diff := cmp.Diff(wantConfig, img.Config()); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	var decoded ocispec.Image
	if err := json.Unmarshal(img.RawConfig(), &decoded); err != nil {
		t.Fatalf("decode raw config: %v", err)
	}
	if diff := cmp.Diff(wantConfig, decoded); diff != "" {
		t.Errorf("raw config (-want +got):\n%s", diff)
	}

	m := img.Manifest()
	if got, want := m.MediaType, ocispec.MediaTypeImageManifest; got != want {
		t.Errorf("manifest media type = %q, want %q", got, want)
	}
	if got, want := m.SchemaVersion, 2; got != want {
		t.Errorf("schema version = %d, want %d", got, want)
	}
	wantLayers := []ocispec.Descriptor{l1.Descriptor(), l2.Descriptor()}
	if diff := cmp.Diff(wantLayers, m.Layers); diff != "" {
		t.Errorf("manifest layers (-want +got):\n%s", diff)
	}
	wantConfigDesc := ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageConfig,
		Digest:    digest.FromBytes(img.RawConfig()),
		Size:      int64(len(img.RawConfig())),
	}
	if diff := cmp.Diff(wantConfigDesc, m.Config); diff != "" {
		t.Errorf("manifest config (-want +got):\n%s", diff)
	}
	if got, want := m.Annotations["org.opencontainers.image.title"], "app"; got != want {
		t.Errorf("annotation = %q, want %q", got, want)
	}

	desc := img.Descriptor()
	if got, want := desc.Digest, digest.FromBytes(img.RawManifest()); got != want {
		t.Errorf("descriptor digest = %s, manifest digest %s", got, want)
	}
	if diff := cmp.Diff(&platform, desc.Platform); diff != "" {
		t.Errorf("descriptor platform (-want +got):\n%s", diff)
	}
	rc, err := img.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if data, _ := io.ReadAll(rc); string(data) != string(img.RawManifest()) {
		t.Errorf("Open reads %q, want the raw manifest %q", data, img.RawManifest())
	}

	var got []string
	for _, b := range img.Blobs() {
		got = append(got, b.Descriptor().MediaType)
	}
	want := []string{ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageManifest}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("blob media types (-want +got):\n%s", diff)
	}
}

func TestImageIsReproducible(t *testing.T) {
	t.Parallel()
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	newImage := func() *oci.Image {
		img, err := oci.NewImage([]*oci.Layer{testLayer(t, "x")},
			ocispec.ImageConfig{Cmd: []string{"sh"}, Labels: map[string]string{"b": "2", "a": "1"}},
			oci.WithCreated(created))
		if err != nil {
			t.Fatalf("NewImage: %v", err)
		}
		return img
	}
	if a, b := newImage().Descriptor().Digest, newImage().Descriptor().Digest; a != b {
		t.Errorf("manifest digests differ: %s, %s", a, b)
	}
}

func TestImageBlobsListEachLayerOnce(t *testing.T) {
	t.Parallel()
	l := testLayer(t, "same")
	img, err := oci.NewImage([]*oci.Layer{l, l}, ocispec.ImageConfig{})
	if err != nil {
		t.Fatalf("NewImage: %v", err)
	}
	if got, want := len(img.Manifest().Layers), 2; got != want {
		t.Errorf("manifest lists %d layers, want %d", got, want)
	}
	if got, want := len(img.Blobs()), 3; got != want {
		t.Errorf("Blobs returns %d blobs, want %d (one layer, config, manifest)", got, want)
	}
}

func TestNewImageRefuses(t *testing.T) {
	t.Parallel()
	l := testLayer(t, "x")
	tests := []struct {
		name   string
		layers []*oci.Layer
		config ocispec.ImageConfig
		opts   []oci.ImageOption
		want   error
	}{
		{"env without name", []*oci.Layer{l}, ocispec.ImageConfig{Env: []string{"=x"}}, nil, oci.ErrInvalidImage},
		{"env without =", []*oci.Layer{l}, ocispec.ImageConfig{Env: []string{"PATH"}}, nil, oci.ErrInvalidImage},
		{"bad port", []*oci.Layer{l}, ocispec.ImageConfig{ExposedPorts: map[string]struct{}{"http": {}}}, nil, oci.ErrInvalidImage},
		{"bad protocol", []*oci.Layer{l}, ocispec.ImageConfig{ExposedPorts: map[string]struct{}{"53/dns": {}}}, nil, oci.ErrInvalidImage},
		{"nil layer", []*oci.Layer{nil}, ocispec.ImageConfig{}, nil, oci.ErrInvalidImage},
		{"history too short", []*oci.Layer{l, l}, ocispec.ImageConfig{}, []oci.ImageOption{oci.WithHistory(ocispec.History{CreatedBy: "one"}, ocispec.History{CreatedBy: "env", EmptyLayer: true})}, oci.ErrInvalidImage},
		{"platform without OS", []*oci.Layer{l}, ocispec.ImageConfig{}, []oci.ImageOption{oci.WithPlatform(ocispec.Platform{Architecture: "amd64"})}, oci.ErrInvalidOption},
		{"zero created", []*oci.Layer{l}, ocispec.ImageConfig{}, []oci.ImageOption{oci.WithCreated(time.Time{})}, oci.ErrInvalidOption},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := oci.NewImage(tt.layers, tt.config, tt.opts...); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNewIndex(t *testing.T) {
	t.Parallel()
	l := testLayer(t, "x")
	var imgs []*oci.Image
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := oci.NewImage([]*oci.Layer{l}, ocispec.ImageConfig{},
			oci.WithPlatform(ocispec.Platform{OS: "linux", Architecture: arch}))
		if err != nil {
			t.Fatalf("NewImage: %v", err)
		}
		imgs = append(imgs, img)
	}
	ix, err := oci.NewIndex(imgs, oci.WithIndexAnnotations(map[string]string{"k": "v"}))
	if err != nil {
		t.Fatalf("NewIndex: %v", err)
	}
	doc := ix.Index()
	if got, want := doc.MediaType, ocispec.MediaTypeImageIndex; got != want {
		t.Errorf("media type = %q, want %q", got, want)
	}
	want := []ocispec.Descriptor{imgs[0].Descriptor(), imgs[1].Descriptor()}
	if diff := cmp.Diff(want, doc.Manifests); diff != "" {
		t.Errorf("index manifests (-want +got):\n%s", diff)
	}
	if got, want := ix.Descriptor().Digest, digest.FromBytes(ix.RawIndex()); got != want {
		t.Errorf("descriptor digest = %s, index digest %s", got, want)
	}
	// The layer is shared: one layer, two configs, two manifests, the index.
	if got, want := len(ix.Blobs()), 6; got != want {
		t.Errorf("Blobs returns %d blobs, want %d", got, want)
	}
	if last := ix.Blobs()[len(ix.Blobs())-1]; last.Descriptor().Digest != ix.Descriptor().Digest {
		t.Errorf("last blob is %s, want the index %s", last.Descriptor().Digest, ix.Descriptor().Digest)
	}

	if _, err := oci.NewIndex([]*oci.Image{imgs[0], imgs[0]}); !errors.Is(err, oci.ErrInvalidImage) {
		t.Errorf("NewIndex with one platform twice: got %v, want ErrInvalidImage", err)
	}
	if _, err := oci.NewIndex(nil); !errors.Is(err, oci.ErrInvalidImage) {
		t.Errorf("NewIndex of nothing: got %v, want ErrInvalidImage", err)
	}
}
