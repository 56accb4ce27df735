package remote

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Capability is what a mirror may be used for, as in containerd's hosts.toml.
type Capability uint8

const (
	// CapPull lets a mirror serve blobs and manifests by digest.
	CapPull Capability = 1 << iota
	// CapResolve lets a mirror resolve tags to digests. A mirror may serve stale tags, so
	// give it this capability only when it follows its upstream closely.
	CapResolve
	// CapPush lets the client push to a mirror instead of the registry itself.
	CapPush
)

// HostConfig says how to reach one registry: over plain HTTP or with which certificates, and
// through which mirrors. A registry without a HostConfig is reached over HTTPS, verified
// against the system's roots, with no mirror; one on a loopback address (127.0.0.0/8, ::1,
// localhost) as containerd's resolver and docker reach it: over HTTPS without verifying its
// certificate, and over plain HTTP if it answers HTTPS in plain HTTP (after one HTTPS
// attempt, then plain HTTP for the rest of the client's life); only HTTPS on port 443 or
// none, only plain HTTP on port 80. RootCAs turns that off (HTTPS, verified with them), and
// PlainHTTP makes it plain HTTP at once.
type HostConfig struct {
	// Mirrors are tried in order, before the registry itself, for what their capabilities
	// allow; when a mirror fails or lacks the content, the next is tried, then the registry.
	Mirrors []Mirror
	// PlainHTTP reaches the registry over plain HTTP. The default is HTTPS.
	PlainHTTP bool
	// RootCAs verifies the registry's certificate instead of the system's roots.
	RootCAs *x509.CertPool
	// SkipVerify accepts any certificate from the registry. Use it only for tests.
	SkipVerify bool
	// Certificates are the client certificates offered to the registry (TLS client
	// authentication). The default is none.
	Certificates []tls.Certificate
	// Header is sent with every request to the registry, beside the client's own.
	Header http.Header
	// Server is the base URL of the server that serves the registry itself, in place of
	// https://HOST (or http://HOST with PlainHTTP), as "server" of containerd's hosts.toml:
	// "https://registry-1.docker.io", "http://10.0.0.5:5000/prefix"; its path, if any, is
	// kept before "/v2/". The default is the registry's host.
	Server string
}

// DefaultHostsKey is the key of WithHosts's map whose HostConfig applies to every registry
// that has none of its own, as the "_default" directory of containerd's hosts directory
// does. LoadHostsDir returns it under this key.
const DefaultHostsKey = "_default"

// Mirror is a server that serves a registry's content in its place.
type Mirror struct {
	// URL is the mirror's base URL, "https://mirror.example.com" or
	// "http://127.0.0.1:5001"; its path, if any, is kept before "/v2/". Plain HTTP is used
	// only when the scheme says so.
	URL string
	// Capabilities are what the mirror is used for. The default (zero) is
	// CapPull|CapResolve.
	Capabilities Capability
	// RootCAs verifies the mirror's certificate instead of the system's roots.
	RootCAs *x509.CertPool
	// SkipVerify accepts any certificate from the mirror. Use it only for tests.
	SkipVerify bool
	// Certificates are the client certificates offered to the mirror.
	Certificates []tls.Certificate
	// Header is sent with every request to the mirror, beside the client's own.
	Header http.Header
}

// endpoint is one server to send a registry's requests to: a mirror or the registry itself.
type endpoint struct {
	// host is the server's host[:port]: the key for credentials, tokens and limits.
	host string
	// base is scheme://host[/path], to which "/v2/..." is appended.
	base string
	caps Capability
	// ns is the registry a mirror serves, sent as the "ns" query parameter as containerd
	// does; "" for the registry itself.
	ns     string
	client *http.Client
	header http.Header // sent with every request; nil for none
}

// url returns the endpoint's URL of path, which starts after "/v2/".
func (e *endpoint) url(path string, query url.Values) string {
	if e.ns != "" {
		if query == nil {
			query = url.Values{}
		}
		query.Set("ns", e.ns)
	}
	u := e.base + "/v2/" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	return u
}

