package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opendao/dao/registry/name"
	"github.com/opendao/dao/registry/oci"
)

// Referrers lists the manifests in repo whose subject is the manifest of digest subject
// (signatures, SBOMs, attestations), keeping only those of artifactType unless it is "". It
// asks the referrers API, and when the registry lacks it (it answers 404), reads the fallback
// index tagged <algorithm>-<hex> that clients keep for such registries. No referrer is an
// empty list, not an error.
func (c *Client) Referrers(ctx context.Context, repo string, subject digest.Digest, artifactType string) ([]ocispec.Descriptor, error) {
	r, err := name.ParseRepository(repo)
	if err != nil {
		return nil, err
	}
	if err := subject.Validate(); err != nil {
		return nil, fmt.Errorf("%w: subject digest %q: %v", oci.ErrInvalidImage, subject, err)
	}
	descs, err := c.referrers(ctx, r, subject, artifactType)
	if err != nil {
		return nil, fmt.Errorf("registry: referrers of %s in %s: %w", subject, r.Name(), err)
	}
	return descs, nil
}

func (c *Client) referrers(ctx context.Context, r name.Reference, subject digest.Digest, artifactType string) ([]ocispec.Descriptor, error) {
	ep := c.endpoints(r.Registry, CapPull)
	up := ep[len(ep)-1] // the registry itself: mirrors may not keep referrers
	var q url.Values
	if artifactType != "" {
		q = url.Values{"artifactType": {artifactType}}
	}
	resp, body, err := c.getAll(ctx, up, &request{
		method: http.MethodGet,
		url:    up.url(r.Repository+"/referrers/"+subject.String(), q),
		header: http.Header{"Accept": {ocispec.MediaTypeImageIndex}},
		scopes: []string{pullScope(r)},
		ok:     []int{http.StatusOK},
	}, oci.MaxManifestSize, 0)
	if err == nil {
		if mt := mediaTypeOf(resp); mt == ocispec.MediaTypeImageIndex {
			var ix ocispec.Index
			if err := json.Unmarshal(body, &ix); err != nil {
				return nil, fmt.Errorf("%w: referrers index: %v", ErrInvalidResponse, err)
			}
			return filterArtifactType(ix.Manifests, artifactType), nil
		}
		// Not an index: the path is not the referrers API here.
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	ix, err := c.fallbackIndex(ctx, up, r, subject)
	if err != nil {
		return nil, err
	}
	return filterArtifactType(ix.Manifests, artifactType), nil
}

// filterArtifactType keeps the descriptors of artifactType, or all if it is "".
func filterArtifactType(descs []ocispec.Descriptor, artifactType string) []ocispec.Descriptor {
	out := []ocispec.Descriptor{}
	for _, d := range descs {
		if artifactType == "" || d.ArtifactType == artifactType {
			out = append(out, d)
		}
	}
	return out
}

// fallbackTag is the tag of subject's referrers index in the tag schema: "sha256-<hex>".
func fallbackTag(subject digest.Digest) string {
	t := subject.Algorithm().String() + "-" + subject.Encoded()
	if len(t) > 128 {
		t = t[:128]
	}
	return t
}

// fallbackIndex reads subject's referrers index in the tag schema, or an empty index if
// there is none.
func (c *Client) fallbackIndex(ctx context.Context, ep *endpoint, r name.Reference, subject digest.Digest) (ocispec.Index, error) {
	tag := r
	tag.Tag, tag.Digest = fallbackTag(subject), ""
	empty := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	m, err := c.getManifest(ctx, ep, tag, nil)
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrManifestUnknown) {
		return empty, nil
	}
	if err != nil {
		return empty, err
	}
	if m.Index == nil {
		return empty, fmt.Errorf("%w: tag %s is not an index", oci.ErrInvalidImage, tag.Tag)
	}
	return *m.Index, nil
}

// addFallbackReferrer adds referrer to subject's referrers index in the tag schema, for a
// registry without the referrers API.
func (c *Client) addFallbackReferrer(ctx context.Context, ep *endpoint, r name.Reference, subject ocispec.Descriptor, referrer ocispec.Descriptor) error {
	ix, err := c.fallbackIndex(ctx, ep, r, subject.Digest)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(ix.Manifests, func(d ocispec.Descriptor) bool { return d.Digest == referrer.Digest }) {
		return nil
	}
	ix.Manifests = append(ix.Manifests, referrer)
	ix.MediaType, ix.SchemaVersion = ocispec.MediaTypeImageIndex, 2
	data, err := json.Marshal(ix)
	if err != nil {
		return err
	}
	m, err := oci.DecodeManifest(ocispec.MediaTypeImageIndex, data)
	if err != nil {
		return err
	}
	tag := r
	tag.Tag, tag.Digest = fallbackTag(subject.Digest), ""
	_, err = c.pushManifest(ctx, ep, tag, m)
	return err
}
