package registrytest_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/opendao/dao/internal/daemon"
	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/registry/registrytest"
)

// TestWithDistribution puts the token server and the fault proxy in front of Distribution's
// registry, as registry's tests use them: Distribution trusts the server's tokens, the
// proxy keeps the Host so that Distribution's absolute Locations point back at it, and a
// cut blob is resumed with a Range.
func TestWithDistribution(t *testing.T) {
	t.Parallel()
	ts := mustTokenServer(t, registrytest.WithUser("alice", "secret"), registrytest.WithGrant("alice", "app", "pull", "push"))
	tokens := serve(t, ts)
	reg := testutil.StartRegistry(t, daemon.WithTokenAuth(daemon.TokenAuth{
		Realm: tokens.URL + "/token", Service: ts.Service(), Issuer: ts.Issuer(), RootCertPEM: ts.CertificatePEM(),
	}))
	proxy, err := registrytest.NewFaultProxyURL(reg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	s := serve(t, proxy)
	t.Cleanup(proxy.Close)

	// The challenge names our token server; its token lets alice push.
	a := s.do("POST", "/v2/app/blobs/uploads/", nil).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
	ch := challenge(t, a.Header.Get("WWW-Authenticate"))
	if ch["realm"] != tokens.URL+"/token" || ch["service"] != ts.Service() {
		t.Fatalf("Distribution's challenge %v", ch)
	}
	env := &tokenEnv{ts: ts, tokens: tokens}
	s.auth = env.token(t, "alice", "secret", ch["scope"])
	a = s.do("POST", "/v2/app/blobs/uploads/", nil).want(t, http.StatusAccepted, "")
	loc, err := url.Parse(a.Header.Get("Location"))
	if err != nil || (loc.Host != "" && loc.Host != strings.TrimPrefix(s.URL, "http://")) {
		t.Fatalf("Location %q does not point at the proxy %s", a.Header.Get("Location"), s.URL)
	}
	blob := make([]byte, 1<<20)
	rand.Read(blob)
	d := digest.FromBytes(blob)
	q := loc.Query()
	q.Set("digest", d.String())
	s.do("PUT", loc.Path+"?"+q.Encode(), blob, "Content-Type", "application/octet-stream").want(t, http.StatusCreated, "")

	// Another repository is refused by Distribution for want of a grant.
	s.auth = env.token(t, "alice", "secret", "repository:other:pull")
	s.do("GET", "/v2/other/tags/list", nil).want(t, http.StatusUnauthorized, "UNAUTHORIZED")

	// A blob cut at 300000 bytes, then resumed from there.
	s.auth = env.token(t, "alice", "secret", "repository:app:pull")
	addFaults(t, proxy, registrytest.Fault{Kind: registrytest.Cut, Method: "GET", Path: d.String(), At: 300_000})
	e := &proxyEnv{proxy: proxy, URL: s.URL}
	_, got, err := e.get(context.Background(), "/v2/app/blobs/"+d.String(), "Authorization", s.auth)
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(got) != 300_000 {
		t.Fatalf("cut blob: %v after %d bytes", err, len(got))
	}
	resp, rest, err := e.get(context.Background(), "/v2/app/blobs/"+d.String(), "Authorization", s.auth, "Range", "bytes=300000-")
	if err != nil || resp.StatusCode != http.StatusPartialContent || !bytes.Equal(append(got, rest...), blob) {
		t.Fatalf("resumed blob: %v, %v, %d bytes", resp.Status, err, len(rest))
	}
	if n := proxy.Count("GET", d.String()); n != 2 {
		t.Errorf("%d GETs of the blob, want 2", n)
	}
}
