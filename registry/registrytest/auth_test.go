package registrytest_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"

	"github.com/opendao/dao"
	"github.com/opendao/dao/clock"
	"github.com/opendao/dao/registry/registrytest"
)

func TestBasicAuth(t *testing.T) {
	t.Parallel()
	_, s := newRegistry(t, registrytest.WithBasicAuth("alice", "secret"), registrytest.WithBasicAuth("bob", "pw"))
	a := s.do("GET", "/v2/", nil).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
	if got := a.Header.Get("WWW-Authenticate"); got != `Basic realm="registrytest"` {
		t.Errorf("challenge %q", got)
	}
	s.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:wrong"))
	s.do("GET", "/v2/", nil).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
	s.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte("bob:pw"))
	s.do("GET", "/v2/", nil).want(t, http.StatusOK, "")
	s.pushBlob("app", []byte("x"))
	s.auth = "Bearer whatever"
	s.do("GET", "/v2/app/tags/list", nil).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
}

// tokenEnv is a registry with token auth and its token server.
type tokenEnv struct {
	ts     *registrytest.TokenServer
	tokens *server
	reg    *server
}

func newTokenEnv(t *testing.T, clk clock.Clock, topts ...registrytest.TokenOption) *tokenEnv {
	t.Helper()
	if clk == nil {
		clk = clock.System()
	}
	ts := mustTokenServer(t, append([]registrytest.TokenOption{registrytest.WithTokenClock(clk)}, topts...)...)
	tokens := serve(t, ts)
	_, reg := newRegistry(t, registrytest.WithTokenAuth(tokens.URL+"/token", ts), registrytest.WithClock(clk))
	return &tokenEnv{ts: ts, tokens: tokens, reg: reg}
}

var challengeRE = regexp.MustCompile(`(\w+)="([^"]*)"`)

// challenge parses a Bearer challenge.
func challenge(t *testing.T, h string) map[string]string {
	t.Helper()
	rest, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		t.Fatalf("challenge %q is not Bearer", h)
	}
	out := map[string]string{}
	for _, m := range challengeRE.FindAllStringSubmatch(rest, -1) {
		out[m[1]] = m[2]
	}
	return out
}

