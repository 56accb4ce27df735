package hub

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendao/dao/registry/server"
)

// FuzzParseScope: ParseScope never panics, and a scope it reads is written back by
// Access.Scope to one it reads the same.
func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"repository:team/app:pull,push", "registry:catalog:*", "repository(plugin):a:pull",
		"repository:localhost:5000/a:pull", "a::", ":::", "repository:a:pull,,push", "x:y:z z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseScope(s)
		if err != nil {
			return
		}
		if a.Type == "" || a.Name == "" || len(a.Actions) == 0 {
			t.Fatalf("ParseScope(%q) = %+v", s, a)
		}
		b, err := ParseScope(a.Scope())
		if err != nil || !cmp.Equal(a, b) {
			t.Fatalf("ParseScope(%q) = %+v; its Scope %q reads %+v, %v", s, a, a.Scope(), b, err)
		}
		if _, err := ParseScopes([]string{s + " " + s}); err != nil {
			t.Fatalf("ParseScopes of %q twice: %v", s, err)
		}
	})
}

// FuzzVerifyToken: verify never panics, and accepts nothing but the token the signer
// made: no change to it verifies.
func FuzzVerifyToken(f *testing.F) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	now := time.Unix(1_800_000_000, 0)
	s, err := newSigner(der, "dao-hub", "dao-hub", func() time.Time { return now })
	if err != nil {
		f.Fatal(err)
	}
	good, _, err := s.sign("alice", []server.Access{{Type: "repository", Name: "team/app", Actions: []string{"pull"}}}, false, time.Minute)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, 0, byte(0))
	f.Add(good, len(good)/2, byte('A'))
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJyb290In0.", 0, byte(0))
	f.Add("a.b.c", 1, byte('.'))
	f.Fuzz(func(t *testing.T, tok string, at int, b byte) {
		if at > 0 && at < len(tok) {
			tok = tok[:at] + string(b) + tok[at+1:]
		}
		c, err := s.verify(tok, false)
		if err != nil {
			return
		}
		// Base64url's last character may carry unused bits; strict decoding refuses
		// them, so only the signer's own token verifies.
		if tok != good {
			t.Fatalf("a changed token verified: %q (claims %+v)", tok, c)
		}
		if c.Subject != "alice" || !strings.HasPrefix(tok, "eyJ") {
			t.Fatalf("claims %+v", c)
		}
	})
}
