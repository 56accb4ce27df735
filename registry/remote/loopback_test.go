package remote_test

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"github.com/containerd/errdefs"
	"go.uber.org/goleak"

	"github.com/opendao/dao/registry/internal/regtest"
	"github.com/opendao/dao/registry/registrytest"
	"github.com/opendao/dao/registry/remote"
)

// TestLoopbackRegistries reaches registries on loopback addresses without any setting, as
// containerd's resolver and docker do: a plain HTTP one after one HTTPS attempt (for pushes
// too, whose first request may have a body), a TLS one without verifying its self-signed
// certificate, and one whose RootCAs say to verify it, verified.
func TestLoopbackRegistries(t *testing.T) {
	ctx := context.Background()
	img := regtest.Image(t, "amd64")
	plain := regtest.StartMemRegistry(t)
	_, port, _ := net.SplitHostPort(plain.Addr)
	reg, err := registrytest.New()
	if err != nil {
		t.Fatal(err)
	}
	tlsSrv := httptest.NewTLSServer(reg)
	t.Cleanup(tlsSrv.Close)
	tlsAddr := tlsSrv.Listener.Addr().String()
	roots := x509.NewCertPool()
	roots.AddCert(tlsSrv.Certificate())

	for _, tc := range []struct {
		name, addr string
		opts       []remote.Option
	}{
		{"plain http 127.0.0.1", plain.Addr, nil},
		{"plain http localhost", "localhost:" + port, nil},
		{"tls unverified", tlsAddr, nil},
		{"tls verified with RootCAs", tlsAddr, []remote.Option{remote.WithHosts(map[string]remote.HostConfig{tlsAddr: {RootCAs: roots}})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			c, err := remote.NewClient(append([]remote.Option{regtest.QuickRetry()}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				// Close closes the connections of the fallback's transport too.
				c.Close()
				goleak.VerifyNone(t, ignore)
			}()
			ref := tc.addr + "/loop/" + strings.ToLower(strings.ReplaceAll(tc.name, " ", "-")) + ":1"
			desc, err := c.Push(ctx, ref, img)
			if err != nil {
				t.Fatalf("Push %s: %v", ref, err)
			}
			m, err := c.Manifest(ctx, ref)
			if err != nil {
				t.Fatalf("Manifest %s: %v", ref, err)
			}
			if m.Descriptor.Digest != desc.Digest {
				t.Errorf("Manifest digest %s, want %s", m.Descriptor.Digest, desc.Digest)
			}
		})
	}

	// With RootCAs that do not sign its certificate, a loopback TLS registry is refused,
	// with a message that says what to give.
	c, err := remote.NewClient(regtest.QuickRetry(), remote.WithHosts(map[string]remote.HostConfig{tlsAddr: {RootCAs: x509.NewCertPool()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Manifest(ctx, tlsAddr+"/loop/x:1")
	if !errors.Is(err, remote.ErrUntrusted) || !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), "ca_file") {
		t.Errorf("Manifest with the wrong RootCAs = %v, want ErrUntrusted naming ca_file", err)
	}
}

// TestConnectErrors checks that failing to reach a registry gives one line that says what
// to do, and stays inspectable: the sentinel, its errdefs class and the cause.
func TestConnectErrors(t *testing.T) {
	ctx := context.Background()
	plain := regtest.StartMemRegistry(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()

	// A dialer that resolves names as the test says: "plain.test" is the plain HTTP
	// registry (not on a loopback name, so no fallback), "nosuch.test" does not exist.
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		switch host {
		case "plain.test":
			return (&net.Dialer{}).DialContext(ctx, network, plain.Addr)
		case "nosuch.test":
			return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}}
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = dial
	c, err := remote.NewClient(regtest.QuickRetry(), remote.WithHTTPClient(&http.Client{Transport: tr}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	for _, tc := range []struct {
		ref   string
		want  string
		is    error
		class func(error) bool
	}{
		{"nosuch.test/app:1", "registry: cannot reach nosuch.test: no such host (nosuch.test does not resolve): check the registry's name and this machine's DNS", remote.ErrUnreachable, errdefs.IsUnavailable},
		{refused + "/app:1", "registry: cannot reach " + refused + ": connection refused: is the registry running, and listening on that port?", syscall.ECONNREFUSED, errdefs.IsUnavailable},
		{"plain.test:5000/app:1", "registry: plain.test:5000 answers in plain HTTP, not HTTPS: if the network to it is trusted, reach it over plain HTTP (dao pull --insecure plain.test:5000, plain_http in registries.yaml, HostConfig.PlainHTTP)", remote.ErrPlainHTTP, errdefs.IsFailedPrecondition},
	} {
		_, err := c.Manifest(ctx, tc.ref)
		if err == nil || err.Error() != "registry: manifest "+tc.ref+": "+strings.TrimPrefix(tc.want, "registry: ") {
			t.Errorf("Manifest %s:\n got %v\nwant %s", tc.ref, err, tc.want)
		}
		var ce *remote.ConnectError
		if !errors.As(err, &ce) || !errors.Is(err, tc.is) || !tc.class(err) {
			t.Errorf("Manifest %s = %v: not a *ConnectError matching %v and its class", tc.ref, err, tc.is)
		}
		if strings.Contains(err.Error(), "%!") {
			t.Errorf("Manifest %s: badly formatted message %q", tc.ref, err)
		}
	}
	var dns *net.DNSError
	if _, err := c.Manifest(ctx, "nosuch.test/app:1"); !errors.As(err, &dns) || dns.Name != "nosuch.test" {
		t.Errorf("errors.As(%v, *net.DNSError) = %v", err, dns)
	}
}
