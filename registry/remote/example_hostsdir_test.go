package remote_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/opendao/dao/registry/remote"
)

// ExampleLoadHostsDir reads a containerd hosts directory, as a node has it in
// /etc/containerd/certs.d, and gives its settings to the client: pulls of docker.io try
// the node's cache first.
func ExampleLoadHostsDir() {
	dir, err := os.MkdirTemp("", "certs.d")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	hostsTOML := `server = "https://registry-1.docker.io"

[host."http://cache.local:5000"]
  capabilities = ["pull", "resolve"]
`
	os.MkdirAll(filepath.Join(dir, "docker.io"), 0o755)
	os.WriteFile(filepath.Join(dir, "docker.io", "hosts.toml"), []byte(hostsTOML), 0o644)

	hosts, err := remote.LoadHostsDir(dir)
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range hosts["docker.io"].Mirrors {
		fmt.Println("mirror", m.URL)
	}
	fmt.Println("server", hosts["docker.io"].Server)
	c, err := remote.NewClient(remote.WithHosts(hosts))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	// Output:
	// mirror http://cache.local:5000
	// server https://registry-1.docker.io
}
