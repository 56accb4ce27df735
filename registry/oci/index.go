package oci

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"

	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Index is an OCI image index: one image per platform under one name, from which a runtime
// picks the image for its own platform. As a Blob it is the index document. An Index is
// immutable and safe for simultaneous use.
type Index struct {
	index  *Bytes
	images []*Image
}

// IndexOption configures NewIndex.
type IndexOption func(*indexOptions) error

type indexOptions struct {
	annotations map[string]string
}

// WithIndexAnnotations sets the index's annotations. The default is none.
func WithIndexAnnotations(a map[string]string) IndexOption {
	return func(o *indexOptions) error {
		for k := range a {
			if k == "" {
				return fmt.Errorf("%w: WithIndexAnnotations: annotation with an empty key", ErrInvalidOption)
			}
		}
		o.annotations = maps.Clone(a)
		return nil
	}
}

// NewIndex builds an index over images, in the order given, each listed with its platform.
// At least one image is required, and no two may have the same platform.
func NewIndex(images []*Image, opts ...IndexOption) (*Index, error) {
	var o indexOptions
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("%w: nil option", ErrInvalidOption)
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if len(images) == 0 {
		return nil, fmt.Errorf("%w: an index needs at least one image", ErrInvalidImage)
	}
	manifests := make([]ocispec.Descriptor, len(images))
	seen := make(map[string]bool)
	for i, img := range images {
		if img == nil {
			return nil, fmt.Errorf("%w: image %d is nil", ErrInvalidImage, i)
		}
		p := platforms.FormatAll(img.Platform())
		if seen[p] {
			return nil, fmt.Errorf("%w: two images for platform %s", ErrInvalidImage, p)
		}
		seen[p] = true
		manifests[i] = img.Descriptor()
	}
	data, err := json.Marshal(ocispec.Index{
		Versioned:   specs.Versioned{SchemaVersion: 2},
		MediaType:   ocispec.MediaTypeImageIndex,
		Manifests:   manifests,
		Annotations: o.annotations,
	})
	if err != nil {
		return nil, fmt.Errorf("registry: encode index: %w", err)
	}
	return &Index{
		index:  NewBytes(ocispec.MediaTypeImageIndex, data),
		images: append([]*Image(nil), images...),
	}, nil
}

// Descriptor returns the descriptor of the index document.
func (ix *Index) Descriptor() ocispec.Descriptor { return ix.index.desc }

// Open returns a reader of the index document.
func (ix *Index) Open() (io.ReadCloser, error) { return ix.index.Open() }

// Blobs returns the blobs of every image (each distinct blob once), then the index itself.
func (ix *Index) Blobs() []Blob {
	var blobs []Blob
	seen := make(map[digest.Digest]bool)
	for _, img := range ix.images {
		for _, b := range img.Blobs() {
			if d := b.Descriptor().Digest; !seen[d] {
				seen[d] = true
				blobs = append(blobs, b)
			}
		}
	}
	return append(blobs, ix.index)
}

// Images returns the images of the index, in its order.
func (ix *Index) Images() []*Image { return append([]*Image(nil), ix.images...) }

// Index returns the decoded index document.
func (ix *Index) Index() ocispec.Index {
	var i ocispec.Index
	_ = json.Unmarshal(ix.index.data, &i) // checked when the index was made
	return i
}

// RawIndex returns the index document's bytes, whose digest Descriptor returns.
func (ix *Index) RawIndex() []byte { return bytes.Clone(ix.index.data) }

// IndexOf returns the index doc of images, read back from where it was stored (an OCI
// layout). It trusts its arguments: images are those doc lists, in its order.
func IndexOf(doc *Bytes, images []*Image) *Index {
	return &Index{index: doc, images: images}
}