// token asks the token server for a token as a client does after a challenge; user "" asks
// anonymously.
func (e *tokenEnv) token(t *testing.T, user, password string, scopes ...string) string {
	t.Helper()
	q := url.Values{"service": {e.ts.Service()}, "scope": scopes}
	req, _ := http.NewRequest("GET", e.tokens.URL+"/token?"+q.Encode(), nil)
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("token for %q: %s", user, resp.Status)
	}
	var ans struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		IssuedAt    string `json:"issued_at"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || ans.Token == "" || ans.Token != ans.AccessToken || ans.ExpiresIn != 300 {
		t.Fatalf("token answer %+v (%v)", ans, err)
	}
	if _, err := time.Parse(time.RFC3339, ans.IssuedAt); err != nil {
		t.Errorf("issued_at %q: %v", ans.IssuedAt, err)
	}
	return "Bearer " + ans.Token
}

func TestTokenAuthFlow(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil, registrytest.WithUser("alice", "secret"))
	// No token: 401 and a challenge that names the realm, the service and the scope.
	a := e.reg.do("GET", "/v2/app/manifests/1", nil).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
	ch := challenge(t, a.Header.Get("WWW-Authenticate"))
	want := map[string]string{"realm": e.tokens.URL + "/token", "service": "registrytest", "scope": "repository:app:pull"}
	if diff := cmp.Diff(want, ch); diff != "" {
		t.Errorf("challenge (-want +got):\n%s", diff)
	}
	a = e.reg.do("POST", "/v2/app/blobs/uploads/", nil).want(t, http.StatusUnauthorized, "")
	if got := challenge(t, a.Header.Get("WWW-Authenticate"))["scope"]; got != "repository:app:pull,push" {
		t.Errorf("push challenge scope %q", got)
	}
	a = e.reg.do("GET", "/v2/", nil).want(t, http.StatusUnauthorized, "")
	if _, ok := challenge(t, a.Header.Get("WWW-Authenticate"))["scope"]; ok {
		t.Errorf("/v2/ challenge has a scope: %q", a.Header.Get("WWW-Authenticate"))
	}

	// A token for pull only: pulls pass, a push is refused for want of scope.
	e.reg.auth = e.token(t, "alice", "secret", "repository:app:pull")
	e.reg.do("GET", "/v2/", nil).want(t, http.StatusOK, "")
	e.reg.do("GET", "/v2/app/manifests/1", nil).want(t, http.StatusNotFound, "MANIFEST_UNKNOWN")
	a = e.reg.do("POST", "/v2/app/blobs/uploads/", nil).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
	if ch := challenge(t, a.Header.Get("WWW-Authenticate")); ch["error"] != "insufficient_scope" || ch["scope"] != "repository:app:pull,push" {
		t.Errorf("push with a pull token: challenge %v", ch)
	}
	e.reg.do("GET", "/v2/other/tags/list", nil).want(t, http.StatusUnauthorized, "")
	e.reg.do("GET", "/v2/_catalog", nil).want(t, http.StatusUnauthorized, "")

	// A token for push: the push goes through; delete needs its own action.
	e.reg.auth = e.token(t, "alice", "secret", "repository:app:pull,push")
	d := e.reg.pushBlob("app", []byte("pushed with a token"))
	e.reg.do("DELETE", "/v2/app/blobs/"+d.String(), nil).want(t, http.StatusUnauthorized, "")
	e.reg.auth = e.token(t, "alice", "secret", "repository:app:delete", "registry:catalog:*")
	e.reg.do("DELETE", "/v2/app/blobs/"+d.String(), nil).want(t, http.StatusAccepted, "")
	e.reg.do("GET", "/v2/_catalog", nil).want(t, http.StatusOK, "")

	// Tokens that are not tokens, or not of this server.
	other := mustTokenServer(t, registrytest.WithUser("alice", "secret"))
	otherSrv := serve(t, other)
	forged := (&tokenEnv{ts: other, tokens: otherSrv}).token(t, "alice", "secret", "repository:app:pull")
	for _, bad := range []string{"Bearer nonsense", "Bearer a.b.c", forged, e.reg.auth[:len(e.reg.auth)-4] + "AAAA"} {
		e.reg.auth = bad
		a := e.reg.do("GET", "/v2/app/tags/list", nil).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
		if got := challenge(t, a.Header.Get("WWW-Authenticate"))["error"]; got != "invalid_token" {
			t.Errorf("token %.20s…: challenge error %q, want invalid_token", bad, got)
		}
	}

	// Wrong credentials get no token at all; an anonymous client gets one that grants nothing.
	req, _ := http.NewRequest("GET", e.tokens.URL+"/token?service=registrytest&scope=repository:app:pull", nil)
	req.SetBasicAuth("alice", "wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong password: %s", resp.Status)
	}
	e.reg.auth = e.token(t, "", "", "repository:app:pull")
	e.reg.do("GET", "/v2/", nil).want(t, http.StatusOK, "")
	e.reg.do("GET", "/v2/app/tags/list", nil).want(t, http.StatusUnauthorized, "")

	reqs := e.ts.Requests()
	if len(reqs) < 5 || reqs[0].User != "alice" || !cmp.Equal(reqs[0].Scopes, []string{"repository:app:pull"}) || reqs[0].Status != 200 {
		t.Errorf("token requests %+v", reqs)
	}
}

func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	e := newTokenEnv(t, clk, registrytest.WithUser("alice", "secret"), registrytest.WithTokenLifetime(time.Minute))
	q := url.Values{"service": {"registrytest"}, "scope": {"repository:app:pull"}}
	req, _ := http.NewRequest("GET", e.tokens.URL+"/token?"+q.Encode(), nil)
	req.SetBasicAuth("alice", "secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ans struct {
		Token     string
		ExpiresIn int `json:"expires_in"`
	}
	json.NewDecoder(resp.Body).Decode(&ans)
	resp.Body.Close()
	if ans.ExpiresIn != 60 {
		t.Errorf("expires_in %d, want 60", ans.ExpiresIn)
	}
	e.reg.auth = "Bearer " + ans.Token
	e.reg.do("GET", "/v2/", nil).want(t, http.StatusOK, "")
	clk.Advance(59 * time.Second)
	e.reg.do("GET", "/v2/", nil).want(t, http.StatusOK, "")
	clk.Advance(time.Second)
	a := e.reg.do("GET", "/v2/app/tags/list", nil).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
	if ch := challenge(t, a.Header.Get("WWW-Authenticate")); ch["error"] != "invalid_token" || !strings.Contains(string(a.body), "expired") {
		t.Errorf("expired token: challenge %v, body %s", ch, a.body)
	}
}

func TestTokenGrants(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil,
		registrytest.WithUser("alice", "a"), registrytest.WithUser("bob", "b"),
		registrytest.WithGrant("alice", "team/*", "pull", "push"),
		registrytest.WithGrant("bob", "team/app", "pull"),
		registrytest.WithGrant("bob", "*", "delete"),
		registrytest.WithGrant("", "public", "pull"),
	)
	for _, tc := range []struct {
		user, pass, method, path string
		status                   int
	}{
		{"alice", "a", "POST", "/v2/team/app/blobs/uploads/", 202},
		{"alice", "a", "GET", "/v2/team/x/y/tags/list", 404},
		{"alice", "a", "GET", "/v2/teamx/tags/list", 401},
		{"alice", "a", "GET", "/v2/public/tags/list", 401},
		{"alice", "a", "DELETE", "/v2/team/app/manifests/1", 401},
		{"bob", "b", "GET", "/v2/team/app/tags/list", 404},
		{"bob", "b", "POST", "/v2/team/app/blobs/uploads/", 401},
		{"bob", "b", "DELETE", "/v2/any/manifests/1", 404},
		{"bob", "b", "GET", "/v2/_catalog", 401},
		{"", "", "GET", "/v2/public/tags/list", 404},
		{"", "", "POST", "/v2/public/blobs/uploads/", 401},
	} {
		a := e.reg.do(tc.method, tc.path, nil)
		auth := a.Header.Get("WWW-Authenticate")
		if a.StatusCode != 401 {
			t.Fatalf("%s %s without a token: %s", tc.method, tc.path, a.Status)
		}
		scope := challenge(t, auth)["scope"]
		e.reg.auth = e.token(t, tc.user, tc.pass, scope)
		a = e.reg.do(tc.method, tc.path, nil)
		e.reg.auth = ""
		if a.StatusCode != tc.status {
			t.Errorf("%s as %q with a token for %s: %s, want %d", tc.method+" "+tc.path, tc.user, scope, a.Status, tc.status)
		}
	}
}

func TestTokenPost(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil, registrytest.WithUser("alice", "secret"), registrytest.WithRefreshToken("alice", "identity-token"))
	post := func(form url.Values) (int, string) {
		t.Helper()
		resp, err := http.PostForm(e.tokens.URL+"/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ans struct {
			AccessToken string `json:"access_token"`
			Scope       string
		}
		json.NewDecoder(resp.Body).Decode(&ans)
		return resp.StatusCode, ans.AccessToken
	}
	base := url.Values{"service": {"registrytest"}, "scope": {"repository:app:pull repository:app:push"}, "client_id": {"test"}}
	for _, tc := range []struct {
		extra  url.Values
		status int
	}{
		{url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"secret"}}, 200},
		{url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"identity-token"}}, 200},
		{url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wrong"}}, 401},
		{url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"other"}}, 401},
		{url.Values{"grant_type": {"client_credentials"}}, 400},
	} {
		form := url.Values{}
		for k, v := range base {
			form[k] = v
		}
		for k, v := range tc.extra {
			form[k] = v
		}
		status, tok := post(form)
		if status != tc.status {
			t.Errorf("POST %v: %d, want %d", tc.extra, status, tc.status)
			continue
		}
		if status == 200 {
			e.reg.auth = "Bearer " + tok
			e.reg.do("POST", "/v2/app/blobs/uploads/", nil).want(t, http.StatusAccepted, "")
		}
	}
	// Another service is refused.
	req, _ := http.NewRequest("GET", e.tokens.URL+"/token?service=elsewhere", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("another service: %s", resp.Status)
	}
}

// TestMountNeedsPullOnTheSource mounts only when the token may pull from the source;
// otherwise an upload session starts.
func TestMountNeedsPullOnTheSource(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil, registrytest.WithUser("alice", "a"),
		registrytest.WithGrant("alice", "src", "pull", "push"), registrytest.WithGrant("alice", "dst", "pull", "push"),
		registrytest.WithGrant("alice", "secret", "push"))
	e.reg.auth = e.token(t, "alice", "a", "repository:src:pull,push", "repository:secret:push")
	d := e.reg.pushBlob("src", []byte("layer"))
	e.reg.pushBlob("secret", []byte("hidden"))
	e.reg.auth = e.token(t, "alice", "a", "repository:dst:pull,push")
	e.reg.do("POST", "/v2/dst/blobs/uploads/?mount="+d.String()+"&from=src", nil).want(t, http.StatusAccepted, "")
	e.reg.auth = e.token(t, "alice", "a", "repository:dst:pull,push", "repository:src:pull", "repository:secret:pull")
	e.reg.do("POST", "/v2/dst/blobs/uploads/?mount="+d.String()+"&from=src", nil).want(t, http.StatusCreated, "")
	hidden := digest.FromString("hidden")
	e.reg.do("POST", "/v2/dst/blobs/uploads/?mount="+hidden.String()+"&from=secret", nil).want(t, http.StatusAccepted, "")
}

func TestReadOnly(t *testing.T) {
	t.Parallel()
	_, s := newRegistry(t, registrytest.WithReadOnly())
	s.do("GET", "/v2/", nil).want(t, http.StatusOK, "")
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		s.do(m, "/v2/app/blobs/uploads/", nil).want(t, http.StatusMethodNotAllowed, "UNSUPPORTED")
	}
	s.do("GET", "/v2/app/manifests/1", nil).want(t, http.StatusNotFound, "MANIFEST_UNKNOWN")
}

func TestRequestHook(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		seen []registrytest.Request
	)
	_, s := newRegistry(t, registrytest.WithRequestHook(func(r registrytest.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r)
	}))
	s.do("GET", "/v2/", nil)
	s.do("GET", "/v2/app/blobs/"+digest.FromString("x").String(), nil, "Range", "bytes=0-1")
	s.do("GET", "/v2/app/tags/list?n=1", nil)
	mu.Lock()
	defer mu.Unlock()
	want := []string{
		"GET /v2/ -> 200",
		"GET /v2/app/blobs/" + digest.FromString("x").String() + " bytes=0-1 -> 404",
		"GET /v2/app/tags/list?n=1 -> 404",
	}
	var got []string
	for _, r := range seen {
		got = append(got, r.String())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hook saw (-want +got):\n%s", diff)
	}
}

// TestBadOptions gives each option a value it refuses: New or NewTokenServer returns no
// value and an error that names the option and matches ErrInvalidOption, dao.ErrInvalid and
// errdefs' class.
func TestBadOptions(t *testing.T) {
	t.Parallel()
	check := func(name string, made bool, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), name) || !errors.Is(err, registrytest.ErrInvalidOption) ||
			!errors.Is(err, dao.ErrInvalid) || !errdefs.IsInvalidArgument(err) {
			t.Errorf("%s: error %v, want an ErrInvalidOption naming it", name, err)
		}
		if made {
			t.Errorf("%s: a value as well as the error", name)
		}
	}
	ts := mustTokenServer(t)
	for _, tc := range []struct {
		name string
		opts []registrytest.Option
	}{
		{"WithBasicAuth", []registrytest.Option{registrytest.WithBasicAuth("", "x")}},
		{"WithBasicAuth", []registrytest.Option{registrytest.WithBasicAuth("a:b", "x")}},
		{"WithBasicAuth", []registrytest.Option{registrytest.WithBasicAuth("a", "x"), registrytest.WithTokenAuth("http://t/token", ts)}},
		{"WithTokenAuth", []registrytest.Option{registrytest.WithTokenAuth("ftp://t", ts)}},
		{"WithTokenAuth", []registrytest.Option{registrytest.WithTokenAuth("http://t/token", nil)}},
		{"WithRequestHook", []registrytest.Option{registrytest.WithRequestHook(nil)}},
		{"WithMaxManifestSize", []registrytest.Option{registrytest.WithMaxManifestSize(0)}},
		{"WithMaxBlobSize", []registrytest.Option{registrytest.WithMaxBlobSize(-1)}},
		{"WithClock", []registrytest.Option{registrytest.WithClock(nil)}},
	} {
		reg, err := registrytest.New(tc.opts...)
		check(tc.name, reg != nil, err)
	}
	for _, tc := range []struct {
		name string
		opts []registrytest.TokenOption
	}{
		{"WithUser", []registrytest.TokenOption{registrytest.WithUser("", "x")}},
		{"WithRefreshToken", []registrytest.TokenOption{registrytest.WithRefreshToken("nobody", "t")}},
		{"WithRefreshToken", []registrytest.TokenOption{registrytest.WithUser("a", "b"), registrytest.WithRefreshToken("a", "")}},
		{"WithGrant", []registrytest.TokenOption{registrytest.WithGrant("a", "Bad", "pull")}},
		{"WithGrant", []registrytest.TokenOption{registrytest.WithGrant("a", "x", "fly")}},
		{"WithGrant", []registrytest.TokenOption{registrytest.WithGrant("a", "x")}},
		{"WithService", []registrytest.TokenOption{registrytest.WithService("")}},
		{"WithIssuer", []registrytest.TokenOption{registrytest.WithIssuer("")}},
		{"WithTokenLifetime", []registrytest.TokenOption{registrytest.WithTokenLifetime(time.Millisecond)}},
		{"WithTokenClock", []registrytest.TokenOption{registrytest.WithTokenClock(nil)}},
	} {
		ts, err := registrytest.NewTokenServer(tc.opts...)
		check(tc.name, ts != nil, err)
	}
	p, err := registrytest.NewFaultProxyURL("ftp://x")
	check("NewFaultProxyURL", p != nil, err)
}

// TestTokenServiceAndIssuer names the service and the issuer: the registry challenges with
// the service, and the tokens carry both.
func TestTokenServiceAndIssuer(t *testing.T) {
	t.Parallel()
	e := newTokenEnv(t, nil, registrytest.WithUser("u", "p"), registrytest.WithService("my-registry"), registrytest.WithIssuer("my-issuer"))
	if e.ts.Service() != "my-registry" || e.ts.Issuer() != "my-issuer" {
		t.Fatalf("Service %q, Issuer %q", e.ts.Service(), e.ts.Issuer())
	}
	a := e.reg.do("GET", "/v2/", nil).want(t, http.StatusUnauthorized, "")
	if got := challenge(t, a.Header.Get("WWW-Authenticate"))["service"]; got != "my-registry" {
		t.Errorf("challenge service %q", got)
	}
	e.reg.auth = e.token(t, "u", "p")
	e.reg.do("GET", "/v2/", nil).want(t, http.StatusOK, "")
	// The claims, decoded as Distribution would.
	parts := strings.Split(strings.TrimPrefix(e.reg.auth, "Bearer "), ".")
	cj, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Iss, Aud, Sub string }
	if err := json.Unmarshal(cj, &c); err != nil || c.Iss != "my-issuer" || c.Aud != "my-registry" || c.Sub != "u" {
		t.Errorf("claims %s (%v)", cj, err)
	}
	if pem := string(e.ts.CertificatePEM()); !strings.HasPrefix(pem, "-----BEGIN CERTIFICATE-----") {
		t.Errorf("CertificatePEM %.40q", pem)
	}
}
