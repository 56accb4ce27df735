package registrytest

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// tokenAuth is how a Registry checks bearer tokens.
type tokenAuth struct {
	realm, service, issuer string
	key                    *ecdsa.PublicKey
}

// WithTokenAuth makes the registry require a bearer token of ts for every request: a
// request without one, or with one that is badly signed, expired or for another service,
// gets 401 UNAUTHORIZED with the challenge
// `WWW-Authenticate: Bearer realm="<realm>",service="<service>",scope="<scope>"`, and one
// whose token does not grant the scope the request needs gets the same with
// error="insufficient_scope". realm is the URL where ts is served (the URL of
// httptest.NewServer(ts) with /token, say). A pull (GET, HEAD) needs the action pull on
// the repository, a push (POST, PATCH, PUT) push, a DELETE delete, the catalog
// registry:catalog:*, and /v2/ only a valid token. A mount from another repository happens
// only if the token grants pull on it; else an upload session starts. The default is no
// authentication. realm must be an http(s) URL and ts not nil; it cannot be combined with
// WithBasicAuth.
func WithTokenAuth(realm string, ts *TokenServer) Option {
	return func(o *options) error {
		u, err := url.Parse(realm)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return optionError("WithTokenAuth", "realm %q is not an http(s) URL", realm)
		}
		if ts == nil {
			return optionError("WithTokenAuth", "nil token server")
		}
		o.token = &tokenAuth{realm: realm, service: ts.o.service, issuer: ts.o.issuer, key: &ts.key.PublicKey}
		return nil
	}
}

// need is what a request needs a token to grant: nothing (typ == "") for /v2/.
func need(r *http.Request, rt route) access {
	switch rt.kind {
	case "ping":
		return access{}
	case "catalog":
		return access{Type: "registry", Name: "catalog", Actions: []string{"*"}}
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return access{Type: "repository", Name: rt.name, Actions: []string{"pull"}}
	case http.MethodDelete:
		if rt.kind == "upload" { // cancelling an upload is part of a push
			return access{Type: "repository", Name: rt.name, Actions: []string{"push"}}
		}
		return access{Type: "repository", Name: rt.name, Actions: []string{"delete"}}
	}
	return access{Type: "repository", Name: rt.name, Actions: []string{"push"}}
}

// scope is the scope a challenge asks for a need: a push asks pull and push, as clients
// expect.
func (a access) scope() string {
	acts := a.Actions
	if len(acts) == 1 && acts[0] == "push" {
		acts = []string{"pull", "push"}
	}
	return a.Type + ":" + a.Name + ":" + strings.Join(acts, ",")
}

// grants reports whether the token's access c grants every action of a.
func (c *claims) grants(a access) bool {
	if a.Type == "" {
		return true
	}
	for _, act := range a.Actions {
		ok := false
		for _, g := range c.Access {
			if g.Type == a.Type && g.Name == a.Name && (slices.Contains(g.Actions, act) || slices.Contains(g.Actions, "*")) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// authorize checks r's credentials; it returns the 401 to answer, if any.
func (reg *Registry) authorize(r *http.Request, rt route) error {
	switch {
	case reg.o.basic != nil:
		if u, p, ok := r.BasicAuth(); ok {
			if want, found := reg.o.basic[u]; found && subtle.ConstantTimeCompare([]byte(want), []byte(p)) == 1 {
				return nil
			}
		}
		e := newError(http.StatusUnauthorized, codeUnauthorized, "authentication required")
		e.header = http.Header{"Www-Authenticate": {`Basic realm="registrytest"`}}
		return e
	case reg.o.token != nil:
		n := need(r, rt)
		c, err := reg.o.token.verify(r.Header.Get("Authorization"), reg.o.clock.Now())
		switch {
		case c == nil && err == nil:
			return reg.o.token.challenge(n, "", "authentication required")
		case err != nil:
			return reg.o.token.challenge(n, "invalid_token", err.Error())
		case !c.grants(n):
			return reg.o.token.challenge(n, "insufficient_scope", "the token does not grant "+n.scope())
		}
	}
	return nil
}

// mayPull reports whether r's credentials let it pull from repository name, for a mount.
func (reg *Registry) mayPull(r *http.Request, name string) bool {
	if reg.o.token == nil {
		return true // authorize let it in
	}
	c, err := reg.o.token.verify(r.Header.Get("Authorization"), reg.o.clock.Now())
	return err == nil && c != nil && c.grants(access{Type: "repository", Name: name, Actions: []string{"pull"}})
}

// challenge is a 401 that asks for a token granting n.
func (ta *tokenAuth) challenge(n access, errCode, msg string) error {
	ch := fmt.Sprintf(`Bearer realm=%q,service=%q`, ta.realm, ta.service)
	if n.Type != "" {
		ch += fmt.Sprintf(`,scope=%q`, n.scope())
	}
	if errCode != "" {
		ch += fmt.Sprintf(`,error=%q`, errCode)
	}
	e := newError(http.StatusUnauthorized, codeUnauthorized, "%s", msg)
	e.header = http.Header{"Www-Authenticate": {ch}}
	return e
}

// verify checks the bearer token of an Authorization header at now: nil claims and a nil
// error when there is none.
func (ta *tokenAuth) verify(header string, now time.Time) (*claims, error) {
	if header == "" {
		return nil, nil
	}
	scheme, tok, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return nil, nil
	}
	parts := strings.Split(strings.TrimSpace(tok), ".")
	if len(parts) != 3 {
		return nil, errors.New("malformed token")
	}
	hj, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, errors.New("malformed token header")
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(hj, &h) != nil || h.Alg != "ES256" {
		return nil, errors.New("token is not ES256")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return nil, errors.New("malformed token signature")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(ta.key, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return nil, errors.New("token signature does not verify")
	}
	cj, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, errors.New("malformed token claims")
	}
	var c claims
	if err := json.Unmarshal(cj, &c); err != nil {
		return nil, errors.New("malformed token claims")
	}
	switch t := now.Unix(); {
	case c.Issuer != ta.issuer:
		return nil, fmt.Errorf("token issued by %q, not %q", c.Issuer, ta.issuer)
	case c.Audience != ta.service:
		return nil, fmt.Errorf("token for service %q, not %q", c.Audience, ta.service)
	case t >= c.Expiry:
		return nil, errors.New("token expired")
	case t < c.NotBefore:
		return nil, errors.New("token not valid yet")
	}
	return &c, nil
}
