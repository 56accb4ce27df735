package pki

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Join token format.
//
// A join token is the ASCII string
//
//	DAO1-<pin>-<secret>
//
// where DAO1 names the format and its version, <pin> is the SHA-256 digest of the CA
// certificate's DER in lower-case unpadded base32 (RFC 4648 alphabet, 52 characters), and
// <secret> is 20 random bytes (160 bits) in the same encoding (32 characters): 90 characters
// in all. Base32 keeps the token case-insensitive to read aloud yet unambiguous, free of
// characters a shell or URL would mangle, and shorter than hex.
//
// The pin lets a joining node check the CA certificate it is shown before it trusts it
// (VerifyCAPin), as k3s's K10<sha256>::secret and swarmkit's SWMTKN-1-<digest>-<secret> do;
// the secret is what the CA checks before it issues a certificate. The CA keeps only the
// SHA-256 digest of each secret. A token may be used by many nodes until it expires or is
// revoked.
const (
	TokenPrefix    = "DAO1-"
	tokenPinLen    = 52 // base32 of 32 bytes, unpadded
	tokenSecretLen = 32 // base32 of 20 bytes
	// TokenSecretBytes is the number of random bytes in a join token's secret.
	TokenSecretBytes = 20
	// TokenLen is the length of a join token in characters.
	TokenLen = len(TokenPrefix) + tokenPinLen + 1 + tokenSecretLen
	// DefaultTokenTTL is how long a join token is accepted unless WithTokenTTL or
	// WithoutTokenExpiry says otherwise: 24 hours, as kubeadm's bootstrap tokens.
	DefaultTokenTTL = 24 * time.Hour
)

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// JoinToken is a parsed join token.
type JoinToken struct {
	// CAPin is the SHA-256 digest of the CA certificate's DER.
	CAPin [32]byte
	// Secret is the token's secret, which the CA checks.
	Secret [TokenSecretBytes]byte
}

// Encode returns the token as a string, secret included, in the format ParseJoinToken reads.
func (t JoinToken) Encode() string {
	return TokenPrefix + b32.EncodeToString(t.CAPin[:]) + "-" + b32.EncodeToString(t.Secret[:])
}

// String returns the token with its secret redacted, so that a token printed by mistake
// (in a log line, with %v) does not leak it. Use Encode for the whole token.
func (t JoinToken) String() string {
	return TokenPrefix + b32.EncodeToString(t.CAPin[:]) + "-REDACTED"
}

// ParseJoinToken parses a token in the format that JoinToken.Encode writes. It returns an
// error of class ErrMalformedToken naming what is wrong; the error never quotes the secret.
// It does not trim white space: a caller reading the token from a file trims it first.
func ParseJoinToken(s string) (JoinToken, error) {
	var t JoinToken
	bad := func(format string, args ...any) (JoinToken, error) {
		return JoinToken{}, fmt.Errorf("pki: parse join token: %w: %s", ErrMalformedToken, fmt.Sprintf(format, args...))
	}
	if !strings.HasPrefix(s, TokenPrefix) {
		if i := strings.IndexByte(s, '-'); i > 0 && i <= 8 && strings.HasPrefix(s, "DAO") {
			return bad("version %q is not supported, want %q", s[:i], strings.TrimSuffix(TokenPrefix, "-"))
		}
		return bad("does not begin with %q", TokenPrefix)
	}
	rest := s[len(TokenPrefix):]
	pin, secret, ok := strings.Cut(rest, "-")
	if !ok {
		return bad("want %q, a pin, '-' and a secret; there is no '-' after the pin", TokenPrefix)
	}
	if strings.Contains(secret, "-") {
		return bad("more than three '-'-separated parts")
	}
	if len(pin) != tokenPinLen {
		return bad("the CA pin is %d characters, want %d", len(pin), tokenPinLen)
	}
	if len(secret) != tokenSecretLen {
		return bad("the secret is %d characters, want %d", len(secret), tokenSecretLen)
	}
	if i := invalidBase32(pin); i >= 0 {
		return bad("the CA pin has an invalid character at offset %d (want a-z or 2-7)", i)
	}
	if i := invalidBase32(secret); i >= 0 {
		return bad("the secret has an invalid character at offset %d (want a-z or 2-7)", i)
	}
	if err := decodeExact(t.CAPin[:], pin); err != nil {
		return bad("the CA pin does not decode: %v", err)
	}
	if err := decodeExact(t.Secret[:], secret); err != nil {
		return bad("the secret does not decode")
	}
	return t, nil
}

