package remote

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opendao/dao/registry/internal/operr"
	"github.com/opendao/dao/registry/name"
	"github.com/opendao/dao/registry/oci"
)

// acceptManifests is the Accept header of manifest requests.
var acceptManifests = strings.Join(oci.ManifestMediaTypes(), ", ")

// Resolve returns the descriptor (media type, digest, size) of the manifest or index ref
// names, such as "127.0.0.1:5000/app:1" or "busybox" (docker.io/library/busybox:latest),
// asking mirrors with CapResolve first for a tag, those with CapPull for a digest. A
// reference with a digest must resolve to that digest. It fails with an error matching
// ErrManifestUnknown if no server has it.
func (c *Client) Resolve(ctx context.Context, ref string) (ocispec.Descriptor, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	var errs []error
	for _, ep := range c.endpoints(r.Registry, manifestCapability(r)) {
		desc, err := c.resolve(ctx, ep, r)
		if err == nil {
			return desc, nil
		}
		if ctx.Err() != nil || errors.Is(err, oci.ErrDigestMismatch) {
			return ocispec.Descriptor{}, fmt.Errorf("registry: resolve %s: %w", r, err)
		}
		errs = append(errs, err)
	}
	return ocispec.Descriptor{}, fmt.Errorf("registry: resolve %s: %w", r, endpointsError(errs))
}

// manifestCapability is what a mirror needs to serve r's manifest.
func manifestCapability(r name.Reference) Capability {
	if r.Digest != "" {
		return CapPull
	}
	return CapResolve
}

// resolve asks ep with HEAD, and with GET if the answer lacks the digest.
func (c *Client) resolve(ctx context.Context, ep *endpoint, r name.Reference) (ocispec.Descriptor, error) {
	resp, err := c.do(ctx, ep, &request{
		method: http.MethodHead,
		url:    ep.url(r.Repository+"/manifests/"+r.Identifier(), nil),
		header: http.Header{"Accept": {acceptManifests}},
		scopes: []string{pullScope(r)},
		ok:     []int{http.StatusOK},
	})
	if err != nil && !errors.Is(err, ErrUnsupported) {
		return ocispec.Descriptor{}, err
	}
	if err == nil {
		resp.Body.Close()
		dgst := digest.Digest(resp.Header.Get("Docker-Content-Digest"))
		size, serr := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
		mt := mediaTypeOf(resp)
		if dgst.Validate() == nil && serr == nil && size >= 0 && mt != "" && (r.Digest == "" || dgst.Algorithm() == r.Digest.Algorithm()) {
			if r.Digest != "" && dgst != r.Digest {
				return ocispec.Descriptor{}, fmt.Errorf("%w: %s answers digest %s", oci.ErrDigestMismatch, ep.host, dgst)
			}
			return ocispec.Descriptor{MediaType: mt, Digest: dgst, Size: size}, nil
		}
	}
	m, err := c.getManifest(ctx, ep, r, nil)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return m.Descriptor, nil
}

// mediaTypeOf returns the media type of an answer, without parameters.
func mediaTypeOf(resp *http.Response) string {
	mt, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	return strings.TrimSpace(mt)
}

// Manifest fetches and decodes the manifest or index ref names, verifying it against the
// reference's digest, or else against the digest the registry states.
func (c *Client) Manifest(ctx context.Context, ref string) (*oci.Manifest, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	return c.manifest(ctx, r, nil)
}

// FetchManifest fetches and decodes the manifest or index desc describes from repo, and
// verifies it against desc: digest, size and media type.
func (c *Client) FetchManifest(ctx context.Context, repo string, desc ocispec.Descriptor) (*oci.Manifest, error) {
	r, err := name.ParseRepository(repo)
	if err != nil {
		return nil, err
	}
	if err := checkDescriptor(desc); err != nil {
		return nil, err
	}
	return c.manifest(ctx, r.WithDigest(desc.Digest), &desc)
}

func (c *Client) manifest(ctx context.Context, r name.Reference, want *ocispec.Descriptor) (*oci.Manifest, error) {
	var errs []error
	for _, ep := range c.endpoints(r.Registry, manifestCapability(r)) {
		m, err := c.getManifest(ctx, ep, r, want)
		if err == nil {
			return m, nil
		}
		if ctx.Err() != nil {
			return nil, operr.Errorf(err, "manifest %s", r)
		}
		errs = append(errs, err)
	}
	return nil, operr.Errorf(endpointsError(errs), "manifest %s", r)
}

// getManifest fetches r's manifest from ep and verifies it. An answer whose body breaks or
// stalls is asked for again (getAll).
func (c *Client) getManifest(ctx context.Context, ep *endpoint, r name.Reference, want *ocispec.Descriptor) (*oci.Manifest, error) {
	limit, size := int64(oci.MaxManifestSize), int64(0)
	if want != nil {
		if want.Size > oci.MaxManifestSize {
			return nil, fmt.Errorf("%w: %w: manifest %s has %d bytes, more than the %d allowed", oci.ErrInvalidImage, oci.ErrTooLarge, want.Digest, want.Size, oci.MaxManifestSize)
		}
		limit, size = want.Size, want.Size
	}
	resp, data, err := c.getAll(ctx, ep, &request{
		method: http.MethodGet,
		url:    ep.url(r.Repository+"/manifests/"+r.Identifier(), nil),
		header: http.Header{"Accept": {acceptManifests}},
		scopes: []string{pullScope(r)},
		ok:     []int{http.StatusOK},
	}, limit, size)
	if errors.Is(err, oci.ErrTooLarge) {
		if want != nil {
			return nil, fmt.Errorf("%w: manifest from %s is longer than the %d bytes of its descriptor", oci.ErrSizeMismatch, ep.host, want.Size)
		}
		return nil, fmt.Errorf("%w: %w: manifest from %s is larger than %d bytes", oci.ErrInvalidImage, oci.ErrTooLarge, ep.host, oci.MaxManifestSize)
	}
	if errors.Is(err, errShortBody) && want != nil {
		return nil, fmt.Errorf("%w: manifest %s from %s: %w", oci.ErrSizeMismatch, want.Digest, ep.host, err)
	}
	if err != nil {
		return nil, err
	}
	// Verify before decoding: the bytes must be those the digest names.
	expect := r.Digest
	if expect == "" {
		if d := digest.Digest(resp.Header.Get("Docker-Content-Digest")); d.Validate() == nil {
			expect = d
		}
	}
	if expect != "" {
		if got := expect.Algorithm().FromBytes(data); got != expect {
			return nil, fmt.Errorf("%w: manifest %s from %s has digest %s", oci.ErrDigestMismatch, expect, ep.host, got)
		}
	}
	if want != nil && int64(len(data)) != want.Size {
		return nil, fmt.Errorf("%w: manifest %s from %s has %d bytes, its descriptor %d", oci.ErrSizeMismatch, want.Digest, ep.host, len(data), want.Size)
	}
	m, err := oci.DecodeManifest(mediaTypeOf(resp), data)
	if err != nil {
		return nil, err
	}
	if expect != "" {
		m.Descriptor.Digest = expect
	}
	if want != nil && want.MediaType != "" && want.MediaType != m.Descriptor.MediaType {
		return nil, fmt.Errorf("%w: manifest %s is a %s, its descriptor says %s", oci.ErrInvalidImage, want.Digest, m.Descriptor.MediaType, want.MediaType)
	}
	return m, nil
}
