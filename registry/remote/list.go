package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/opendao/dao/registry/name"
)

// ListOption configures Tags and Catalog.
type ListOption func(*listOptions) error

type listOptions struct {
	pageSize int
}

// WithPageSize asks the registry for at most n entries a page. The default (0) lets the
// registry choose.
func WithPageSize(n int) ListOption {
	return func(o *listOptions) error {
		if n < 0 {
			return fmt.Errorf("%w: WithPageSize: negative page size %d", ErrInvalidOption, n)
		}
		o.pageSize = n
		return nil
	}
}

// Tags lists the tags of repo, following the registry's pages (its Link headers) to the end.
func (c *Client) Tags(ctx context.Context, repo string, opts ...ListOption) ([]string, error) {
	r, err := name.ParseRepository(repo)
	if err != nil {
		return nil, err
	}
	var page struct {
		Tags []string `json:"tags"`
	}
	var tags []string
	err = c.list(ctx, r, r.Repository+"/tags/list", []string{pullScope(r)}, opts, func(body io.Reader) (int, error) {
		page.Tags = nil
		if err := json.NewDecoder(body).Decode(&page); err != nil {
			return 0, err
		}
		tags = append(tags, page.Tags...)
		return len(page.Tags), nil
	})
	if err != nil {
		return nil, fmt.Errorf("registry: tags of %s: %w", r.Name(), err)
	}
	return tags, nil
}

// Catalog lists the repositories of registry ("127.0.0.1:5000"), following its pages to the
// end. Many registries refuse it or list only what the credentials may read.
func (c *Client) Catalog(ctx context.Context, registry string, opts ...ListOption) ([]string, error) {
	if registry == "" || strings.ContainsAny(registry, "/ ") {
		return nil, fmt.Errorf("%w: registry %q is not a host[:port]", name.ErrInvalidName, registry)
	}
	var page struct {
		Repositories []string `json:"repositories"`
	}
	var repos []string
	r := name.Reference{Registry: registry}
	err := c.list(ctx, r, "_catalog", []string{"registry:catalog:*"}, opts, func(body io.Reader) (int, error) {
		page.Repositories = nil
		if err := json.NewDecoder(body).Decode(&page); err != nil {
			return 0, err
		}
		repos = append(repos, page.Repositories...)
		return len(page.Repositories), nil
	})
	if err != nil {
		return nil, fmt.Errorf("registry: catalog of %s: %w", registry, err)
	}
	return repos, nil
}

// maxPages bounds how many pages a listing follows, against a registry whose links loop.
const maxPages = 100000

// maxListPage is the largest page of a listing the client reads.
const maxListPage = 16 << 20

// list GETs path and the pages its Link headers lead to, handing each body to page.
func (c *Client) list(ctx context.Context, r name.Reference, path string, scopes []string, opts []ListOption, page func(io.Reader) (int, error)) error {
	var o listOptions
	for _, opt := range opts {
		if opt == nil {
			return fmt.Errorf("%w: nil option", ErrInvalidOption)
		}
		if err := opt(&o); err != nil {
			return err
		}
	}
	ep := c.pushEndpoint(r.Registry) // the registry itself, or a mirror it is pushed to
	var q url.Values
	if o.pageSize > 0 {
		q = url.Values{"n": {strconv.Itoa(o.pageSize)}}
	}
	next := ep.url(path, q)
	for i := 0; next != "" && i < maxPages; i++ {
		resp, body, err := c.getAll(ctx, ep, &request{method: http.MethodGet, url: next, scopes: scopes, ok: []int{http.StatusOK}}, maxListPage, 0)
		if err != nil {
			return err
		}
		n, err := page(bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalidResponse, redact(next), err)
		}
		link, err := nextLink(resp)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		next = link
	}
	return nil
}

// nextLink returns the URL of the answer's Link header with rel="next", resolved against
// the request's URL, or "" if there is none.
func nextLink(resp *http.Response) (string, error) {
	for _, h := range resp.Header.Values("Link") {
		for _, l := range strings.Split(h, ",") {
			target, params, _ := strings.Cut(strings.TrimSpace(l), ";")
			if !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) && !strings.Contains(params, "rel=next") {
				continue
			}
			target = strings.TrimSpace(target)
			if !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				return "", fmt.Errorf("%w: Link header %q", ErrInvalidResponse, h)
			}
			u, err := resp.Request.URL.Parse(target[1 : len(target)-1])
			if err != nil {
				return "", fmt.Errorf("%w: Link header %q: %v", ErrInvalidResponse, h, err)
			}
			return u.String(), nil
		}
	}
	return "", nil
}
