package remote

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/opencontainers/go-digest"
	"github.com/opendao/dao/registry/internal/operr"
	"github.com/opendao/dao/registry/name"
	"github.com/opendao/dao/registry/oci"
)

// Delete deletes the manifest ref names from its repository. A reference with a digest
// deletes that manifest, and with it every tag that points to it; a reference with only a
// tag deletes the tag, which registries that implement OCI distribution 1.1 allow and others
// refuse with an error matching ErrUnsupported (delete by digest there). Blobs stay until
// the registry collects garbage.
func (c *Client) Delete(ctx context.Context, ref string) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	ep := c.pushEndpoint(r.Registry)
	err = c.delete(ctx, ep, ep.url(r.Repository+"/manifests/"+r.Identifier(), nil), r)
	var re *ResponseError
	if r.Digest == "" && errors.As(err, &re) && (re.StatusCode == http.StatusBadRequest || re.StatusCode == http.StatusMethodNotAllowed) {
		// Distribution 2.8 takes the tag for a malformed digest.
		return fmt.Errorf("registry: delete %s: %w: the registry deletes manifests by digest only: %w", r, ErrUnsupported, err)
	}
	if err != nil {
		return operr.Errorf(err, "delete %s", r)
	}
	return nil
}

// DeleteBlob deletes the blob of digest dgst from repo.
func (c *Client) DeleteBlob(ctx context.Context, repo string, dgst digest.Digest) error {
	r, err := name.ParseRepository(repo)
	if err != nil {
		return err
	}
	if err := dgst.Validate(); err != nil {
		return fmt.Errorf("%w: digest %q: %v", oci.ErrInvalidImage, dgst, err)
	}
	ep := c.pushEndpoint(r.Registry)
	if err := c.delete(ctx, ep, ep.url(r.Repository+"/blobs/"+dgst.String(), nil), r); err != nil {
		return fmt.Errorf("registry: delete blob %s from %s: %w", dgst, r.Name(), err)
	}
	return nil
}

func (c *Client) delete(ctx context.Context, ep *endpoint, url string, r name.Reference) error {
	resp, err := c.do(ctx, ep, &request{
		method: http.MethodDelete,
		url:    url,
		scopes: []string{"repository:" + r.Repository + ":delete"},
		ok:     []int{http.StatusAccepted, http.StatusOK, http.StatusNoContent},
	})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}
