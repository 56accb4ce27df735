package ctrd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opendao/dao/registry/internal/operr"
	refname "github.com/opendao/dao/registry/name"
	"github.com/opendao/dao/registry/oci"
)

// Labels that tell containerd's garbage collector what a blob refers to, and what a layer's
// uncompressed digest is.
const (
	labelGCConfig     = "containerd.io/gc.ref.content.config"
	labelGCLayer      = "containerd.io/gc.ref.content.l."
	labelGCManifest   = "containerd.io/gc.ref.content.m."
	labelUncompressed = "containerd.io/uncompressed"
)

// Import stores a in containerd's content store and creates (or updates) the image record
// name, so that containers can be created from it as from a pulled image. ctx carries the
// containerd namespace (namespaces.WithNamespace) unless c has a default one.
//
// Every blob is written with its expected digest, which containerd verifies. Manifests and
// indexes are labelled with the blobs they refer to so that containerd's garbage collector
// keeps the whole image while the record exists; a lease protects the blobs until then.
// Layers are labelled with their diff IDs (containerd.io/uncompressed).
// Layers containerd already has are not read again. Import needs no transfer service, so it
// works against containerd 1.6 and later.
func Import(ctx context.Context, c *client.Client, name string, a oci.Artifact, opts ...Option) (images.Image, error) {
	o := importDefaults()
	if err := o.apply(opts); err != nil {
		return images.Image{}, err
	}
	if err := refname.Validate(name); err != nil {
		return images.Image{}, err
	}
	if c == nil {
		return images.Image{}, fmt.Errorf("%w: nil containerd client", ErrInvalidOption)
	}
	ctx, done, err := c.WithLease(ctx)
	if err != nil {
		return images.Image{}, fmt.Errorf("registry: import %s: create lease: %w", name, err)
	}
	defer done(context.WithoutCancel(ctx))

	cs := c.ContentStore()
	for _, b := range a.Blobs() {
		if err := importBlob(ctx, cs, b); err != nil {
			return images.Image{}, operr.Errorf(err, "import %s", name)
		}
	}

	rec := images.Image{Name: name, Target: a.Descriptor(), Labels: o.labels}
	store := c.ImageService()
	img, err := store.Create(ctx, rec)
	if errdefs.IsAlreadyExists(err) {
		img, err = store.Update(ctx, rec)
	}
	if err != nil {
		return images.Image{}, fmt.Errorf("registry: import %s: image record: %w", name, err)
	}
	if o.unpack {
		if err := client.NewImageWithPlatform(c, img, platforms.Only(o.platform)).Unpack(ctx, o.snapshotter); err != nil {
			return img, fmt.Errorf("registry: import %s: unpack: %w", name, err)
		}
	}
	return img, nil
}

// importBlob writes b into cs with its labels, and sets the labels if cs already had it.
func importBlob(ctx context.Context, cs content.Store, b oci.Blob) error {
	desc := b.Descriptor()
	desc = ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}
	var (
		r      io.Reader = &lazyReader{blob: b}
		labels map[string]string
	)
	if isDocument(desc.MediaType) {
		data, err := oci.ReadAll(b, oci.MaxDocumentSize)
		if err != nil {
			return blobError("read", desc, err)
		}
		if labels, err = gcLabels(desc, data); err != nil {
			return err
		}
		r = bytes.NewReader(data)
	} else if l, ok := b.(interface{ DiffID() digest.Digest }); ok && l.DiffID() != "" {
		labels = map[string]string{labelUncompressed: l.DiffID().String()}
	}
	defer closeReader(r)

	ref := "dao-import-" + desc.Digest.String()
	if err := content.WriteBlob(ctx, cs, ref, r, desc, content.WithLabels(labels)); err != nil {
		return blobError("write", desc, err)
	}
	if !isDocument(desc.MediaType) {
		return nil
	}
	// WriteBlob sets no labels on a blob that was already there, and without them the
	// collector would take the blobs a manifest or index refers to.
	paths := make([]string, 0, len(labels))
	for k := range labels {
		paths = append(paths, "labels."+k)
	}
	if _, err := cs.Update(ctx, content.Info{Digest: desc.Digest, Labels: labels}, paths...); err != nil {
		return blobError("label", desc, err)
	}
	return nil
}

// isDocument reports whether a blob of mediaType is a manifest or index, which refers to
// other blobs.
func isDocument(mediaType string) bool {
	switch mediaType {
	case ocispec.MediaTypeImageManifest, oci.MediaTypeDockerManifest,
		ocispec.MediaTypeImageIndex, oci.MediaTypeDockerManifestList:
		return true
	}
	return false
}

// gcLabels returns the labels that tie a manifest to its config and layers, or an index to
// its manifests.
func gcLabels(desc ocispec.Descriptor, data []byte) (map[string]string, error) {
	labels := make(map[string]string)
	switch desc.MediaType {
	case ocispec.MediaTypeImageManifest, oci.MediaTypeDockerManifest:
		doc, err := oci.DecodeManifest(desc.MediaType, data)
		if err != nil {
			return nil, err
		}
		m := doc.Image
		labels[labelGCConfig] = m.Config.Digest.String()
		for i, l := range m.Layers {
			labels[labelGCLayer+strconv.Itoa(i)] = l.Digest.String()
		}
	default:
		doc, err := oci.DecodeManifest(desc.MediaType, data)
		if err != nil {
			return nil, err
		}
		ix := doc.Index
		for i, m := range ix.Manifests {
			labels[labelGCManifest+strconv.Itoa(i)] = m.Digest.String()
		}
	}
	return labels, nil
}

// lazyReader opens its blob on the first Read, so a blob that containerd already has is
// never opened. containerd verifies what it reads against the descriptor.
type lazyReader struct {
	blob oci.Blob
	r    io.ReadCloser
}

func (l *lazyReader) Read(p []byte) (int, error) {
	if l.r == nil {
		r, err := l.blob.Open()
		if err != nil {
			return 0, err
		}
		l.r = r
	}
	return l.r.Read(p)
}

func (l *lazyReader) Close() error {
	if l.r == nil {
		return nil
	}
	return l.r.Close()
}

// closeReader closes r if it is a Closer.
func closeReader(r io.Reader) {
	if c, ok := r.(io.Closer); ok {
		c.Close()
	}
}
