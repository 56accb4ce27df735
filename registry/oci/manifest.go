package oci

import (
	"encoding/json"
	"fmt"
	"mime"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Manifest is a manifest or an index as a registry serves it: its descriptor, its bytes, and
// the decoded document. Exactly one of Image and Index is set. Docker schema 2 manifests and
// manifest lists decode into the OCI types, which have the same shape.
type Manifest struct {
	// Descriptor gives the document's media type, digest and size.
	Descriptor ocispec.Descriptor
	// Raw is the document's bytes, whose digest Descriptor gives.
	Raw []byte
	// Image is the decoded image manifest.
	Image *ocispec.Manifest
	// Index is the decoded index or manifest list.
	Index *ocispec.Index
}

// Media types of Docker's schema 2, which registries and containerd still serve beside
// the OCI ones, and the annotation that names an image in containerd and its layouts.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	AnnotationImageName         = "io.containerd.image.name"
)

// ManifestMediaTypes returns the media types of manifests and indexes that DecodeManifest
// decodes: OCI's and Docker schema 2's, manifests first.
func ManifestMediaTypes() []string {
	return []string{
		ocispec.MediaTypeImageManifest,
		ocispec.MediaTypeImageIndex,
		MediaTypeDockerManifest,
		MediaTypeDockerManifestList,
	}
}

// isManifestType reports whether mediaType is an image manifest's.
func IsManifestType(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageManifest || mediaType == MediaTypeDockerManifest
}

// isIndexType reports whether mediaType is an index's or a manifest list's.
func IsIndexType(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == MediaTypeDockerManifestList
}

// MaxManifestSize is the largest manifest or index the client reads: 4 MiB, the most that
// containerd takes from a registry and that the distribution registry stores, and what the
// distribution specification asks registries to accept at least.
const MaxManifestSize = 4 << 20

// DecodeManifest decodes data, a manifest or index served with mediaType (a Content-Type;
// parameters are ignored). When mediaType is empty or generic ("application/json",
// "application/octet-stream", "text/plain"), the document's own mediaType field decides, or
// else its shape. It checks what a consumer relies on: schema version 2, a media type that
// agrees with the document's, and well-formed descriptors (valid digests, sizes not
// negative). The descriptor it returns has the sha256 digest of data. Errors match
// ErrInvalidImage.
func DecodeManifest(mediaType string, data []byte) (*Manifest, error) {
	if mt, _, err := mime.ParseMediaType(mediaType); err == nil {
		mediaType = mt
	}
	var head struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		Manifests     json.RawMessage   `json:"manifests"`
		Config        json.RawMessage   `json:"config"`
		Layers        json.RawMessage   `json:"layers"`
		FSLayers      []json.RawMessage `json:"fsLayers"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrInvalidImage, err)
	}
	switch mediaType {
	case "", "application/json", "application/octet-stream", "text/plain":
		mediaType = head.MediaType
		if mediaType == "" {
			switch {
			case head.Manifests != nil && head.Config == nil && head.Layers == nil:
				mediaType = ocispec.MediaTypeImageIndex
			case head.Config != nil && head.Manifests == nil:
				mediaType = ocispec.MediaTypeImageManifest
			}
		}
	}
	if head.SchemaVersion == 1 || head.FSLayers != nil {
		return nil, fmt.Errorf("%w: docker schema 1 manifests are not supported", ErrInvalidImage)
	}
	if head.SchemaVersion != 2 {
		return nil, fmt.Errorf("%w: manifest schema version %d, want 2", ErrInvalidImage, head.SchemaVersion)
	}
	if head.MediaType != "" && head.MediaType != mediaType {
		return nil, fmt.Errorf("%w: manifest says media type %q, served as %q", ErrInvalidImage, head.MediaType, mediaType)
	}
	m := &Manifest{
		Descriptor: ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))},
		Raw:        data,
	}
	switch {
	case IsManifestType(mediaType):
		if head.Manifests != nil {
			return nil, fmt.Errorf("%w: image manifest with a manifests list", ErrInvalidImage)
		}
		var im ocispec.Manifest
		if err := json.Unmarshal(data, &im); err != nil {
			return nil, fmt.Errorf("%w: manifest: %v", ErrInvalidImage, err)
		}
		if err := checkDescriptors("config", im.Config); err != nil {
			return nil, err
		}
		if err := checkDescriptors("layer", im.Layers...); err != nil {
			return nil, err
		}
		if im.Subject != nil {
			if err := checkDescriptors("subject", *im.Subject); err != nil {
				return nil, err
			}
		}
		m.Image = &im
	case IsIndexType(mediaType):
		if head.Config != nil || head.Layers != nil {
			return nil, fmt.Errorf("%w: index with a config or layers", ErrInvalidImage)
		}
		var ix ocispec.Index
		if err := json.Unmarshal(data, &ix); err != nil {
			return nil, fmt.Errorf("%w: index: %v", ErrInvalidImage, err)
		}
		if err := checkDescriptors("manifest", ix.Manifests...); err != nil {
			return nil, err
		}
		if ix.Subject != nil {
			if err := checkDescriptors("subject", *ix.Subject); err != nil {
				return nil, err
			}
		}
		m.Index = &ix
	default:
		return nil, fmt.Errorf("%w: unsupported manifest media type %q", ErrInvalidImage, mediaType)
	}
	return m, nil
}

// checkDescriptors refuses descriptors with a malformed digest or a negative size.
func checkDescriptors(what string, descs ...ocispec.Descriptor) error {
	for _, d := range descs {
		if err := d.Digest.Validate(); err != nil {
			return fmt.Errorf("%w: %s digest %q: %v", ErrInvalidImage, what, d.Digest, err)
		}
		if d.Size < 0 {
			return fmt.Errorf("%w: %s %s has negative size %d", ErrInvalidImage, what, d.Digest, d.Size)
		}
	}
	return nil
}