// decodeExact decodes s into dst, refusing non-canonical encodings (trailing bits set), so
// that each token has one spelling.
func decodeExact(dst []byte, s string) error {
	n, err := b32.Decode(dst, []byte(s))
	if err != nil {
		return err
	}
	if n != len(dst) || b32.EncodeToString(dst) != s {
		return fmt.Errorf("not a canonical encoding of %d bytes", len(dst))
	}
	return nil
}

func invalidBase32(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return i
		}
	}
	return -1
}

// VerifyCAPin checks that caCertDER, the CA certificate a joining node was shown, is the one
// the token pins. It returns ErrMalformedToken for a bad token and ErrCAPinMismatch for
// another certificate. A node calls it before it trusts anything the CA says.
func VerifyCAPin(token string, caCertDER []byte) error {
	t, err := ParseJoinToken(token)
	if err != nil {
		return err
	}
	got := sha256.Sum256(caCertDER)
	if subtle.ConstantTimeCompare(got[:], t.CAPin[:]) != 1 {
		return fmt.Errorf("pki: verify CA pin: %w: the certificate's digest is %s, the token pins %s",
			ErrCAPinMismatch, b32.EncodeToString(got[:]), b32.EncodeToString(t.CAPin[:]))
	}
	return nil
}

type tokenEntry struct {
	hash    [32]byte  // SHA-256 of the secret
	expires time.Time // zero: never
}

type tokenOptions struct {
	ttl time.Duration // 0: never expires
}

// TokenOption configures NewJoinToken and RotateJoinTokens.
type TokenOption func(*tokenOptions) error

// WithTokenTTL makes the token expire d after it is made. Default: DefaultTokenTTL (24 h).
// d must be positive.
func WithTokenTTL(d time.Duration) TokenOption {
	return func(o *tokenOptions) error {
		if d <= 0 {
			return fmt.Errorf("pki: WithTokenTTL(%v): %w: must be positive", d, ErrInvalidOption)
		}
		o.ttl = d
		return nil
	}
}

// WithoutTokenExpiry makes a token that never expires; it is accepted until it is revoked.
// Default: tokens expire after DefaultTokenTTL.
func WithoutTokenExpiry() TokenOption {
	return func(o *tokenOptions) error {
		o.ttl = 0
		return nil
	}
}

// NewJoinToken makes a join token the CA accepts until it expires or is revoked, and returns
// it encoded. The CA keeps only the SHA-256 digest of its secret.
func (ca *CA) NewJoinToken(opts ...TokenOption) (string, error) {
	e, token, err := ca.newToken(opts)
	if err != nil {
		return "", err
	}
	ca.mu.Lock()
	ca.tokens = append(ca.tokens, e)
	ca.mu.Unlock()
	return token, nil
}

// RotateJoinTokens revokes every join token and returns a new one, as after a token leaked.
// Nodes that already joined keep their certificates.
func (ca *CA) RotateJoinTokens(opts ...TokenOption) (string, error) {
	e, token, err := ca.newToken(opts)
	if err != nil {
		return "", err
	}
	ca.mu.Lock()
	ca.dropped = append(ca.dropped, ca.tokens...)
	ca.tokens = []tokenEntry{e}
	ca.mu.Unlock()
	return token, nil
}

