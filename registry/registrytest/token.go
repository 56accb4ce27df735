package registrytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opendao/dao/clock"
)

// TokenServer is a token server of the Docker token protocol, an http.Handler: a client
// that a registry challenged with "WWW-Authenticate: Bearer realm=...,service=...,scope=..."
// asks it for a token with GET <realm>?service=...&scope=... (basic auth for its
// credentials, none for an anonymous token), or with the OAuth2 POST (grant_type password or
// refresh_token), and gets {"token", "access_token", "expires_in", "issued_at"}.
//
// Tokens are ES256 JWTs with the server's self-signed certificate in their x5c header, as
// Distribution's registry verifies them (give it CertificatePEM as its root certificate
// bundle); a Registry made with WithTokenAuth verifies them with the server's key. A token
// grants what was asked of it that the server's grants allow, and nothing to a client whose
// credentials are wrong (that one gets 401).
//
// It answers at any path; the realm is conventionally the server's URL with /token. It
// starts no goroutine and is safe for simultaneous use.
type TokenServer struct {
	o       tokenOptions
	key     *ecdsa.PrivateKey
	certDER []byte

	mu       sync.Mutex
	requests []TokenRequest
}

var _ http.Handler = (*TokenServer)(nil)

// TokenRequest is a request a TokenServer answered.
type TokenRequest struct {
	// User is the user whose credentials came with it; "" for an anonymous request or wrong
	// credentials.
	User string
	// Scopes are the scopes asked, as the client wrote them.
	Scopes []string
	// Status is the status code answered.
	Status int
}

// Grant lets a user do actions on the repositories whose name matches Repository: "*" for
// every repository, "team/*" for every one whose name starts with "team/", else exactly that
// name. Actions are "pull", "push", "delete" or "*" for all.
type Grant struct {
	User       string
	Repository string
	Actions    []string
}

func (g Grant) matches(user, name string) bool {
	if g.User != user {
		return false
	}
	switch {
	case g.Repository == "*":
		return true
	case strings.HasSuffix(g.Repository, "/*"):
		return strings.HasPrefix(name, strings.TrimSuffix(g.Repository, "*"))
	}
	return g.Repository == name
}

type tokenOptions struct {
	users   map[string]string
	refresh map[string]string // refresh token -> user
	grants  []Grant
	service string
	issuer  string
	life    time.Duration
	clock   clock.Clock
}

// TokenOption configures a TokenServer; it returns an error for a bad value.
type TokenOption func(*tokenOptions) error

// Defaults of a TokenServer.
const (
	// DefaultTokenService is the service a TokenServer issues tokens for unless
	// WithService says otherwise.
	DefaultTokenService = "registrytest"
	// DefaultTokenIssuer is the issuer of a TokenServer's tokens unless WithIssuer says
	// otherwise.
	DefaultTokenIssuer = "registrytest-token-server"
	// DefaultTokenLifetime is how long a token lives unless WithTokenLifetime says
	// otherwise.
	DefaultTokenLifetime = 5 * time.Minute
)

// WithUser adds a user with a password; its basic credentials get it tokens. It may be given
// several times. The default is no user: every token is anonymous. name must not be empty or
// hold a colon.
func WithUser(name, password string) TokenOption {
	return func(o *tokenOptions) error {
		if name == "" || strings.Contains(name, ":") {
			return optionError("WithUser", "user %q is empty or has a colon", name)
		}
		o.users[name] = password
		return nil
	}
}

// WithRefreshToken lets a client that holds token (an identity token, as a credential
// helper gives) get tokens as user with the OAuth2 POST grant_type=refresh_token. user must
// have been added with WithUser first. The default is no refresh token.
func WithRefreshToken(user, token string) TokenOption {
	return func(o *tokenOptions) error {
		if _, ok := o.users[user]; !ok {
			return optionError("WithRefreshToken", "no user %q (give WithUser first)", user)
		}
		if token == "" {
			return optionError("WithRefreshToken", "empty token")
		}
		o.refresh[token] = user
		return nil
	}
}

// WithGrant lets user ("" for anonymous clients) do actions on the repositories that match
// repository (see Grant). It may be given several times; the grants add up. The default,
// when no WithGrant is given, grants every user with good credentials everything it asks
// and anonymous clients nothing; once one is given, only the grants count. repository
// must be "*", a name, or a name followed by "/*"; actions must not be empty.
func WithGrant(user, repository string, actions ...string) TokenOption {
	return func(o *tokenOptions) error {
		name := strings.TrimSuffix(repository, "/*")
		if repository != "*" && !ValidName(name) {
			return optionError("WithGrant", "repository %q is not *, a name or a name with /*", repository)
		}
		if len(actions) == 0 {
			return optionError("WithGrant", "no action for %q", repository)
		}
		for _, a := range actions {
			if a != "pull" && a != "push" && a != "delete" && a != "*" {
				return optionError("WithGrant", "action %q is not pull, push, delete or *", a)
			}
		}
		o.grants = append(o.grants, Grant{User: user, Repository: repository, Actions: slices.Clone(actions)})
		return nil
	}
}

