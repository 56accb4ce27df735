package remote_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opendao/dao/internal/daemon"
	"github.com/opendao/dao/internal/testutil"
)

// tokenServer is a token server for a registry configured for token auth: it checks basic
// credentials against users and signs ES256 JWTs that grant what was asked, with its
// certificate in the x5c header, as distribution 2.8 verifies them.
type tokenServer struct {
	*httptest.Server
	key     *ecdsa.PrivateKey
	certDER []byte
	users   map[string]string
	life    time.Duration

	mu     sync.Mutex
	scopes []string // of every request, in order
}

const (
	tokenService = "dao-test-registry"
	tokenIssuer  = "dao-test-issuer"
)

func startTokenServer(t testing.TB, users map[string]string, life time.Duration) *tokenServer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "dao test token signer"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ts := &tokenServer{key: key, certDER: der, users: users, life: life}
	ts.Server = httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(ts.Close)
	return ts
}

// auth is the registry option that trusts this server.
func (ts *tokenServer) auth() daemon.RegistryOption {
	return daemon.WithTokenAuth(daemon.TokenAuth{
		Realm:       ts.URL + "/token",
		Service:     tokenService,
		Issuer:      tokenIssuer,
		RootCertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.certDER}),
	})
}

// requests returns the scope parameter of each token request so far.
func (ts *tokenServer) requests() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.scopes...)
}

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ts.mu.Lock()
	ts.scopes = append(ts.scopes, strings.Join(q["scope"], " "))
	ts.mu.Unlock()
	user, pass, ok := r.BasicAuth()
	if ok && ts.users[user] != pass {
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`, http.StatusUnauthorized)
		return
	}
	if q.Get("service") != tokenService {
		http.Error(w, "unknown service", http.StatusBadRequest)
		return
	}
	type access struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Actions []string `json:"actions"`
	}
	grants := []access{}
	if ok { // anonymous users get a token that grants nothing
		for _, s := range q["scope"] {
			typ, rest, _ := strings.Cut(s, ":")
			i := strings.LastIndex(rest, ":")
			if i < 0 {
				continue
			}
			grants = append(grants, access{Type: typ, Name: rest[:i], Actions: strings.Split(rest[i+1:], ",")})
		}
	}
	now := time.Now()
	claims := map[string]any{
		"iss": tokenIssuer, "sub": user, "aud": tokenService,
		"exp": now.Add(ts.life).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"jti": base64.RawURLEncoding.EncodeToString(big.NewInt(now.UnixNano()).Bytes()), "access": grants,
	}
	header := map[string]any{"typ": "JWT", "alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(ts.certDER)}}
	hj, _ := json.Marshal(header)
	cj, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(hj) + "." + base64.RawURLEncoding.EncodeToString(cj)
	sum := sha256.Sum256([]byte(input))
	rr, ss, err := ecdsa.Sign(rand.Reader, ts.key, sum[:])
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	sig := make([]byte, 64)
	rr.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"token":      input + "." + base64.RawURLEncoding.EncodeToString(sig),
		"expires_in": int(ts.life / time.Second),
		"issued_at":  now.UTC().Format(time.RFC3339),
	})
}

// startTokenRegistry starts a registry with token auth and its token server, which lets
// testutil.RegistryUser in.
func startTokenRegistry(t testing.TB, life time.Duration) (*testutil.Registry, *tokenServer) {
	ts := startTokenServer(t, map[string]string{testutil.RegistryUser: testutil.RegistryPassword}, life)
	return testutil.StartRegistry(t, ts.auth()), ts
}