func (ca *CA) newToken(opts []TokenOption) (tokenEntry, string, error) {
	o := tokenOptions{ttl: DefaultTokenTTL}
	var errs []error
	for _, opt := range opts {
		if opt == nil {
			errs = append(errs, fmt.Errorf("pki: nil token option: %w", ErrInvalidOption))
			continue
		}
		if err := opt(&o); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return tokenEntry{}, "", err
	}
	t := JoinToken{CAPin: ca.pin}
	if _, err := rand.Read(t.Secret[:]); err != nil {
		return tokenEntry{}, "", fmt.Errorf("pki: join token: %w", err)
	}
	e := tokenEntry{hash: sha256.Sum256(t.Secret[:])}
	if o.ttl > 0 {
		e.expires = ca.clock.Now().Add(o.ttl)
	}
	return e, t.Encode(), nil
}

// RevokeJoinToken makes the CA refuse token from now on. It returns ErrMalformedToken for a
// malformed token and ErrInvalidToken for one the CA does not know (or no longer accepts).
func (ca *CA) RevokeJoinToken(token string) error {
	t, err := ParseJoinToken(token)
	if err != nil {
		return err
	}
	h := sha256.Sum256(t.Secret[:])
	ca.mu.Lock()
	defer ca.mu.Unlock()
	for i, e := range ca.tokens {
		if subtle.ConstantTimeCompare(e.hash[:], h[:]) == 1 {
			ca.tokens = append(ca.tokens[:i], ca.tokens[i+1:]...)
			ca.dropped = append(ca.dropped, e)
			return nil
		}
	}
	return fmt.Errorf("pki: revoke join token: %w: not a token of this CA", ErrInvalidToken)
}

// CheckJoinToken reports whether the CA accepts token: nil if so; else an error of class
// ErrInvalidToken (a malformed token, one pinning another CA, a secret the CA did not issue
// or revoked) or ErrTokenExpired. A malformed token's error also matches ErrMalformedToken.
// The secret is compared in constant time with every token the CA holds.
func (ca *CA) CheckJoinToken(token string) error {
	t, err := ParseJoinToken(token)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if subtle.ConstantTimeCompare(t.CAPin[:], ca.pin[:]) != 1 {
		return fmt.Errorf("pki: check join token: %w: the token pins another CA", ErrInvalidToken)
	}
	h := sha256.Sum256(t.Secret[:])
	now := ca.clock.Now()
	ca.mu.Lock()
	defer ca.mu.Unlock()
	found := -1
	for i, e := range ca.tokens {
		// No early exit: the time taken does not depend on which token matched.
		if subtle.ConstantTimeCompare(e.hash[:], h[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return fmt.Errorf("pki: check join token: %w: not a token of this CA, or revoked", ErrInvalidToken)
	}
	if e := ca.tokens[found]; !e.expires.IsZero() && !now.Before(e.expires) {
		return fmt.Errorf("pki: check join token: %w at %s", ErrTokenExpired, e.expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// JoinTokens returns the number of join tokens the CA holds, expired ones included until
// PruneJoinTokens drops them.
func (ca *CA) JoinTokens() int {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	return len(ca.tokens)
}

// PruneJoinTokens forgets expired join tokens and returns how many it dropped.
func (ca *CA) PruneJoinTokens() int {
	now := ca.clock.Now()
	ca.mu.Lock()
	defer ca.mu.Unlock()
	kept := ca.tokens[:0]
	for _, e := range ca.tokens {
		if e.expires.IsZero() || now.Before(e.expires) {
			kept = append(kept, e)
		}
	}
	n := len(ca.tokens) - len(kept)
	clear(ca.tokens[len(kept):])
	ca.tokens = kept
	// A revoked token past its expiry needs no record to stay refused.
	ca.dropped = slices.DeleteFunc(ca.dropped, func(e tokenEntry) bool { return !e.expires.IsZero() && !now.Before(e.expires) })
	return n
}
