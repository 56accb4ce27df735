package main

import (
	"os"
	"path/filepath"
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
