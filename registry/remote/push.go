package remote

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opendao/dao/registry/internal/operr"
	"github.com/opendao/dao/registry/name"
	"github.com/opendao/dao/registry/oci"
	"golang.org/x/sync/errgroup"
)

// blobParallelism is how many blobs Push and Copy transfer at once.
const blobParallelism = 4

// PushManifest uploads a manifest or index, data of mediaType, to ref: under its tag, or
// under its digest (which data must have) when ref has no tag. The manifest is decoded and
// checked first (oci.DecodeManifest), and the blobs it refers to must be in the repository
// already. It returns the manifest's descriptor.
//
// A manifest with a subject is listed among its subject's referrers: by the registry, if it
// supports the referrers API (it answers with an OCI-Subject header), else by the client in
// the fallback index tagged <algorithm>-<hex of the subject's digest>.
func (c *Client) PushManifest(ctx context.Context, ref string, mediaType string, data []byte) (ocispec.Descriptor, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	m, err := oci.DecodeManifest(mediaType, data)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("registry: push manifest %s: %w", r, err)
	}
	desc, err := c.pushManifest(ctx, c.pushEndpoint(r.Registry), r, m)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("registry: push manifest %s: %w", r, err)
	}
	return desc, nil
}

// pushManifest puts m under r's tag, or under its digest when r has no tag, and keeps the
// referrers fallback index of its subject.
func (c *Client) pushManifest(ctx context.Context, ep *endpoint, r name.Reference, m *oci.Manifest) (ocispec.Descriptor, error) {
	desc := m.Descriptor
	if r.Digest != "" {
		if got := r.Digest.Algorithm().FromBytes(m.Raw); got != r.Digest {
			return ocispec.Descriptor{}, fmt.Errorf("%w: manifest has digest %s, the reference names %s", oci.ErrDigestMismatch, got, r.Digest)
		}
		desc.Digest = r.Digest
	}
	object := r.Tag
	if object == "" {
		object = desc.Digest.String()
	}
	resp, err := c.do(ctx, ep, &request{
		method: http.MethodPut,
		url:    ep.url(r.Repository+"/manifests/"+object, nil),
		header: http.Header{"Content-Type": {desc.MediaType}},
		body:   func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(m.Raw)), nil },
		size:   int64(len(m.Raw)),
		scopes: []string{pushScope(r)},
		ok:     []int{http.StatusCreated, http.StatusOK},
	})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	resp.Body.Close()
	if d := digest.Digest(resp.Header.Get("Docker-Content-Digest")); d.Validate() == nil && d.Algorithm() == desc.Digest.Algorithm() && d != desc.Digest {
		return ocispec.Descriptor{}, fmt.Errorf("%w: the registry stored the manifest as %s, not %s", oci.ErrDigestMismatch, d, desc.Digest)
	}
	if subject := m.Subject(); subject != nil && resp.Header.Get("OCI-Subject") == "" {
		if err := c.addFallbackReferrer(ctx, ep, r, *subject, m.Referrer(desc)); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("list the manifest among the referrers of %s: %w", subject.Digest, err)
		}
	}
	return desc, nil
}

// Push uploads an artifact to ref: an *oci.Image or *oci.Index that the builder made, or one that
// layout.Read read. Blobs go first, several at once, then manifests, then the root under
// ref's tag (or its digest). Blobs the repository has already are not sent again. It returns
// the root's descriptor.
func (c *Client) Push(ctx context.Context, ref string, a oci.Artifact) (ocispec.Descriptor, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc, err := c.push(ctx, r, a)
	if err != nil {
		return ocispec.Descriptor{}, operr.Errorf(err, "push %s", r)
	}
	return desc, nil
}

func (c *Client) push(ctx context.Context, r name.Reference, a oci.Artifact) (ocispec.Descriptor, error) {
	ep := c.pushEndpoint(r.Registry)
	root := a.Descriptor()
	var manifests []oci.Blob
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(blobParallelism)
	for _, b := range a.Blobs() {
		d := b.Descriptor()
		if oci.IsManifestType(d.MediaType) || oci.IsIndexType(d.MediaType) {
			manifests = append(manifests, b)
			continue
		}
		g.Go(func() error { return c.pushBlob(gctx, ep, r, b, "") })
	}
	if err := g.Wait(); err != nil {
		return ocispec.Descriptor{}, err
	}
	var out ocispec.Descriptor
	for _, b := range manifests {
		d := b.Descriptor()
		data, err := oci.ReadAll(b, oci.MaxManifestSize)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		m, err := oci.DecodeManifest(d.MediaType, data)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		target := r.WithDigest(d.Digest)
		target.Tag = ""
		if d.Digest == root.Digest {
			target = r
		}
		if out, err = c.pushManifest(ctx, ep, target, m); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
	return out, nil
}
