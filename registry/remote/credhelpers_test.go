package remote_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/opendao/dao/registry/remote"
)

// fakeHelper is a docker-credential-test script on a PATH of its own: it logs the server
// URL it is asked for (one line per run) and answers as the file answer says: a JSON
// object, or "fail" (exit 1, a message on stderr), or "notfound" (docker's message).
const fakeHelper = `#!/bin/sh
[ "$1" = get ] || exit 2
url=$(cat)
echo "$url" >> "$HELPER_DIR/asked"
case "$(cat "$HELPER_DIR/answer")" in
fail) echo "the keychain is locked" >&2; exit 1 ;;
notfound) echo "credentials not found in native keychain"; exit 1 ;;
*) cat "$HELPER_DIR/answer" ;;
esac
`

func TestCredentialHelpers(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "docker-credential-test"), []byte(fakeHelper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	t.Setenv("HELPER_DIR", dir)

	// A registry that wants basic auth from everyone but a request for "anon/".
	seen := make(chan string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok && !strings.Contains(r.URL.Path, "/anon/") {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if ok {
			seen <- user + ":" + pass
		}
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Header().Set("Docker-Content-Digest", testDigest)
		w.Header().Set("Content-Length", "10")
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	for _, tc := range []struct {
		name, config, answer, repo string
		want                       string // the credentials the registry sees, or the error's text
		wantErr                    bool
	}{
		{"credsStore", `{"credsStore":"test"}`, `{"ServerURL":"","Username":"u","Secret":"p"}`, "app", "u:p", false},
		{"credHelpers win over auths", `{"auths":{"` + host + `":{"username":"no","password":"no"}},"credHelpers":{"` + host + `":"test"}}`, `{"Username":"h","Secret":"s"}`, "app", "h:s", false},
		{"not found is anonymous", `{"credsStore":"test"}`, "notfound", "anon", "", false},
		{"not found falls back to auths", `{"credsStore":"test","auths":{"` + host + `":{"username":"a","password":"b"}}}`, "notfound", "app", "a:b", false},
		{"failing helper", `{"credsStore":"test"}`, "fail", "app", "registry: credential helper docker-credential-test (credsStore of CONFIG) failed to give the credentials of " + host + ": error getting credentials - err: exit status 1, out: `the keychain is locked`: log in again (docker login " + host + "), or fix the helper", true},
		{"missing helper", `{"credHelpers":{"` + host + `":"nosuch"}}`, "", "app", "registry: credential helper docker-credential-nosuch (credHelpers of CONFIG) is not installed: install it, or remove it from CONFIG", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfgDir := t.TempDir()
			cfg := filepath.Join(cfgDir, "config.json")
			if err := os.WriteFile(cfg, []byte(tc.config), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "answer"), []byte(tc.answer), 0o600); err != nil {
				t.Fatal(err)
			}
			os.Remove(filepath.Join(dir, "asked"))
			t.Setenv("DOCKER_CONFIG", cfgDir)
			c := newClient(t, []string{host}, remote.WithDockerConfig(""))
			_, err := c.Resolve(context.Background(), host+"/"+tc.repo+":1")
			if tc.wantErr {
				want := strings.ReplaceAll(tc.want, "CONFIG", cfg)
				var he *remote.CredentialHelperError
				if err == nil || !strings.HasSuffix(err.Error(), strings.TrimPrefix(want, "registry: ")) || !errors.As(err, &he) ||
					!errors.Is(err, remote.ErrCredentialHelper) || !errdefs.IsFailedPrecondition(err) {
					t.Fatalf("Resolve = %v\nwant a *CredentialHelperError ending %q", err, want)
				}
			} else if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			got := ""
			select {
			case got = <-seen:
			default:
			}
			if !tc.wantErr && got != tc.want {
				t.Errorf("the registry saw credentials %q, want %q", got, tc.want)
			}
			if tc.answer != "" {
				asked, _ := os.ReadFile(filepath.Join(dir, "asked"))
				if want := host + "\n"; string(asked) != want && !(tc.repo == "anon" && len(asked) == 0) {
					t.Errorf("the helper was asked for %q, want %q once", asked, want)
				}
			}
		})
	}
}
