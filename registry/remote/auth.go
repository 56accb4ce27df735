package remote

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opendao/dao/registry/name"
)

// authState is what the client learned of a host's authentication from its challenges.
type authState struct {
	mu sync.Mutex
	// scheme is "" until the host challenges, then "basic" or "bearer".
	scheme         string
	realm, service string
	tokens         map[string]cachedToken
}

// cachedToken is a bearer token and when to fetch a new one.
type cachedToken struct {
	token     string
	refreshAt time.Time
}

// defaultTokenLifetime is a token's lifetime when the token server does not say, as the
// token specification says.
const defaultTokenLifetime = 60 * time.Second

// authorization returns the Authorization header for a request to ep that needs scopes, or
// "" to send none: what the host's last challenge asked for, with the credentials for it.
func (c *Client) authorization(ctx context.Context, ep *endpoint, scopes []string) (string, error) {
	cred, err := c.credentials(ctx, ep.host)
	if err != nil {
		return "", err
	}
	if cred.RegistryToken != "" {
		return "Bearer " + cred.RegistryToken, nil
	}
	st := &c.host(ep.host).auth
	st.mu.Lock()
	scheme, realm, service := st.scheme, st.realm, st.service
	st.mu.Unlock()
	switch scheme {
	case "basic":
		if cred.Username != "" {
			return basicAuth(cred.Username, cred.Password), nil
		}
	case "bearer":
		tok, err := c.token(ctx, ep, realm, service, scopes, cred)
		if err != nil {
			return "", err
		}
		return "Bearer " + tok, nil
	}
	return "", nil
}

// challenged learns from a 401 answer how ep wants to be authenticated. It returns the
// scopes to ask a token for (those of the request and of the challenge) and whether sending
// the request again may succeed.
func (c *Client) challenged(ctx context.Context, ep *endpoint, resp *http.Response, scopes []string) ([]string, bool, error) {
	chs := parseChallenges(resp.Header.Values("WWW-Authenticate"))
	st := &c.host(ep.host).auth
	for _, want := range []string{"bearer", "basic"} {
		for _, ch := range chs {
			if ch.scheme != want {
				continue
			}
			switch want {
			case "bearer":
				realm := ch.params["realm"]
				if realm == "" {
					return nil, false, fmt.Errorf("%w: bearer challenge without a realm", ErrInvalidResponse)
				}
				all := mergeScopes(scopes, strings.Fields(ch.params["scope"]))
				st.mu.Lock()
				st.scheme, st.realm, st.service = "bearer", realm, ch.params["service"]
				// The token we sent, if any, was refused: forget it so a new one is fetched.
				// Only that one: a request sent before any token was fetched must not throw
				// away the token a concurrent request has just fetched.
				key := tokenKey(realm, st.service, all)
				if t, ok := st.tokens[key]; ok && resp.Request != nil &&
					resp.Request.Header.Get("Authorization") == "Bearer "+t.token {
					delete(st.tokens, key)
				}
				st.mu.Unlock()
				return all, true, nil
			case "basic":
				cred, err := c.credentials(ctx, ep.host)
				if err != nil {
					return nil, false, err
				}
				if cred.Username == "" {
					return nil, false, fmt.Errorf("registry: %s wants basic authentication and the client has no credentials for it", ep.host)
				}
				st.mu.Lock()
				known := st.scheme == "basic"
				st.scheme = "basic"
				st.mu.Unlock()
				if known {
					return nil, false, fmt.Errorf("registry: %s refused the credentials of user %q", ep.host, cred.Username)
				}
				return scopes, true, nil
			}
		}
	}
	return nil, false, nil
}

