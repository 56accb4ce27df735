package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// acceptManifests is the Accept header of manifest requests.
var acceptManifests = strings.Join(manifestMediaTypes, ", ")

// Resolve returns the descriptor (media type, digest, size) of the manifest or index ref
// names, such as "127.0.0.1:5000/app:1" or "busybox" (docker.io/library/busybox:latest),
// asking mirrors with CapResolve first for a tag, those with CapPull for a digest. A
// reference with a digest must resolve to that digest. It fails with an error matching
// ErrManifestUnknown if no server has it.
func (c *Client) Resolve(ctx context.Context, ref string) (ocispec.Descriptor, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	var errs []error
	for _, ep := range c.endpoints(r.Registry, manifestCapability(r)) {
		desc, err := c.resolve(ctx, ep, r)
		if err == nil {
			return desc, nil
		}
		if ctx.Err() != nil || errors.Is(err, ErrDigestMismatch) {
			return ocispec.Descriptor{}, fmt.Errorf("registry: resolve %s: %w", r, err)
		}
		errs = append(errs, err)
	}
	return ocispec.Descriptor{}, fmt.Errorf("registry: resolve %s: %w", r, endpointsError(errs))
}

// manifestCapability is what a mirror needs to serve r's manifest.
func manifestCapability(r Reference) Capability {
	if r.Digest != "" {
		return CapPull
	}
	return CapResolve
}

// resolve asks ep with HEAD, and with GET if the answer lacks the digest.
func (c *Client) resolve(ctx context.Context, ep *endpoint, r Reference) (ocispec.Descriptor, error) {
	resp, err := c.do(ctx, ep, &request{
		method: http.MethodHead,
		url:    ep.url(r.Repository+"/manifests/"+r.object(), nil),
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
				return ocispec.Descriptor{}, fmt.Errorf("%w: %s answers digest %s", ErrDigestMismatch, ep.host, dgst)
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
func (c *Client) Manifest(ctx context.Context, ref string) (*Manifest, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return nil, err
	}
	return c.manifest(ctx, r, nil)
}

// FetchManifest fetches and decodes the manifest or index desc describes from repo, and
// verifies it against desc: digest, size and media type.
func (c *Client) FetchManifest(ctx context.Context, repo string, desc ocispec.Descriptor) (*Manifest, error) {
	r, err := parseRepository(repo)
	if err != nil {
		return nil, err
	}
	if err := checkDescriptor(desc); err != nil {
		return nil, err
	}
	return c.manifest(ctx, r.WithDigest(desc.Digest), &desc)
}

func (c *Client) manifest(ctx context.Context, r Reference, want *ocispec.Descriptor) (*Manifest, error) {
	var errs []error
	for _, ep := range c.endpoints(r.Registry, manifestCapability(r)) {
		m, err := c.getManifest(ctx, ep, r, want)
		if err == nil {
			return m, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("registry: manifest %s: %w", r, err)
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("registry: manifest %s: %w", r, endpointsError(errs))
}

// getManifest fetches r's manifest from ep and verifies it. An answer whose body breaks or
// stalls is asked for again (getAll).
func (c *Client) getManifest(ctx context.Context, ep *endpoint, r Reference, want *ocispec.Descriptor) (*Manifest, error) {
	limit, size := int64(maxManifest), int64(0)
	if want != nil {
		if want.Size > maxManifest {
			return nil, fmt.Errorf("%w: %w: manifest %s has %d bytes, more than the %d allowed", ErrInvalidImage, ErrTooLarge, want.Digest, want.Size, maxManifest)
		}
		limit, size = want.Size, want.Size
	}
	resp, data, err := c.getAll(ctx, ep, &request{
		method: http.MethodGet,
		url:    ep.url(r.Repository+"/manifests/"+r.object(), nil),
		header: http.Header{"Accept": {acceptManifests}},
		scopes: []string{pullScope(r)},
		ok:     []int{http.StatusOK},
	}, limit, size)
	if errors.Is(err, ErrTooLarge) {
		if want != nil {
			return nil, fmt.Errorf("%w: manifest from %s is longer than the %d bytes of its descriptor", ErrSizeMismatch, ep.host, want.Size)
		}
		return nil, fmt.Errorf("%w: %w: manifest from %s is larger than %d bytes", ErrInvalidImage, ErrTooLarge, ep.host, maxManifest)
	}
	if errors.Is(err, errShortBody) && want != nil {
		return nil, fmt.Errorf("%w: manifest %s from %s: %w", ErrSizeMismatch, want.Digest, ep.host, err)
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
			return nil, fmt.Errorf("%w: manifest %s from %s has digest %s", ErrDigestMismatch, expect, ep.host, got)
		}
	}
	if want != nil && int64(len(data)) != want.Size {
		return nil, fmt.Errorf("%w: manifest %s from %s has %d bytes, its descriptor %d", ErrSizeMismatch, want.Digest, ep.host, len(data), want.Size)
	}
	m, err := DecodeManifest(mediaTypeOf(resp), data)
	if err != nil {
		return nil, err
	}
	if expect != "" {
		m.Descriptor.Digest = expect
	}
	if want != nil && want.MediaType != "" && want.MediaType != m.Descriptor.MediaType {
		return nil, fmt.Errorf("%w: manifest %s is a %s, its descriptor says %s", ErrInvalidImage, want.Digest, m.Descriptor.MediaType, want.MediaType)
	}
	return m, nil
}

// SelectPlatform returns the descriptor of index's image manifest that suits platform best,
// as containerd chooses: the same OS and architecture, and the closest compatible variant
// (an arm64 host also takes arm/v8). Among equals the first listed wins. It fails with
// ErrNoPlatform if none suits.
func SelectPlatform(index ocispec.Index, platform ocispec.Platform) (ocispec.Descriptor, error) {
	match := platforms.Only(platform)
	best := -1
	for i, d := range index.Manifests {
		if d.Platform == nil || !isManifestType(d.MediaType) || !match.Match(*d.Platform) {
			continue
		}
		if best < 0 || match.Less(*d.Platform, *index.Manifests[best].Platform) {
			best = i
		}
	}
	if best < 0 {
		return ocispec.Descriptor{}, fmt.Errorf("%w: %s among %d manifests", ErrNoPlatform, platforms.Format(platform), len(index.Manifests))
	}
	return index.Manifests[best], nil
}
