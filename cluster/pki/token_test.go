package pki_test

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/opendao/dao"
	"github.com/opendao/dao/cluster/pki"
)

func TestJoinTokenFormat(t *testing.T) {
	t.Parallel()
	ca, _ := newCA(t)
	tok, err := ca.NewJoinToken()
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != pki.TokenLen || !strings.HasPrefix(tok, pki.TokenPrefix) {
		t.Fatalf("token %q: length %d, want %d with prefix %s", tok, len(tok), pki.TokenLen, pki.TokenPrefix)
	}
	parsed, err := pki.ParseJoinToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.CAPin != sha256.Sum256(ca.CertificateDER()) || parsed.CAPin != ca.Pin() {
		t.Error("the token does not pin the CA certificate")
	}
	if parsed.Encode() != tok {
		t.Errorf("Encode %q, want %q", parsed.Encode(), tok)
	}
	if s := parsed.String(); strings.Contains(s, tok[len(tok)-20:]) || !strings.HasSuffix(s, "REDACTED") {
		t.Errorf("String %q leaks the secret", s)
	}
	other, _ := ca.NewJoinToken()
	if other == tok {
		t.Error("two tokens are the same")
	}
}

func TestParseJoinTokenErrors(t *testing.T) {
	t.Parallel()
	ca, _ := newCA(t)
	good, _ := ca.NewJoinToken()
	pin, secret := good[5:57], good[58:]
	for _, tc := range []struct {
		token, want string
	}{
		{"", "does not begin with"},
		{"SWMTKN-1-abc", "does not begin with"},
		{"DAO2-" + pin + "-" + secret, `version "DAO2"`},
		{"DAO1-" + pin + secret, "no '-' after the pin"},
		{"DAO1-" + pin + "-" + secret + "-x", "more than three"},
		{"DAO1-" + pin[1:] + "-" + secret, "the CA pin is 51 characters, want 52"},
		{"DAO1-" + pin + "-" + secret + "a", "the secret is 33 characters, want 32"},
		{"DAO1-A" + pin[1:] + "-" + secret, "the CA pin has an invalid character at offset 0"},
		{"DAO1-" + pin + "-" + secret[:5] + "1" + secret[6:], "the secret has an invalid character at offset 5"},
		{" " + good, "does not begin with"},
		{good + "\n", "the secret is 33 characters"},
		// 52 base32 characters hold 260 bits; a non-zero last character sets bits past 256.
		{"DAO1-" + pin[:51] + "7-" + secret, "the CA pin does not decode"},
	} {
		_, err := pki.ParseJoinToken(tc.token)
		if !errors.Is(err, pki.ErrMalformedToken) || !errors.Is(err, dao.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseJoinToken(%q): %v; want ErrMalformedToken saying %q", tc.token, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("ParseJoinToken(%q): the error %v quotes the secret", tc.token, err)
		}
	}
}