// WithService sets the service the server issues tokens for: a request for another is
// refused with 400, and a Registry checks the tokens' audience against it. The default is
// DefaultTokenService. s must not be empty.
func WithService(s string) TokenOption {
	return func(o *tokenOptions) error {
		if s == "" {
			return optionError("WithService", "empty service")
		}
		o.service = s
		return nil
	}
}

// WithIssuer sets the issuer (iss) of the tokens. The default is DefaultTokenIssuer. s must
// not be empty.
func WithIssuer(s string) TokenOption {
	return func(o *tokenOptions) error {
		if s == "" {
			return optionError("WithIssuer", "empty issuer")
		}
		o.issuer = s
		return nil
	}
}

// WithTokenLifetime sets how long a token is valid; expires_in says it in whole seconds.
// The default is DefaultTokenLifetime (5 minutes). d must be at least a second.
func WithTokenLifetime(d time.Duration) TokenOption {
	return func(o *tokenOptions) error {
		if d < time.Second {
			return optionError("WithTokenLifetime", "%v is less than a second", d)
		}
		o.life = d
		return nil
	}
}

// WithTokenClock sets the clock that dates the tokens; with a clock.Manual shared with the
// Registry (WithClock), a test makes tokens expire by advancing it. The default is
// clock.System(). c must not be nil.
func WithTokenClock(c clock.Clock) TokenOption {
	return func(o *tokenOptions) error {
		if c == nil {
			return optionError("WithTokenClock", "nil clock")
		}
		o.clock = c
		return nil
	}
}

// NewTokenServer returns a token server with a new signing key and the options applied. It
// returns an error that names the option and matches ErrInvalidOption (and so
// dao.ErrInvalid) if an option is refused, as New does, or the error of making the key or
// its certificate.
func NewTokenServer(opts ...TokenOption) (*TokenServer, error) {
	o := tokenOptions{
		users: map[string]string{}, refresh: map[string]string{},
		service: DefaultTokenService, issuer: DefaultTokenIssuer, life: DefaultTokenLifetime, clock: clock.System(),
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("registrytest: token server: signing key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "registrytest token signer"},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("registrytest: token server: certificate: %w", err)
	}
	return &TokenServer{o: o, key: key, certDER: der}, nil
}

// Service returns the service the server issues tokens for.
func (ts *TokenServer) Service() string { return ts.o.service }

// Issuer returns the issuer of the server's tokens.
func (ts *TokenServer) Issuer() string { return ts.o.issuer }

// CertificatePEM returns the certificate that signs the tokens, PEM-encoded: the root
// certificate bundle of a Distribution registry that trusts this server.
func (ts *TokenServer) CertificatePEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.certDER})
}

// Requests returns the requests the server answered so far, in order.
func (ts *TokenServer) Requests() []TokenRequest {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return slices.Clone(ts.requests)
}

// access is an entry of a token's access claim, and a scope parsed.
type access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// parseScope parses "repository:name:pull,push"; ok is false for anything else.
func parseScope(s string) (access, bool) {
	typ, rest, ok := strings.Cut(s, ":")
	i := strings.LastIndex(rest, ":")
	if !ok || i <= 0 || typ == "" {
		return access{}, false
	}
	return access{Type: typ, Name: rest[:i], Actions: strings.Split(rest[i+1:], ",")}, true
}

// allowed returns which of actions user may do on the resource typ/name.
func (ts *TokenServer) allowed(user string, authenticated bool, typ, name string, actions []string) []string {
	if len(ts.o.grants) == 0 {
		if authenticated {
			return actions
		}
		return nil
	}
	var out []string
	for _, a := range actions {
		for _, g := range ts.o.grants {
			var ok bool
			switch typ {
			case "repository":
				ok = g.matches(user, name) && (slices.Contains(g.Actions, a) || slices.Contains(g.Actions, "*"))
			case "registry":
				// The catalog is for those who may pull everything.
				ok = name == "catalog" && g.User == user && g.Repository == "*" &&
					(slices.Contains(g.Actions, "pull") || slices.Contains(g.Actions, "*"))
			}
			if ok {
				out = append(out, a)
				break
			}
		}
	}
	return out
}

