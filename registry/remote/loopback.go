package remote

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
)

// isLoopback reports whether host (host[:port]) is "localhost" or a loopback address
// (127.0.0.0/8, ::1), which containerd's resolver and docker reach without TLS
// verification and over plain HTTP when the registry speaks it.
func isLoopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loopbackScheme returns how a loopback registry without settings is reached, as
// containerd's docker resolver does (core/remotes/docker/config.ConfigureHosts): on port
// 80 plain HTTP; on port 443 or none HTTPS, unverified; on any other port, where the
// protocol is ambiguous, HTTPS unverified first, then plain HTTP if the registry answers in
// it.
func loopbackScheme(host string) (scheme string, skipVerify, fallback bool) {
	_, port, err := net.SplitHostPort(host)
	if err != nil {
		port = ""
	}
	switch port {
	case "80":
		return "http", false, false
	case "", "443":
		return "https", true, false
	}
	return "https", true, true
}

// withHTTPFallback returns a copy of hc whose requests to a loopback host that answers
// HTTPS in plain HTTP go again over plain HTTP, and go so from then on. It is containerd's
// docker.NewHTTPFallback, for loopback hosts only: a request is sent again only when the
// TLS handshake failed, before its body was read.
func withHTTPFallback(hc *http.Client) *http.Client {
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	c := *hc
	c.Transport = &httpFallback{rt: rt, plain: make(map[string]bool)}
	return &c
}

// httpFallback is the transport of withHTTPFallback.
type httpFallback struct {
	rt    http.RoundTripper
	mu    sync.Mutex
	plain map[string]bool // the hosts that answered HTTPS in plain HTTP
}

func (f *httpFallback) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != "https" || !isLoopback(r.URL.Host) {
		return f.rt.RoundTrip(r)
	}
	f.mu.Lock()
	plain := f.plain[r.URL.Host]
	f.mu.Unlock()
	pr := *r
	if !plain {
		resp, err := f.rt.RoundTrip(r)
		if !answeredInPlainHTTP(err) {
			return resp, err
		}
		f.mu.Lock()
		f.plain[r.URL.Host] = true
		f.mu.Unlock()
		if r.Body != nil && r.Body != http.NoBody {
			if r.GetBody == nil {
				return nil, err
			}
			body, gerr := r.GetBody()
			if gerr != nil {
				return nil, gerr
			}
			pr.Body = body
		}
	}
	u := *r.URL
	u.Scheme = "http"
	pr.URL = &u
	return f.rt.RoundTrip(&pr)
}

// answeredInPlainHTTP reports whether err is that of a TLS handshake answered in plain
// HTTP.
func answeredInPlainHTTP(err error) bool {
	if err == nil {
		return false
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) && string(rh.RecordHeader[:]) == "HTTP/" {
		return true
	}
	return strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// CloseIdleConnections closes the idle connections of the transport underneath, for
// Client.Close.
func (f *httpFallback) CloseIdleConnections() {
	if c, ok := f.rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
