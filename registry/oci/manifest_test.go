package oci_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/oci"
)

const testDigest = "sha256:4b8bbf7e3cf5c9c3b0a2b4cd0ad5ad7fdb34a5a4e42c6b5a4c6b4a9ad1f1a1c2"

const (
	ociManifest    = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + testDigest + `","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"` + testDigest + `","size":10}]}`
	dockerManifest = `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"` + testDigest + `","size":2},"layers":[]}`
	ociIndex       = `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + testDigest + `","size":5,"platform":{"os":"linux","architecture":"amd64"}}]}`
	dockerList     = `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}`
	schema1        = `{"schemaVersion":1,"name":"app","tag":"1","fsLayers":[{"blobSum":"` + testDigest + `"}]}`
)

func TestDecodeManifest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, mediaType, data string
		wantType              string
		wantIndex             bool
		wantErr               bool
	}{
		{"oci manifest", ocispec.MediaTypeImageManifest, ociManifest, ocispec.MediaTypeImageManifest, false, false},
		{"oci manifest with charset", ocispec.MediaTypeImageManifest + "; charset=utf-8", ociManifest, ocispec.MediaTypeImageManifest, false, false},
		{"oci manifest served as json", "application/json", ociManifest, ocispec.MediaTypeImageManifest, false, false},
		{"docker manifest", "", dockerManifest, "application/vnd.docker.distribution.manifest.v2+json", false, false},
		{"oci index without mediaType field", ocispec.MediaTypeImageIndex, ociIndex, ocispec.MediaTypeImageIndex, true, false},
		{"oci index by shape", "", ociIndex, ocispec.MediaTypeImageIndex, true, false},
		{"docker manifest list", "", dockerList, "application/vnd.docker.distribution.manifest.list.v2+json", true, false},
		{"media types disagree", ocispec.MediaTypeImageIndex, ociManifest, "", false, true},
		{"schema 1", "", schema1, "", false, true},
		{"not json", "", "{", "", false, true},
		{"unknown media type", "application/vnd.example+json", `{"schemaVersion":2}`, "", false, true},
		{"bad layer digest", ocispec.MediaTypeImageManifest, `{"schemaVersion":2,"config":{"digest":"` + testDigest + `","size":1},"layers":[{"digest":"sha256:xyz","size":1}]}`, "", false, true},
		{"negative size", ocispec.MediaTypeImageManifest, `{"schemaVersion":2,"config":{"digest":"` + testDigest + `","size":-1},"layers":[]}`, "", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := oci.DecodeManifest(tc.mediaType, []byte(tc.data))
			if tc.wantErr {
				if !errors.Is(err, oci.ErrInvalidImage) {
					t.Fatalf("got %v, want ErrInvalidImage", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := ocispec.Descriptor{MediaType: tc.wantType, Digest: digest.FromString(tc.data), Size: int64(len(tc.data))}
			if diff := cmp.Diff(want, m.Descriptor); diff != "" {
				t.Errorf("descriptor (-want +got):\n%s", diff)
			}
			if got := m.Index != nil; got != tc.wantIndex || (m.Image != nil) == got {
				t.Errorf("Index set %v, Image set %v; want index %v", m.Index != nil, m.Image != nil, tc.wantIndex)
			}
		})
	}
}

func FuzzDecodeManifest(f *testing.F) {
	for _, s := range []string{ociManifest, dockerManifest, ociIndex, dockerList, schema1} {
		f.Add("", []byte(s))
		f.Add(ocispec.MediaTypeImageManifest, []byte(s))
		f.Add(ocispec.MediaTypeImageIndex, []byte(s))
	}
	f.Fuzz(func(t *testing.T, mediaType string, data []byte) {
		m, err := oci.DecodeManifest(mediaType, data)
		if err != nil {
			if !errors.Is(err, oci.ErrInvalidImage) {
				t.Fatalf("DecodeManifest: %v does not match ErrInvalidImage", err)
			}
			return
		}
		if (m.Image == nil) == (m.Index == nil) {
			t.Fatalf("DecodeManifest: Image %v and Index %v", m.Image, m.Index)
		}
		if m.Descriptor.Digest != digest.FromBytes(data) || m.Descriptor.Size != int64(len(data)) {
			t.Fatalf("descriptor %+v does not describe the data", m.Descriptor)
		}
		var descs []ocispec.Descriptor
		if m.Image != nil {
			descs = append([]ocispec.Descriptor{m.Image.Config}, m.Image.Layers...)
		} else {
			descs = m.Index.Manifests
		}
		for _, d := range descs {
			if d.Digest.Validate() != nil || d.Size < 0 {
				t.Fatalf("decoded descriptor %+v is malformed", d)
			}
		}
		// Decoding is stable.
		again, err := oci.DecodeManifest(m.Descriptor.MediaType, data)
		if err != nil || !cmp.Equal(again.Descriptor, m.Descriptor) {
			t.Fatalf("decoding again with media type %q: %+v, %v", m.Descriptor.MediaType, again, err)
		}
	})
}

func TestSelectPlatform(t *testing.T) {
	t.Parallel()
	desc := func(d, arch, variant string) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString(d), Size: 1,
			Platform: &ocispec.Platform{OS: "linux", Architecture: arch, Variant: variant}}
	}
	ix := ocispec.Index{Manifests: []ocispec.Descriptor{
		desc("amd64", "amd64", ""),
		desc("armv6", "arm", "v6"),
		desc("armv7", "arm", "v7"),
		desc("arm64", "arm64", ""),
		{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("attestation"), Size: 1, Platform: &ocispec.Platform{OS: "unknown", Architecture: "unknown"}},
	}}
	for _, tc := range []struct {
		platform ocispec.Platform
		want     string
	}{
		{ocispec.Platform{OS: "linux", Architecture: "amd64"}, "amd64"},
		{ocispec.Platform{OS: "linux", Architecture: "arm64"}, "arm64"},
		{ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, "armv7"},
		{ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v8"}, "armv7"}, // the closest that runs
		{ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}, "armv6"},
		{ocispec.Platform{OS: "windows", Architecture: "amd64"}, ""},
		{ocispec.Platform{OS: "linux", Architecture: "s390x"}, ""},
	} {
		got, err := oci.SelectPlatform(ix, tc.platform)
		if tc.want == "" {
			if !errors.Is(err, oci.ErrNoPlatform) {
				t.Errorf("SelectPlatform(%v): %v, want ErrNoPlatform", tc.platform, err)
			}
			continue
		}
		if err != nil || got.Digest != digest.FromString(tc.want) {
			t.Errorf("SelectPlatform(%v): got %v (%v), want %s", tc.platform, got.Platform, err, tc.want)
		}
	}
}
