package oci

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// createdBy is what the history entries that NewImage generates say about their layers.
const createdBy = "github.com/opendao/dao/registry"

// Image is an OCI image for one platform: its layers, its config (which lists the layers'
// diff IDs and what to run) and the manifest that ties them together. As a Blob it is its
// manifest. An Image is immutable and safe for simultaneous use.
type Image struct {
	manifest *Bytes
	config   *Bytes
	layers   []*Layer
	platform ocispec.Platform
}

// NewImage builds the config and manifest of an image made of layers (the lowest first) that
// runs as config says: entrypoint, command, environment, working directory, user, labels,
// exposed ports. The same layers, config and options always give the same manifest digest.
//
// The image refers to the layers but does not own them: closing them is the caller's job,
// after the image has been written or imported.
func NewImage(layers []*Layer, config ocispec.ImageConfig, opts ...ImageOption) (*Image, error) {
	o := defaultImageOptions()
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("%w: nil option", ErrInvalidOption)
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if err := checkImageConfig(config); err != nil {
		return nil, err
	}
	for i, l := range layers {
		if l == nil {
			return nil, fmt.Errorf("%w: layer %d is nil", ErrInvalidImage, i)
		}
	}
	history, err := imageHistory(o, len(layers))
	if err != nil {
		return nil, err
	}
	cfg := ocispec.Image{
		Created:  o.created,
		Platform: o.platform,
		Config:   config,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: make([]digest.Digest, len(layers))},
		History:  history,
	}
	descs := make([]ocispec.Descriptor, len(layers))
	for i, l := range layers {
		cfg.RootFS.DiffIDs[i] = l.DiffID()
		descs[i] = l.Descriptor()
	}
	configJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("registry: encode image config: %w", err)
	}
	configBlob := NewBytes(ocispec.MediaTypeImageConfig, configJSON)
	manifestJSON, err := json.Marshal(ocispec.Manifest{
		Versioned:   specs.Versioned{SchemaVersion: 2},
		MediaType:   ocispec.MediaTypeImageManifest,
		Config:      configBlob.desc,
		Layers:      descs,
		Annotations: o.annotations,
	})
	if err != nil {
		return nil, fmt.Errorf("registry: encode manifest: %w", err)
	}
	return &Image{
		manifest: NewBytes(ocispec.MediaTypeImageManifest, manifestJSON),
		config:   configBlob,
		layers:   append([]*Layer(nil), layers...),
		platform: o.platform,
	}, nil
}

// Descriptor returns the descriptor of the image's manifest, with the image's platform.
func (img *Image) Descriptor() ocispec.Descriptor {
	d := img.manifest.desc
	p := img.platform
	d.Platform = &p
	return d
}

// Open returns a reader of the manifest.
func (img *Image) Open() (io.ReadCloser, error) { return img.manifest.Open() }

// Blobs returns the layers (each distinct layer once), the config and the manifest, in that
// order.
func (img *Image) Blobs() []Blob {
	var blobs []Blob
	seen := make(map[digest.Digest]bool)
	for _, l := range img.layers {
		if d := l.Descriptor().Digest; !seen[d] {
			seen[d] = true
			blobs = append(blobs, l)
		}
	}
	return append(blobs, img.config, img.manifest)
}

// Layers returns the image's layers, the lowest first.
func (img *Image) Layers() []*Layer { return append([]*Layer(nil), img.layers...) }

// Platform returns the platform the image runs on.
func (img *Image) Platform() ocispec.Platform { return img.platform }

// Manifest returns the decoded manifest.
func (img *Image) Manifest() ocispec.Manifest {
	var m ocispec.Manifest
	_ = json.Unmarshal(img.manifest.data, &m) // checked when the image was made
	return m
}

// Config returns the decoded image config.
func (img *Image) Config() ocispec.Image {
	var c ocispec.Image
	_ = json.Unmarshal(img.config.data, &c) // checked when the image was made
	return c
}

// RawManifest returns the manifest's bytes, whose digest Descriptor returns.
func (img *Image) RawManifest() []byte { return bytes.Clone(img.manifest.data) }

// RawConfig returns the config's bytes.
func (img *Image) RawConfig() []byte { return bytes.Clone(img.config.data) }

// imageHistory returns the history the options give, checked against the number of layers,
// or one generated entry per layer.
func imageHistory(o imageOptions, layers int) ([]ocispec.History, error) {
	if o.history == nil {
		h := make([]ocispec.History, layers)
		for i := range h {
			h[i] = ocispec.History{Created: o.created, CreatedBy: createdBy}
		}
		return h, nil
	}
	n := 0
	for _, h := range o.history {
		if !h.EmptyLayer {
			n++
		}
	}
	if n != layers {
		return nil, fmt.Errorf("%w: history has %d entries with layers for %d layers", ErrInvalidImage, n, layers)
	}
	return o.history, nil
}

// checkImageConfig refuses environment variables without a name and malformed exposed ports.
func checkImageConfig(c ocispec.ImageConfig) error {
	for _, kv := range c.Env {
		if name, _, ok := strings.Cut(kv, "="); !ok || name == "" {
			return fmt.Errorf("%w: environment entry %q is not NAME=VALUE", ErrInvalidImage, kv)
		}
	}
	for p := range c.ExposedPorts {
		port, proto, _ := strings.Cut(p, "/")
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || (proto != "" && proto != "tcp" && proto != "udp" && proto != "sctp") {
			return fmt.Errorf("%w: exposed port %q is not PORT[/tcp|udp|sctp]", ErrInvalidImage, p)
		}
	}
	return nil
}

// ImageOf returns the image of the manifest and config given, for platform, made of layers:
// an image read back from where it was stored (an OCI layout). It trusts its arguments,
// which its caller has verified: the layers are those the manifest lists, in its order.
func ImageOf(manifest, config *Bytes, platform ocispec.Platform, layers []*Layer) *Image {
	return &Image{manifest: manifest, config: config, platform: platform, layers: layers}
}
