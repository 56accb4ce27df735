package hub

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/golang-jwt/jwt/v5"

	"github.com/opendao/dao/registry/server"
)

// ParseScope parses a scope of the Docker token protocol, "repository:team/app:pull,push",
// into an Access. The type is what comes before the first ":" (with a "(class)", as in
// "repository(plugin)", dropped), the actions after the last: a name may hold ":". A
// scope without actions, an empty type or an empty name is an error matching
// ErrInvalidScope.
func ParseScope(s string) (server.Access, error) {
	i := strings.IndexByte(s, ':')
	j := strings.LastIndexByte(s, ':')
	if i <= 0 || j == i {
		return server.Access{}, fmt.Errorf("%w: %q: want type:name:actions", ErrInvalidScope, s)
	}
	typ, name, acts := s[:i], s[i+1:j], s[j+1:]
	if k := strings.IndexByte(typ, '('); k > 0 && strings.HasSuffix(typ, ")") {
		typ = typ[:k]
	}
	if name == "" || acts == "" || strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return server.Access{}, fmt.Errorf("%w: %q: want type:name:actions", ErrInvalidScope, s)
	}
	a := server.Access{Type: typ, Name: name}
	for _, act := range strings.Split(acts, ",") {
		if act == "" {
			return server.Access{}, fmt.Errorf("%w: %q: an empty action", ErrInvalidScope, s)
		}
		a.Actions = union(a.Actions, []string{act})
	}
	return a, nil
}

// ParseScopes parses the scope parameters of a token request: each may hold several
// scopes separated by spaces, as the OAuth2 form sends them.
func ParseScopes(params []string) ([]server.Access, error) {
	var out []server.Access
	for _, p := range params {
		for _, s := range strings.Fields(p) {
			a, err := ParseScope(s)
			if err != nil {
				return nil, err
			}
			out = append(out, a)
		}
	}
	return out, nil
}