func TestCheckJoinToken(t *testing.T) {
	t.Parallel()
	ca, clk := newCA(t)
	other, _ := newCA(t)
	tok, err := ca.NewJoinToken(pki.WithTokenTTL(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	forever, err := ca.NewJoinToken(pki.WithoutTokenExpiry())
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.CheckJoinToken(tok); err != nil {
		t.Errorf("fresh token: %v", err)
	}

	foreign, _ := other.NewJoinToken()
	// The same secret pinned to ca: the CA never issued it.
	p, _ := pki.ParseJoinToken(foreign)
	p.CAPin = ca.Pin()
	for name, bad := range map[string]string{
		"malformed":         "DAO1-x",
		"another CA's":      foreign,
		"unknown secret":    p.Encode(),
		"with white space ": tok + " ",
	} {
		err := ca.CheckJoinToken(bad)
		if !errors.Is(err, pki.ErrInvalidToken) || !errdefs.IsUnauthorized(err) || errors.Is(err, pki.ErrTokenExpired) {
			t.Errorf("%s token: %v; want ErrInvalidToken", name, err)
		}
	}

	clk.Advance(time.Hour)
	err = ca.CheckJoinToken(tok)
	if !errors.Is(err, pki.ErrTokenExpired) || !errors.Is(err, pki.ErrInvalidToken) || !errdefs.IsUnauthorized(err) {
		t.Errorf("expired token: %v", err)
	}
	clk.Advance(100 * 365 * 24 * time.Hour)
	if err := ca.CheckJoinToken(forever); err != nil {
		t.Errorf("token without expiry: %v", err)
	}
	if n := ca.PruneJoinTokens(); n != 1 || ca.JoinTokens() != 1 {
		t.Errorf("PruneJoinTokens dropped %d, %d left; want 1, 1", n, ca.JoinTokens())
	}
	if err := ca.CheckJoinToken(forever); err != nil {
		t.Errorf("token without expiry after pruning: %v", err)
	}
}

func TestRevokeAndRotateJoinTokens(t *testing.T) {
	t.Parallel()
	ca, _ := newCA(t)
	a, _ := ca.NewJoinToken()
	b, _ := ca.NewJoinToken()
	if err := ca.RevokeJoinToken(a); err != nil {
		t.Fatal(err)
	}
	if err := ca.CheckJoinToken(a); !errors.Is(err, pki.ErrInvalidToken) {
		t.Errorf("revoked token: %v", err)
	}
	if err := ca.CheckJoinToken(b); err != nil {
		t.Errorf("the other token: %v", err)
	}
	if err := ca.RevokeJoinToken(a); !errors.Is(err, pki.ErrInvalidToken) {
		t.Errorf("revoking twice: %v", err)
	}
	if err := ca.RevokeJoinToken("nope"); !errors.Is(err, pki.ErrMalformedToken) {
		t.Errorf("revoking garbage: %v", err)
	}
	c, err := ca.RotateJoinTokens()
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.CheckJoinToken(b); !errors.Is(err, pki.ErrInvalidToken) {
		t.Errorf("token from before the rotation: %v", err)
	}
	if err := ca.CheckJoinToken(c); err != nil || ca.JoinTokens() != 1 {
		t.Errorf("rotated token: %v, %d tokens", err, ca.JoinTokens())
	}
	_, err = ca.NewJoinToken(pki.WithTokenTTL(0), nil)
	if !errors.Is(err, pki.ErrInvalidOption) || !strings.Contains(err.Error(), "WithTokenTTL(0s)") || !strings.Contains(err.Error(), "nil token option") {
		t.Errorf("bad token options: %v", err)
	}
}

func TestVerifyCAPin(t *testing.T) {
	t.Parallel()
	ca, _ := newCA(t)
	other, _ := newCA(t)
	tok, _ := ca.NewJoinToken()
	if err := pki.VerifyCAPin(tok, ca.CertificateDER()); err != nil {
		t.Errorf("the pinned CA: %v", err)
	}
	err := pki.VerifyCAPin(tok, other.CertificateDER())
	if !errors.Is(err, pki.ErrCAPinMismatch) || !errdefs.IsUnauthorized(err) {
		t.Errorf("another CA: %v", err)
	}
	if err := pki.VerifyCAPin("x", ca.CertificateDER()); !errors.Is(err, pki.ErrMalformedToken) {
		t.Errorf("malformed token: %v", err)
	}
}

// FuzzParseJoinToken checks that ParseJoinToken never panics, that what it accepts encodes
// back to the same string (one spelling per token), and that its errors never quote the
// input's tail, where a secret would be.
func FuzzParseJoinToken(f *testing.F) {
	f.Add("DAO1-" + strings.Repeat("a", 52) + "-" + strings.Repeat("b", 32))
	f.Add("DAO1-" + strings.Repeat("a", 51) + "q-" + strings.Repeat("b", 32))
	f.Add("DAO2-x-y")
	f.Add("SWMTKN-1-abc-def")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := pki.ParseJoinToken(s)
		if err != nil {
			if !errors.Is(err, pki.ErrMalformedToken) {
				t.Fatalf("error %v is not ErrMalformedToken", err)
			}
			if _, secret, ok := strings.Cut(strings.TrimPrefix(s, pki.TokenPrefix), "-"); ok && len(secret) >= 8 &&
				strings.Contains(err.Error(), secret) {
				t.Fatalf("error %v quotes the secret", err)
			}
			return
		}
		if got := tok.Encode(); got != s {
			t.Fatalf("ParseJoinToken(%q).Encode() = %q", s, got)
		}
		if len(s) != pki.TokenLen {
			t.Fatalf("accepted %q of length %d", s, len(s))
		}
	})
}