// checkHosts validates a hosts map.
func checkHosts(hosts map[string]HostConfig) error {
	for reg, hc := range hosts {
		if reg == "" || strings.ContainsAny(reg, "/ ") {
			return fmt.Errorf("%w: host %q is not a registry host[:port]", ErrInvalidOption, reg)
		}
		if hc.Server != "" {
			u, err := url.Parse(hc.Server)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
				return fmt.Errorf("%w: server %q of %s is not an http(s) URL", ErrInvalidOption, hc.Server, reg)
			}
		}
		for _, m := range hc.Mirrors {
			u, err := url.Parse(m.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
				return fmt.Errorf("%w: mirror %q of %s is not an http(s) URL", ErrInvalidOption, m.URL, reg)
			}
			if m.Capabilities&^(CapPull|CapResolve|CapPush) != 0 {
				return fmt.Errorf("%w: mirror %q of %s: unknown capabilities %#x", ErrInvalidOption, m.URL, reg, m.Capabilities)
			}
		}
	}
	return nil
}

// endpoints returns the servers for registry reg that have capability want, mirrors first.
func (c *Client) endpoints(reg string, want Capability) []*endpoint {
	var eps []*endpoint
	for _, ep := range c.hostEndpoints(reg) {
		if ep.caps&want != 0 {
			eps = append(eps, ep)
		}
	}
	return eps
}

// hostEndpoints builds (once) the servers of registry reg: its mirrors, then itself.
func (c *Client) hostEndpoints(reg string) []*endpoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	if eps, ok := c.eps[reg]; ok {
		return eps
	}
	hc, ok := c.opts.hosts[reg]
	if !ok {
		hc = c.opts.hosts[DefaultHostsKey]
	}
	var eps []*endpoint
	for _, m := range hc.Mirrors {
		u, _ := url.Parse(m.URL) // checked by checkHosts
		caps := m.Capabilities
		if caps == 0 {
			caps = CapPull | CapResolve
		}
		eps = append(eps, &endpoint{
			host:   u.Host,
			base:   strings.TrimSuffix(m.URL, "/"),
			caps:   caps,
			ns:     reg,
			client: c.httpClient(m.RootCAs, m.SkipVerify, m.Certificates),
			header: m.Header,
		})
	}
	scheme, host := "https", reg
	skipVerify, fallback := hc.SkipVerify, false
	switch {
	case hc.PlainHTTP:
		scheme = "http"
	case hc.RootCAs == nil && isLoopback(reg):
		scheme, skipVerify, fallback = loopbackScheme(reg)
	}
	if reg == "docker.io" {
		host = "registry-1.docker.io"
	}
	base := scheme + "://" + host
	if hc.Server != "" {
		u, _ := url.Parse(hc.Server) // checked by checkHosts
		host, base = u.Host, strings.TrimSuffix(hc.Server, "/")
		skipVerify, fallback = hc.SkipVerify, false
	}
	client := c.httpClient(hc.RootCAs, skipVerify, hc.Certificates)
	if fallback {
		client = withHTTPFallback(client)
	}
	eps = append(eps, &endpoint{
		host:   host,
		base:   base,
		caps:   CapPull | CapResolve | CapPush,
		client: client,
		header: hc.Header,
	})
	c.eps[reg] = eps
	return eps
}

// httpClient returns the client's HTTP client, or a copy whose transport verifies with
// roots, skips verification or offers client certificates.
func (c *Client) httpClient(roots *x509.CertPool, skipVerify bool, certs []tls.Certificate) *http.Client {
	if roots == nil && !skipVerify && len(certs) == 0 {
		return c.opts.httpClient
	}
	base, ok := c.opts.httpClient.Transport.(*http.Transport)
	if !ok {
		// Checked by NewClient: TLS settings need an *http.Transport.
		return c.opts.httpClient
	}
	t := base.Clone()
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{}
	}
	t.TLSClientConfig.RootCAs = roots
	t.TLSClientConfig.InsecureSkipVerify = skipVerify
	t.TLSClientConfig.Certificates = append(t.TLSClientConfig.Certificates, certs...)
	hc := *c.opts.httpClient
	hc.Transport = t
	return &hc
}