// token returns a bearer token for scopes from the host's token server: a cached one that
// is not about to expire, or a new one. Concurrent requests for the same token share one
// fetch.
func (c *Client) token(ctx context.Context, ep *endpoint, realm, service string, scopes []string, cred Credentials) (string, error) {
	key := tokenKey(realm, service, scopes)
	st := &c.host(ep.host).auth
	st.mu.Lock()
	t, ok := st.tokens[key]
	st.mu.Unlock()
	if ok && c.opts.clock.Now().Before(t.refreshAt) {
		return t.token, nil
	}
	v, err, _ := c.tokens.Do(ep.host+" "+key, func() (any, error) {
		// Another caller may have fetched it between our look and this flight.
		st.mu.Lock()
		t, ok := st.tokens[key]
		st.mu.Unlock()
		if ok && c.opts.clock.Now().Before(t.refreshAt) {
			return t.token, nil
		}
		t, err := c.fetchToken(ctx, ep, realm, service, scopes, cred)
		if err != nil {
			return "", err
		}
		st.mu.Lock()
		if st.tokens == nil {
			st.tokens = make(map[string]cachedToken)
		}
		st.tokens[key] = t
		st.mu.Unlock()
		return t.token, nil
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// maxTokenAnswer is the largest token answer the client reads.
const maxTokenAnswer = 1 << 20

// tokenAnswer is a token server's answer.
type tokenAnswer struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// fetchToken asks the token server at realm for a token: with an OAuth2 refresh token (a
// POST) when the credentials hold an identity token, else with a GET, authenticated with
// basic auth when they hold a username.
func (c *Client) fetchToken(ctx context.Context, ep *endpoint, realm, service string, scopes []string, cred Credentials) (cachedToken, error) {
	u, err := url.Parse(realm)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return cachedToken{}, fmt.Errorf("%w: token realm %q is not an http(s) URL", ErrInvalidResponse, realm)
	}
	r := &request{method: http.MethodGet, header: http.Header{}, ok: []int{http.StatusOK}, noAuth: true}
	if cred.IdentityToken != "" {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {cred.IdentityToken}, "client_id": {"dao"}}
		if service != "" {
			form.Set("service", service)
		}
		if len(scopes) > 0 {
			form.Set("scope", strings.Join(scopes, " "))
		}
		body := form.Encode()
		r.method, r.url, r.size = http.MethodPost, realm, int64(len(body))
		r.body = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
		r.header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		q := u.Query()
		if service != "" {
			q.Set("service", service)
		}
		for _, s := range scopes {
			q.Add("scope", s)
		}
		if cred.Username != "" {
			q.Set("account", cred.Username)
			r.header.Set("Authorization", basicAuth(cred.Username, cred.Password))
		}
		u.RawQuery = q.Encode()
		r.url = u.String()
	}
	start := c.opts.clock.Now()
	tokenEP := &endpoint{host: u.Host, client: ep.client}
	_, body, err := c.getAll(ctx, tokenEP, r, maxTokenAnswer, 0)
	if err != nil {
		return cachedToken{}, fmt.Errorf("registry: token for %s (%s): %w", ep.host, strings.Join(scopes, " "), err)
	}
	var a tokenAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return cachedToken{}, fmt.Errorf("%w: token from %s: %v", ErrInvalidResponse, u.Host, err)
	}
	tok := a.Token
	if tok == "" {
		tok = a.AccessToken
	}
	if tok == "" {
		return cachedToken{}, fmt.Errorf("%w: token server %s answered no token", ErrInvalidResponse, u.Host)
	}
	life := defaultTokenLifetime
	if a.ExpiresIn > 0 {
		life = time.Duration(a.ExpiresIn) * time.Second
	}
	return cachedToken{token: tok, refreshAt: start.Add(life - refreshMargin(life))}, nil
}

// refreshMargin is how long before a token expires the client fetches a new one: a quarter
// of its lifetime, at most 10 seconds.
func refreshMargin(life time.Duration) time.Duration { return min(life/4, 10*time.Second) }

// tokenKey identifies a token: its server, service and the sorted set of its scopes.
func tokenKey(realm, service string, scopes []string) string {
	s := slices.Clone(scopes)
	slices.Sort(s)
	return realm + " " + service + " " + strings.Join(slices.Compact(s), " ")
}

// mergeScopes returns the scopes of both lists, each once, in order.
func mergeScopes(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// basicAuth returns a basic Authorization header.
func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// pullScope and pushScope are the token scopes to read and to write repo.
func pullScope(repo name.Reference) string { return "repository:" + repo.Repository + ":pull" }
func pushScope(repo name.Reference) string { return "repository:" + repo.Repository + ":pull,push" }