// tokenAnswer is the JSON answer of a TokenServer.
type tokenAnswer struct {
	Token        string `json:"token,omitempty"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// ServeHTTP answers a token request.
func (ts *TokenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := TokenRequest{}
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		rec.Status = sw.status
		ts.mu.Lock()
		ts.requests = append(ts.requests, rec)
		ts.mu.Unlock()
	}()
	fail := func(status int, code, msg string) {
		writeError(sw, r, newError(status, code, "%s", msg))
	}
	var (
		user, service string
		scopes        []string
		authenticated bool
		post          = r.Method == http.MethodPost
	)
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query()
		service, scopes = q.Get("service"), q["scope"]
		if u, p, ok := r.BasicAuth(); ok {
			if !ts.checkPassword(u, p) {
				rec.Scopes = scopes
				fail(http.StatusUnauthorized, codeUnauthorized, "wrong credentials")
				return
			}
			user, authenticated = u, true
		}
	case http.MethodPost:
		r.Body = http.MaxBytesReader(sw, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			fail(http.StatusBadRequest, codeUnsupported, "bad form: "+err.Error())
			return
		}
		service, scopes = r.PostForm.Get("service"), strings.Fields(r.PostForm.Get("scope"))
		rec.Scopes = scopes
		switch r.PostForm.Get("grant_type") {
		case "password":
			u := r.PostForm.Get("username")
			if !ts.checkPassword(u, r.PostForm.Get("password")) {
				fail(http.StatusUnauthorized, codeUnauthorized, "wrong credentials")
				return
			}
			user = u
		case "refresh_token":
			u, ok := ts.o.refresh[r.PostForm.Get("refresh_token")]
			if !ok {
				fail(http.StatusUnauthorized, codeUnauthorized, "unknown refresh token")
				return
			}
			user = u
		default:
			fail(http.StatusBadRequest, codeUnsupported, "unsupported grant_type")
			return
		}
		authenticated = true
	default:
		w.Header().Set("Allow", "GET, POST")
		fail(http.StatusMethodNotAllowed, codeUnsupported, "method not allowed")
		return
	}
	// One scope parameter may hold several, separated by spaces.
	var split []string
	for _, s := range scopes {
		split = append(split, strings.Fields(s)...)
	}
	rec.User, rec.Scopes = user, split
	if service != ts.o.service {
		fail(http.StatusBadRequest, codeUnsupported, "unknown service "+service)
		return
	}
	grants := []access{}
	for _, s := range split {
		a, ok := parseScope(s)
		if !ok {
			continue
		}
		if acts := ts.allowed(user, authenticated, a.Type, a.Name, a.Actions); len(acts) > 0 {
			grants = append(grants, access{Type: a.Type, Name: a.Name, Actions: acts})
		}
	}
	now := ts.o.clock.Now()
	tok, err := ts.sign(user, grants, now)
	if err != nil {
		fail(http.StatusInternalServerError, codeUnknown, err.Error())
		return
	}
	ans := tokenAnswer{AccessToken: tok, ExpiresIn: int64(ts.o.life / time.Second), IssuedAt: now.UTC().Format(time.RFC3339)}
	if post {
		ans.Scope = strings.Join(split, " ")
	} else {
		ans.Token = tok
	}
	writeJSON(sw, "application/json", ans)
}

func (ts *TokenServer) checkPassword(user, password string) bool {
	want, ok := ts.o.users[user]
	return ok && subtle.ConstantTimeCompare([]byte(want), []byte(password)) == 1
}

// claims are the claims of a token.
type claims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  string   `json:"aud"`
	Expiry    int64    `json:"exp"`
	NotBefore int64    `json:"nbf"`
	IssuedAt  int64    `json:"iat"`
	ID        string   `json:"jti"`
	Access    []access `json:"access"`
}

// sign makes a token of user granting grants, issued at now.
func (ts *TokenServer) sign(user string, grants []access, now time.Time) (string, error) {
	var jti [8]byte
	rand.Read(jti[:])
	c := claims{
		Issuer: ts.o.issuer, Subject: user, Audience: ts.o.service,
		Expiry: now.Add(ts.o.life).Unix(), NotBefore: now.Add(-time.Minute).Unix(), IssuedAt: now.Unix(),
		ID: hex.EncodeToString(jti[:]), Access: grants,
	}
	header := map[string]any{"typ": "JWT", "alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(ts.certDER)}}
	hj, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	cj, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	input := base64.RawURLEncoding.EncodeToString(hj) + "." + base64.RawURLEncoding.EncodeToString(cj)
	sum := sha256.Sum256([]byte(input))
	rr, ss, err := ecdsa.Sign(rand.Reader, ts.key, sum[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	rr.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