// accessEntry is an entry of a token's access claim.
type accessEntry struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// issuedClaims are the claims of a token the hub signs, as the distribution token spec
// has them (aud a single string).
type issuedClaims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  string           `json:"aud"`
	ExpiresAt *jwt.NumericDate `json:"exp"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	ID        string           `json:"jti"`
	Access    []accessEntry    `json:"access"`
	// Refresh marks a refresh token (an identity token for docker), which grants nothing
	// itself and is only exchanged for access tokens at the token endpoint.
	Refresh bool `json:"dao_refresh,omitempty"`
}

// parsedClaims are the claims of a token read back; aud may be a string or a list.
type parsedClaims struct {
	jwt.RegisteredClaims
	Access  []accessEntry `json:"access"`
	Refresh bool          `json:"dao_refresh,omitempty"`
}

// signer signs and verifies the hub's tokens with one ECDSA P-256 key (ES256).
type signer struct {
	key     *ecdsa.PrivateKey
	kid     string
	issuer  string
	service string
	now     func() time.Time
	leeway  time.Duration

	mu       sync.Mutex
	verified map[string]*parsedClaims // tokens verified, whose claims are never modified
}

// newSigner reads a PKCS #8 key.
func newSigner(der []byte, issuer, service string, now func() time.Time) (*signer, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("hub: signing key: %w", err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("hub: signing key: %T, want an ECDSA P-256 key", k)
	}
	pub, err := x509.MarshalPKIXPublicKey(&ek.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("hub: signing key: %w", err)
	}
	sum := sha256.Sum256(pub)
	return &signer{key: ek, kid: hex.EncodeToString(sum[:12]), issuer: issuer, service: service, now: now, leeway: 30 * time.Second}, nil
}

// sign issues a token to subject for access (or a refresh token), valid for life.
func (s *signer) sign(subject string, access []server.Access, refresh bool, life time.Duration) (string, time.Time, error) {
	now := s.now()
	var jti [12]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", now, err
	}
	c := issuedClaims{
		Issuer: s.issuer, Subject: subject, Audience: s.service,
		ExpiresAt: jwt.NewNumericDate(now.Add(life)), NotBefore: jwt.NewNumericDate(now), IssuedAt: jwt.NewNumericDate(now),
		ID: base64.RawURLEncoding.EncodeToString(jti[:]), Access: []accessEntry{}, Refresh: refresh,
	}
	for _, a := range access {
		c.Access = append(c.Access, accessEntry{Type: a.Type, Name: a.Name, Actions: a.Actions})
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, mapClaims(c))
	t.Header["kid"] = s.kid
	str, err := t.SignedString(s.key)
	return str, now, err
}

// mapClaims adapts issuedClaims to jwt.Claims for signing; the library only marshals it.
type mapClaims issuedClaims

func (c mapClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt, nil }
func (c mapClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt, nil }
func (c mapClaims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore, nil }
func (c mapClaims) GetIssuer() (string, error)                   { return c.Issuer, nil }
func (c mapClaims) GetSubject() (string, error)                  { return c.Subject, nil }
func (c mapClaims) GetAudience() (jwt.ClaimStrings, error)       { return jwt.ClaimStrings{c.Audience}, nil }

// maxTokenLength bounds a token the hub will parse.
const maxTokenLength = 16 << 10

// verify checks a token: ES256 signed by the hub's key (no other algorithm, "none"
// neither), its kid the key's, issued by the hub for its service, within its validity
// (with a small leeway), and an access token unless refresh. Errors match
// ErrInvalidToken.
func (s *signer) verify(token string, refresh bool) (*parsedClaims, error) {
	if len(token) > maxTokenLength {
		return nil, fmt.Errorf("%w: %d bytes", ErrInvalidToken, len(token))
	}
	if !refresh {
		if c := s.cached(token); c != nil {
			return c, nil
		}
	}
	var c parsedClaims
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		if kid, _ := t.Header["kid"].(string); kid != s.kid {
			return nil, errors.New("signed by another key")
		}
		return &s.key.PublicKey, nil
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
		jwt.WithAudience(s.service), jwt.WithIssuer(s.issuer),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(s.leeway),
		jwt.WithTimeFunc(s.now), jwt.WithStrictDecoding())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if c.Refresh != refresh {
		if refresh {
			return nil, fmt.Errorf("%w: an access token, not a refresh token", ErrInvalidToken)
		}
		return nil, fmt.Errorf("%w: a refresh token, not an access token", ErrInvalidToken)
	}
	if !refresh {
		s.remember(token, &c)
	}
	return &c, nil
}

// verifiedCacheSize bounds the tokens the signer remembers having verified.
const verifiedCacheSize = 4096

// cached returns the claims of a token verified before that is still within its times,
// so that a client sending one token with many requests pays for one ECDSA verification.
func (s *signer) cached(token string) *parsedClaims {
	s.mu.Lock()
	c := s.verified[token]
	s.mu.Unlock()
	if c == nil {
		return nil
	}
	now := s.now()
	if !now.Before(c.ExpiresAt.Add(s.leeway)) || (c.NotBefore != nil && now.Before(c.NotBefore.Add(-s.leeway))) {
		return nil
	}
	return c
}

func (s *signer) remember(token string, c *parsedClaims) {
	if c.ExpiresAt == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.verified == nil || len(s.verified) >= verifiedCacheSize {
		s.verified = make(map[string]*parsedClaims)
	}
	s.verified[token] = c
}

// covers reports whether a token's access grants every access of need.
func covers(granted []accessEntry, need []server.Access) bool {
	for _, n := range need {
		var have []string
		for _, g := range granted {
			if g.Type == n.Type && g.Name == n.Name {
				have = union(have, g.Actions)
			}
		}
		for _, a := range n.Actions {
			if !slices.Contains(have, a) {
				return false
			}
		}
	}
	return true
}
