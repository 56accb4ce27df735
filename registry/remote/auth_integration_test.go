package remote_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendao/dao/internal/daemon"
	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/registry/registrytest"
	"github.com/opendao/dao/registry/remote"
)

func TestBasicAuth(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryBasicAuth())
	ctx := context.Background()
	img := randomImage(t, 10<<10, "amd64")

	anonymous := newClient(t, []string{reg.Addr})
	if _, err := anonymous.Push(ctx, reg.Ref("app:1"), img); !errors.Is(err, remote.ErrUnauthorized) {
		t.Fatalf("anonymous Push: %v, want ErrUnauthorized", err)
	}
	wrong := newClient(t, []string{reg.Addr}, remote.WithCredentials(reg.Addr, remote.Credentials{Username: testutil.RegistryUser, Password: "nope"}))
	if _, err := wrong.Resolve(ctx, reg.Ref("app:1")); !errors.Is(err, remote.ErrUnauthorized) {
		t.Fatalf("Resolve with a wrong password: %v, want ErrUnauthorized", err)
	}

	right := newClient(t, []string{reg.Addr}, remote.WithCredentials(reg.Addr, remote.Credentials{Username: testutil.RegistryUser, Password: testutil.RegistryPassword}))
	desc, err := right.Push(ctx, reg.Ref("app:1"), img)
	if err != nil {
		t.Fatalf("Push: %v", err)
	}

	// The same credentials from a docker config.json.
	dir := t.TempDir()
	cfg := `{"auths":{"http://` + reg.Addr + `/v2/":{"auth":"` + base64.StdEncoding.EncodeToString([]byte(testutil.RegistryUser+":"+testutil.RegistryPassword)) + `"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	fromConfig := newClient(t, []string{reg.Addr}, remote.WithDockerConfig(filepath.Join(dir, "config.json")))
	got, err := fromConfig.Resolve(ctx, reg.Ref("app:1"))
	if err != nil {
		t.Fatalf("Resolve with docker config credentials: %v", err)
	}
	if got.Digest != desc.Digest {
		t.Errorf("Resolve: got %s, want %s", got.Digest, desc.Digest)
	}
}

// startTokenRegistry starts a Distribution registry with token auth and registrytest's
// token server for it, which lets testutil.RegistryUser in with tokens that live for life.
func startTokenRegistry(t testing.TB, life time.Duration) (*testutil.Registry, *registrytest.TokenServer) {
	t.Helper()
	ts, err := registrytest.NewTokenServer(
		registrytest.WithUser(testutil.RegistryUser, testutil.RegistryPassword),
		registrytest.WithTokenLifetime(life))
	if err != nil {
		t.Fatal(err)
	}
	tokens := httptest.NewServer(ts)
	t.Cleanup(tokens.Close)
	reg := testutil.StartRegistry(t, daemon.WithTokenAuth(daemon.TokenAuth{
		Realm:       tokens.URL + "/token",
		Service:     ts.Service(),
		Issuer:      ts.Issuer(),
		RootCertPEM: ts.CertificatePEM(),
	}))
	return reg, ts
}

// tokenScopes returns the scopes of each request ts answered so far, in order, those of one
// request joined by spaces.
func tokenScopes(ts *registrytest.TokenServer) []string {
	var out []string
	for _, r := range ts.Requests() {
		out = append(out, strings.Join(r.Scopes, " "))
	}
	return out
}

func TestTokenAuth(t *testing.T) {
	reg, ts := startTokenRegistry(t, time.Minute)
	ctx := context.Background()
	img := randomImage(t, 10<<10, "amd64")
	clk := newFakeClock()
	c := newClient(t, []string{reg.Addr},
		remote.WithClock(clk),
		remote.WithCredentials(reg.Addr, remote.Credentials{Username: testutil.RegistryUser, Password: testutil.RegistryPassword}))

	if _, err := c.Push(ctx, reg.Ref("team/app:1"), img); err != nil {
		t.Fatalf("Push: %v", err)
	}
	pushTokens := len(tokenScopes(ts))
	for i := 0; i < 3; i++ {
		if _, err := c.Resolve(ctx, reg.Ref("team/app:1")); err != nil {
			t.Fatalf("Resolve: %v", err)
		}
	}
	// The push fetched a pull token (to look for blobs) and a push token; the resolves
	// reuse the pull token.
	if diff := cmp.Diff([]string{"repository:team/app:pull", "repository:team/app:pull,push"}, tokenScopes(ts)); diff != "" {
		t.Errorf("token scopes after push and 3 resolves (-want +got):\n%s", diff)
	}
	// A token is refreshed before it expires: 10s before the end of its minute.
	clk.advance(49 * time.Second)
	if _, err := c.Resolve(ctx, reg.Ref("team/app:1")); err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if got, want := len(tokenScopes(ts)), pushTokens; got != want {
		t.Errorf("token requests 49s on: got %d, want %d", got, want)
	}
	clk.advance(2 * time.Second)
	if _, err := c.Resolve(ctx, reg.Ref("team/app:1")); err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if got, want := len(tokenScopes(ts)), pushTokens+1; got != want {
		t.Errorf("token requests 51s on: got %d, want %d", got, want)
	}

	// Catalog needs its own scope.
	repos, err := c.Catalog(ctx, reg.Addr)
	if err != nil {
		t.Fatalf("Catalog: %v", err)
	}
	if diff := cmp.Diff([]string{"team/app"}, repos); diff != "" {
		t.Errorf("Catalog (-want +got):\n%s", diff)
	}

	anonymous := newClient(t, []string{reg.Addr})
	if _, err := anonymous.Resolve(ctx, reg.Ref("team/app:1")); !errors.Is(err, remote.ErrUnauthorized) {
		t.Errorf("anonymous Resolve: %v, want ErrUnauthorized", err)
	}
	wrong := newClient(t, []string{reg.Addr}, remote.WithCredentials(reg.Addr, remote.Credentials{Username: testutil.RegistryUser, Password: "nope"}))
	if _, err := wrong.Resolve(ctx, reg.Ref("team/app:1")); !errors.Is(err, remote.ErrUnauthorized) {
		t.Errorf("Resolve with a wrong password: %v, want ErrUnauthorized", err)
	}
}
