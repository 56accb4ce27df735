package registry_test

import (
	"context"
	"fmt"
	"log"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/opendao/dao/registry"
	"github.com/opendao/dao/registry/ctrd"
	"github.com/opendao/dao/registry/remote"
)

// A registry client that pulls into containerd: remote's options configure the registries,
// ctrd's the pull.
func ExampleClient_Pull() {
	cc, err := client.New("/run/containerd/containerd.sock")
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	c, err := registry.NewClient(remote.WithHosts(map[string]remote.HostConfig{"127.0.0.1:5000": {PlainHTTP: true}}))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := namespaces.WithNamespace(context.Background(), "default")
	img, err := c.Pull(ctx, cc, "127.0.0.1:5000/app:1", ctrd.WithUnpack("overlayfs"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(img.Name, img.Target.Digest)
}
