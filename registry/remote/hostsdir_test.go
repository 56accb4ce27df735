package remote_test

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opendao/dao/registry/internal/regtest"
	"github.com/opendao/dao/registry/remote"
)

// writeFiles writes files (path: content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLoadHostsDir reads a containerd hosts directory: server, mirrors in the file's
// order with their capabilities, CAs, headers and override_path, HOST_PORT_ directories,
// _default, and docker's certificate files.
func TestLoadHostsDir(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"r.example_5000_/hosts.toml": `
server = "http://r.example:5000"

[host."https://mirror-b.example/v2"]
  capabilities = ["pull"]
  ca = "ca.pem"
  [host."https://mirror-b.example/v2".header]
    x-mirror = ["b", "c"]

[host."https://mirror-a.example/cache/v2"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
  override_path = true
`,
		"r.example_5000_/ca.pem": caPEM,
		"docker.io/hosts.toml": `server = "https://registry-1.docker.io"
[host."http://127.0.0.1:5001"]
`,
		"_default/hosts.toml": `[host."http://cache.local:5000"]
  capabilities = ["pull", "resolve"]
`,
		"certs.example/ca.crt": caPEM,
		"not-a-dir":            "",
	})
	hosts, err := remote.LoadHostsDir(dir)
	if err != nil {
		t.Fatalf("LoadHostsDir: %v", err)
	}
	type mirror struct {
		URL    string
		Caps   remote.Capability
		CA     bool
		Skip   bool
		Header http.Header
	}
	type host struct {
		Server  string
		Plain   bool
		CA      bool
		Mirrors []mirror
	}
	got := map[string]host{}
	for reg, hc := range hosts {
		h := host{Server: hc.Server, Plain: hc.PlainHTTP, CA: hc.RootCAs != nil}
		for _, m := range hc.Mirrors {
			h.Mirrors = append(h.Mirrors, mirror{m.URL, m.Capabilities, m.RootCAs != nil, m.SkipVerify, m.Header})
		}
		got[reg] = h
	}
	want := map[string]host{
		"r.example:5000": {Server: "http://r.example:5000", Plain: true, Mirrors: []mirror{
			{URL: "https://mirror-b.example", Caps: remote.CapPull, CA: true, Header: http.Header{"X-Mirror": {"b", "c"}}},
			{URL: "https://mirror-a.example/cache", Caps: remote.CapPull | remote.CapResolve, Skip: true},
		}},
		"docker.io":            {Server: "https://registry-1.docker.io", Mirrors: []mirror{{URL: "http://127.0.0.1:5001", Caps: remote.CapPull | remote.CapResolve | remote.CapPush}}},
		remote.DefaultHostsKey: {Mirrors: []mirror{{URL: "http://cache.local:5000", Caps: remote.CapPull | remote.CapResolve}}},
		"certs.example":        {CA: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LoadHostsDir (-want +got):\n%s", diff)
	}
	if _, err := remote.NewClient(remote.WithHosts(hosts)); err != nil {
		t.Errorf("NewClient with the hosts: %v", err)
	}

	if hosts, err := remote.LoadHostsDir(filepath.Join(dir, "missing")); err != nil || hosts != nil {
		t.Errorf("LoadHostsDir of a missing directory = %v, %v; want none", hosts, err)
	}
}

