package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opendao/dao/registry"
	"github.com/opendao/dao/registry/remote"
)

// FuzzRegistriesConfig feeds arbitrary files to the registries config loader: it must
// refuse them with an error or give hosts the registry client accepts, never panic.
func FuzzRegistriesConfig(f *testing.F) {
	f.Add("mirrors:\n  docker.io:\n    endpoint: [\"http://127.0.0.1:5001\"]\n")
	f.Add("configs:\n  r.local:5000:\n    plain_http: true\n    auth: {username: a, password: b}\n")
	f.Add("mirrors: {\"*\": {endpoint: [x]}}\n")
	f.Add("configs: [1, 2]\n")
	f.Fuzz(func(t *testing.T, data string) {
		path := filepath.Join(t.TempDir(), "registries.yaml")
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadRegistriesConfig(path)
		if err != nil {
			return
		}
		hosts, _, err := cfg.hosts(nil)
		if err != nil {
			return
		}
		c, err := registry.NewClient(remote.WithHosts(hosts))
		if err != nil {
			t.Fatalf("a config the loader took is refused by the client: %v\n%s", err, data)
		}
		c.Close()
	})
}

// TestRegistriesConfigErrors checks that the mistakes people make in registries.yaml are
// told in the file's words: the line, the key's path and what was expected, never a Go
// type.
func TestRegistriesConfigErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"configs:\n  r.local:5000:\n    plain_htp: true\n",
			"line 3: field configs.r.local:5000.plain_htp not found (did you mean plain_http?); the keys here are plain_http, tls, auth"},
		{"configs:\n  r.local:5000:\n    plain_http: yes please\n",
			`line 3: configs.r.local:5000.plain_http: want true or false, got "yes please"`},
		{"configs:\n  r.local:5000:\n    tls:\n      ca_fil: /x\n",
			"line 4: field configs.r.local:5000.tls.ca_fil not found (did you mean ca_file?); the keys here are ca_file, insecure_skip_verify"},
		{"mirrors:\n  docker.io:\n    endpoint: http://127.0.0.1:5001\n",
			`line 3: mirrors.docker.io.endpoint: want a list, such as ["https://mirror.example.com"], got "http://127.0.0.1:5001"`},
		{"configs: [1, 2]\n", "line 1: configs: want a mapping of registry hosts (such as docker.io:), got a list"},
		{"mirror:\n  docker.io: {}\n", "line 1: field mirror not found (did you mean mirrors?); the keys here are mirrors, configs"},
		{"configs:\n  r.local:5000:\n    plain_htp: true\n    auth: {user: a}\n",
			"\n  line 3: field configs.r.local:5000.plain_htp not found (did you mean plain_http?); the keys here are plain_http, tls, auth\n  line 4: field configs.r.local:5000.auth.user not found; the keys here are username, password, identitytoken"},
	} {
		path := filepath.Join(t.TempDir(), "registries.yaml")
		if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := loadRegistriesConfig(path)
		want := "registries config " + path + ":" + tc.want
		if !strings.HasPrefix(tc.want, "\n") {
			want = "registries config " + path + ": " + tc.want
		}
		if err == nil || err.Error() != want || !errors.Is(err, errRegistriesConfig) {
			t.Errorf("loadRegistriesConfig of\n%s got  %v\nwant %s", tc.yaml, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "main.") || err != nil && strings.Contains(err.Error(), "struct {") {
			t.Errorf("the error names Go types: %v", err)
		}
	}
}

// TestRegistryHostsPrecedence checks how the hosts directory, registries.yaml and
// --insecure combine: the yaml's settings of a host replace the directory's, the
// directory's other hosts stay, and --insecure makes a host plain HTTP keeping its mirrors.
func TestRegistryHostsPrecedence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registries.yaml")
	yaml := "configs:\n  r.example:5000:\n    plain_http: true\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadRegistriesConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	hosts, _, err := cfg.registryHosts("testdata/certs.d", []string{"hub.example"})
	if err != nil {
		t.Fatalf("registryHosts: %v", err)
	}
	if hc := hosts["r.example:5000"]; !hc.PlainHTTP || len(hc.Mirrors) != 0 || hc.Server != "" {
		t.Errorf("r.example:5000 = %+v, want the yaml's plain HTTP only", hc)
	}
	if hc := hosts["hub.example"]; !hc.PlainHTTP || len(hc.Mirrors) != 1 || hc.Mirrors[0].URL != "http://cache.example:5000" {
		t.Errorf("hub.example = %+v, want the directory's mirror, plain HTTP by --insecure", hc)
	}
	if _, err := registry.NewClient(remote.WithHosts(hosts)); err != nil {
		t.Errorf("NewClient: %v", err)
	}

	// A mistake the yaml's checks find late still names the file.
	bad := filepath.Join(t.TempDir(), "registries.yaml")
	if err := os.WriteFile(bad, []byte("mirrors:\n  docker.io:\n    endpoint: [ftp://x]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err = loadRegistriesConfig(bad); err != nil {
		t.Fatal(err)
	}
	_, _, err = cfg.registryHosts("", nil)
	if want := "registries config " + bad + `: mirrors.docker.io.endpoint[0]: "ftp://x" is not an http:// or https:// URL`; err == nil || err.Error() != want {
		t.Errorf("registryHosts = %v, want %s", err, want)
	}

	// Without the yaml, the directory's settings of r.example:5000 hold.
	hosts, _, err = (&registriesConfig{}).registryHosts("testdata/certs.d", nil)
	if err != nil {
		t.Fatal(err)
	}
	if hc := hosts["r.example:5000"]; hc.PlainHTTP || len(hc.Mirrors) != 1 || hc.Server != "https://r.example:5000" {
		t.Errorf("r.example:5000 from the directory = %+v", hc)
	}

	// A mistake in a hosts.toml names the file and the line, without the client's prefix.
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "r.example"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "r.example", "hosts.toml"), []byte("skip_verify = \"no\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = (&registriesConfig{}).registryHosts(dir, nil)
	want := "hosts directory " + dir + ": r.example/hosts.toml: line 1, column 15, key skip_verify: "
	if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, remote.ErrInvalidOption) {
		t.Errorf("registryHosts with a bad hosts.toml = %v, want %q...", err, want)
	}
}
