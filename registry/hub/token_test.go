package hub

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/opendao/dao/registry/server"
)

// forge signs claims as the hub would, with key and method, for tokens the hub must
// refuse.
func forge(t *testing.T, method jwt.SigningMethod, key any, kid string, c issuedClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, mapClaims(c))
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTokensRefused: a token for another service or issuer, expired or not yet valid, signed
// by another key, with alg none or HS256 keyed with the public key, a refresh token, or
// garbage, opens nothing; a good one of the same claims does.
func TestTokensRefused(t *testing.T) {
	th := newTestHub(t)
	th.fill()
	s := th.h.signer
	now := time.Now()
	good := issuedClaims{
		Issuer: s.issuer, Subject: "alice", Audience: s.service,
		ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), NotBefore: jwt.NewNumericDate(now), IssuedAt: jwt.NewNumericDate(now),
		ID: "x", Access: []accessEntry{{Type: "repository", Name: "team-a/app", Actions: []string{"pull"}}},
	}
	with := func(edit func(*issuedClaims)) issuedClaims {
		c := good
		edit(&c)
		return c
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := x509.MarshalPKIXPublicKey(&s.key.PublicKey)
	refresh, _, err := s.sign("alice", nil, true, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	es := jwt.SigningMethodES256
	th.do(bearer(forge(t, es, s.key, s.kid, good)), "GET", "/v2/team-a/app/manifests/1", nil).want(t, http.StatusOK, "")
	for name, tok := range map[string]string{
		"another audience":          forge(t, es, s.key, s.kid, with(func(c *issuedClaims) { c.Audience = "other-registry" })),
		"another issuer":            forge(t, es, s.key, s.kid, with(func(c *issuedClaims) { c.Issuer = "someone" })),
		"expired":                   forge(t, es, s.key, s.kid, with(func(c *issuedClaims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Minute)) })),
		"no expiry":                 forge(t, es, s.key, s.kid, with(func(c *issuedClaims) { c.ExpiresAt = nil })),
		"not yet valid":             forge(t, es, s.key, s.kid, with(func(c *issuedClaims) { c.NotBefore = jwt.NewNumericDate(now.Add(time.Hour)) })),
		"issued in a future":        forge(t, es, s.key, s.kid, with(func(c *issuedClaims) { c.IssuedAt = jwt.NewNumericDate(now.Add(time.Hour)) })),
		"another key":               forge(t, es, other, s.kid, good),
		"another kid":               forge(t, es, s.key, "0123", good),
		"alg none":                  forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, s.kid, good),
		"HS256 with the public key": forge(t, jwt.SigningMethodHS256, pub, s.kid, good),
		"ES384":                     forge(t, jwt.SigningMethodES384, mustP384(t), s.kid, good),
		"a refresh token":           refresh,
		"a deleted user":            forge(t, es, s.key, s.kid, with(func(c *issuedClaims) { c.Subject = "nobody" })),
		"garbage":                   "not.a.token",
		"a tampered claim":          tamper(t, forge(t, es, s.key, s.kid, good)),
	} {
		ans := th.do(bearer(tok), "GET", "/v2/team-a/app/manifests/1", nil)
		if ans.status != http.StatusUnauthorized || ans.code() != "UNAUTHORIZED" || !strings.Contains(ans.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s: %d %s %q, want 401 with an invalid_token challenge", name, ans.status, ans.body, ans.header.Get("WWW-Authenticate"))
		}
	}
	// Within the leeway, an expired token still works: clocks differ a little.
	th.do(bearer(forge(t, es, s.key, s.kid, with(func(c *issuedClaims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-10 * time.Second)) }))), "GET", "/v2/team-a/app/manifests/1", nil).want(t, http.StatusOK, "")
	// A token naming more than its subject may do gives no more: alice may not pull team-b.
	th.do(bearer(forge(t, es, s.key, s.kid, with(func(c *issuedClaims) {
		c.Access = []accessEntry{{Type: "repository", Name: "team-b/app", Actions: []string{"pull"}}}
	}))), "GET", "/v2/team-b/app/manifests/1", nil).want(t, http.StatusForbidden, "DENIED")
}