// TestLoadHostsDirErrors checks that a mistake in hosts.toml names the file, the line and
// the key.
func TestLoadHostsDirErrors(t *testing.T) {
	for _, tc := range []struct{ name, toml, want string }{
		{"type", "server = \"https://r.example\"\n\n[host.\"https://m.example\"]\n  skip_verify = \"yes\"\n", "r.example/hosts.toml: line 4, column 17, key host.https://m.example.skip_verify: "},
		{"syntax", "server = https://r.example\n", "r.example/hosts.toml: line 1, column 10: "},
		{"capability", "[host.\"https://m.example\"]\n  capabilities = [\"pul\"]\n", `r.example/hosts.toml: host "https://m.example": capabilities: unknown capability "pul": want pull, resolve, push or referrers`},
		{"ca", "ca = \"nosuch.pem\"\n", "r.example/hosts.toml: ca: open "},
		{"override path", "[host.\"https://m.example/x\"]\n  override_path = true\n", `host "https://m.example/x": override_path with a path that does not end in /v2`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"r.example/hosts.toml": tc.toml})
			_, err := remote.LoadHostsDir(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, remote.ErrInvalidOption) || strings.Contains(err.Error(), "\n") {
				t.Errorf("LoadHostsDir = %v\nwant one line with %q, matching ErrInvalidOption", err, tc.want)
			}
		})
	}
}

// TestHostsDirMirrors pulls through the mirrors of a hosts directory: a registry's own,
// and _default's for a registry with no directory; the header of a host goes with its
// requests.
func TestHostsDirMirrors(t *testing.T) {
	ctx := context.Background()
	mirror := regtest.StartMemRegistry(t)
	var headers []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		headers = append(headers, r.Header.Get("X-Dao-Test"))
		u := *r.URL
		u.Scheme, u.Host = "http", mirror.Addr
		http.Redirect(w, r, u.String(), http.StatusTemporaryRedirect)
	}))
	defer hook.Close()
	pusher := regtest.NewClient(t, []string{mirror.Addr})
	img := regtest.Image(t, "amd64")
	desc, err := pusher.Push(ctx, mirror.Ref("app:1"), img)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"own.test/hosts.toml": "[host.\"" + hook.URL + "\"]\n  capabilities = [\"pull\", \"resolve\"]\n  header = { x-dao-test = \"own\" }\n",
		"_default/hosts.toml": "[host.\"http://" + mirror.Addr + "\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
	})
	hosts, err := remote.LoadHostsDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := remote.NewClient(regtest.QuickRetry(), remote.WithHosts(hosts))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, reg := range []string{"own.test", "other.test"} {
		// The mirror serves the image under the registry's repository name.
		if _, err := pusher.Push(ctx, mirror.Ref("app:1"), img); err != nil {
			t.Fatal(err)
		}
		m, err := c.Manifest(ctx, reg+"/app:1")
		if err != nil {
			t.Fatalf("Manifest %s/app:1 through the mirror: %v", reg, err)
		}
		if m.Descriptor.Digest != desc.Digest {
			t.Errorf("%s: digest %s, want %s", reg, m.Descriptor.Digest, desc.Digest)
		}
	}
	if len(headers) == 0 || headers[0] != "own" {
		t.Errorf("the own mirror saw X-Dao-Test %q, want \"own\"", headers)
	}
}

// FuzzLoadHostsDir feeds arbitrary hosts.toml files to LoadHostsDir: it refuses them with
// an error of one line or gives hosts that NewClient takes, and never panics.
func FuzzLoadHostsDir(f *testing.F) {
	f.Add("server = \"https://r.example\"\n[host.\"https://m.example\"]\n  capabilities = [\"pull\"]\n")
	f.Add("[host.\"http://m\"]\n  header = { a = [\"b\"] }\n  client = [[\"c\", \"k\"]]\n")
	f.Add("server = \"\"\nskip_verify = true\n")
	f.Fuzz(func(t *testing.T, data string) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"r.example/hosts.toml": data})
		hosts, err := remote.LoadHostsDir(dir)
		if err != nil {
			if !errors.Is(err, remote.ErrInvalidOption) {
				t.Fatalf("LoadHostsDir = %v, not ErrInvalidOption", err)
			}
			return
		}
		c, err := remote.NewClient(remote.WithHosts(hosts))
		if err != nil {
			t.Fatalf("a hosts.toml the loader took is refused by the client: %v\n%s", err, data)
		}
		c.Close()
	})
}
