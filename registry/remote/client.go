package remote

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync"

	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
)

// Client talks to OCI registries with the distribution API: it resolves references,
// fetches and pushes manifests and blobs, lists tags and repositories, deletes, finds
// referrers and copies images between registries and OCI layouts. Its options say how to
// reach each registry (mirrors, plain HTTP, certificates), how to authenticate, how to retry
// and how fast to go. A Client is safe for simultaneous use; make one and share it, so that
// connections, tokens and downloads are shared too.
type Client struct {
	opts    clientOptions
	creds   map[string]Credentials
	helpers *credHelpers // of the docker config; nil for none

	mu        sync.Mutex
	eps       map[string][]*endpoint
	hosts     map[string]*hostState
	downloads map[string]*download

	tokens singleflight.Group
}

// hostState is what the client keeps per host: its limits and what it learned of its auth.
type hostState struct {
	limiter *rate.Limiter // nil: no rate limit
	slots   chan struct{} // one per request in flight
	auth    authState
}

// NewClient returns a client configured by opts. It fails with ErrInvalidOption if an option
// is refused, or if a docker config named by WithDockerConfig cannot be read.
func NewClient(opts ...Option) (*Client, error) {
	o := defaultClientOptions()
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("%w: nil option", ErrInvalidOption)
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.httpClient == nil {
		o.httpClient = defaultHTTPClient()
	}
	if _, ok := o.httpClient.Transport.(*http.Transport); !ok {
		for reg, hc := range o.hosts {
			tls := hc.RootCAs != nil || hc.SkipVerify || len(hc.Certificates) > 0
			for _, m := range hc.Mirrors {
				tls = tls || m.RootCAs != nil || m.SkipVerify || len(m.Certificates) > 0
			}
			if tls {
				return nil, fmt.Errorf("%w: TLS settings for %s need an HTTP client whose Transport is an *http.Transport", ErrInvalidOption, reg)
			}
		}
	}
	if o.spoolDir == "" {
		o.spoolDir = os.TempDir()
	}
	c := &Client{
		opts:      o,
		creds:     make(map[string]Credentials),
		eps:       make(map[string][]*endpoint),
		hosts:     make(map[string]*hostState),
		downloads: make(map[string]*download),
	}
	if o.dockerConfig != "" {
		dc, helpers, err := readDockerConfig(o.dockerConfig, o.dockerOptional)
		if err != nil {
			return nil, err
		}
		c.helpers = helpers
		for h, cr := range dc {
			c.creds[h] = cr
		}
	}
	return c, nil
}

// Close closes the client's idle connections. Downloads still being read go on until their
// readers are closed.
func (c *Client) Close() error {
	c.opts.httpClient.CloseIdleConnections()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, eps := range c.eps {
		for _, ep := range eps {
			ep.client.CloseIdleConnections()
		}
	}
	return nil
}

// host returns the state of host, creating it on first use.
func (c *Client) host(host string) *hostState {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.hosts[host]
	if !ok {
		h = &hostState{slots: make(chan struct{}, c.opts.maxConcurrency)}
		if l, ok := c.opts.rateLimits[host]; ok {
			h.limiter = rate.NewLimiter(rate.Limit(l.rps), l.burst)
		}
		c.hosts[host] = h
	}
	return h
}

// credentials returns the credentials for host: those of WithCredentials, of the
// credentials function, or of the docker config (its credential helper for the host, then
// its "auths"), in that order; zero for none. A credential helper that fails is an error
// (a *CredentialHelperError), which retrying does not fix.
func (c *Client) credentials(ctx context.Context, host string) (Credentials, error) {
	key := dockerConfigHost(host)
	if cr, ok := c.opts.creds[key]; ok {
		return cr, nil
	}
	if c.opts.credsFunc != nil {
		cr, err := c.opts.credsFunc(ctx, host)
		if err != nil {
			return Credentials{}, fmt.Errorf("registry: credentials for %s: %w", host, err)
		}
		if !cr.empty() {
			return cr, nil
		}
	}
	cr, found, err := c.helpers.get(ctx, key)
	if err != nil {
		return Credentials{}, &permanentError{err}
	}
	if found {
		return cr, nil
	}
	return c.creds[key], nil
}