func mustP384(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// tamper changes a token's claims and keeps its signature.
func tamper(t *testing.T, tok string) string {
	parts := strings.Split(tok, ".")
	raw, err := jwt.NewParser().DecodeSegment(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(raw, &m)
	m["sub"] = "root"
	b, _ := json.Marshal(m)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// TestTokenExpiresWithTheClock: a token stops working once its lifetime and the leeway
// have passed on the hub's clock.
func TestTokenExpiresWithTheClock(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	th := newTestHub(t, func(c *Config) {
		c.Clock = func() time.Time { return time.Unix(0, now.Load()) }
		c.TokenLifetime = time.Minute
	})
	th.fill()
	tok := bearer(th.token(basic("alice", password), "repository:team-a/app:pull"))
	th.do(tok, "GET", "/v2/team-a/app/manifests/1", nil).want(t, http.StatusOK, "")
	now.Add(int64(time.Minute + 20*time.Second))
	th.do(tok, "GET", "/v2/team-a/app/manifests/1", nil).want(t, http.StatusOK, "")
	now.Add(int64(20 * time.Second))
	th.do(tok, "GET", "/v2/team-a/app/manifests/1", nil).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
}

// TestTokenEndpoint: the answer's fields, the claims of a token, the OAuth2 POST with the
// password and refresh_token grants, and refusals.
func TestTokenEndpoint(t *testing.T) {
	th := newTestHub(t)
	q := url.Values{"service": {"dao-hub"}, "scope": {"repository:team-a/app:pull,push", "repository:library/x:pull registry:catalog:*"}, "offline_token": {"true"}}
	ans := th.do(basic("alice", password), "GET", "/token?"+q.Encode(), nil).want(t, http.StatusOK, "")
	var ta tokenAnswer
	if err := json.Unmarshal(ans.body, &ta); err != nil {
		t.Fatal(err)
	}
	if ta.Token == "" || ta.Token != ta.AccessToken || ta.ExpiresIn != 300 || ta.RefreshToken == "" {
		t.Fatalf("answer %s", ans.body)
	}
	if _, err := time.Parse(time.RFC3339, ta.IssuedAt); err != nil {
		t.Errorf("issued_at %q: %v", ta.IssuedAt, err)
	}
	var claims map[string]any
	raw, _ := jwt.NewParser().DecodeSegment(strings.Split(ta.Token, ".")[1])
	json.Unmarshal(raw, &claims)
	for _, k := range []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "access"} {
		if _, ok := claims[k]; !ok {
			t.Errorf("claim %s missing: %s", k, raw)
		}
	}
	if claims["aud"] != "dao-hub" || claims["sub"] != "alice" {
		t.Errorf("claims %s", raw)
	}
	want := []accessEntry{
		{Type: "repository", Name: "team-a/app", Actions: []string{"pull", "push"}},
		{Type: "repository", Name: "library/x", Actions: []string{"pull"}},
		{Type: "registry", Name: "catalog", Actions: []string{"*"}},
	}
	if diff := cmp.Diff(want, th.granted(ta.Token)); diff != "" {
		t.Errorf("access (-want +got):\n%s", diff)
	}

	post := func(form url.Values) answer {
		return th.do("", "POST", "/token", []byte(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	}
	ans = post(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {password}, "service": {"dao-hub"},
		"scope": {"repository:team-a/app:pull repository:team-b/app:pull"}, "client_id": {"test"}, "access_type": {"offline"}}).want(t, http.StatusOK, "")
	var pa tokenAnswer
	json.Unmarshal(ans.body, &pa)
	if diff := cmp.Diff([]accessEntry{{Type: "repository", Name: "team-a/app", Actions: []string{"pull"}}}, th.granted(pa.AccessToken)); diff != "" || pa.RefreshToken == "" {
		t.Errorf("password grant %s (-want +got):\n%s", ans.body, diff)
	}
	ans = post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {pa.RefreshToken}, "service": {"dao-hub"}, "scope": {"repository:team-a/app:push"}}).want(t, http.StatusOK, "")
	var ra tokenAnswer
	json.Unmarshal(ans.body, &ra)
	if diff := cmp.Diff([]accessEntry{{Type: "repository", Name: "team-a/app", Actions: []string{"push"}}}, th.granted(ra.AccessToken)); diff != "" {
		t.Errorf("refresh grant %s (-want +got):\n%s", ans.body, diff)
	}
	// An access token is no refresh token; a wrong password, another service, a bad
	// scope and an unknown grant are refused.
	post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {ra.AccessToken}}).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
	post(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wrong-password"}}).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
	post(url.Values{"grant_type": {"client_credentials"}}).want(t, http.StatusBadRequest, "")
	th.do(basic("alice", password), "GET", "/token?service=other&scope=repository:team-a/app:pull", nil).want(t, http.StatusBadRequest, "")
	th.do(basic("alice", password), "GET", "/token?scope=repository:team-a", nil).want(t, http.StatusBadRequest, "")
	th.do("", "GET", "/token?offline_token=true", nil).want(t, http.StatusUnauthorized, "")
	th.do(basic("alice", password), "GET", "/token?account=bob&scope=repository:team-b/app:pull", nil).want(t, http.StatusBadRequest, "")
	th.do(basic("alice", password), "GET", "/token?account=alice&scope=repository:team-a/app:pull", nil).want(t, http.StatusOK, "")
	// A deleted user's refresh token is refused.
	if err := th.h.DeleteUser(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {pa.RefreshToken}}).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
}

// TestParseScope reads the scopes clients send.
func TestParseScope(t *testing.T) {
	for _, c := range []struct {
		in   string
		want server.Access
		err  bool
	}{
		{in: "repository:team/app:pull,push", want: server.Access{Type: "repository", Name: "team/app", Actions: []string{"pull", "push"}}},
		{in: "repository:localhost:5000/app:pull", want: server.Access{Type: "repository", Name: "localhost:5000/app", Actions: []string{"pull"}}},
		{in: "repository(plugin):a/b:pull", want: server.Access{Type: "repository", Name: "a/b", Actions: []string{"pull"}}},
		{in: "registry:catalog:*", want: server.Access{Type: "registry", Name: "catalog", Actions: []string{"*"}}},
		{in: "repository:a:pull,pull", want: server.Access{Type: "repository", Name: "a", Actions: []string{"pull"}}},
		{in: "repository:a", err: true},
		{in: "repository::pull", err: true},
		{in: ":a:pull", err: true},
		{in: "repository:a:", err: true},
		{in: "repository:a:pull,", err: true},
	} {
		got, err := ParseScope(c.in)
		if c.err {
			if !errors.Is(err, ErrInvalidScope) {
				t.Errorf("ParseScope(%q) = %+v, %v; want ErrInvalidScope", c.in, got, err)
			}
			continue
		}
		if err != nil || !cmp.Equal(got, c.want) {
			t.Errorf("ParseScope(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
		if err == nil && got.Type == "repository" && !strings.Contains(c.in, "(") && got.Scope() != strings.Replace(c.in, "pull,pull", "pull", 1) {
			t.Errorf("Scope() = %q, want %q", got.Scope(), c.in)
		}
	}
}
