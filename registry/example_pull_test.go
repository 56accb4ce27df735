package registry_test

import (
	"context"
	"fmt"
	"log"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/opendao/dao/registry"
)

// Pulling an image into containerd, unpacked into overlayfs, ready to run. The process runs
// as root on the containerd host, so layers are extracted as they arrive.
func ExampleClient_Pull() {
	cc, err := client.New("/run/containerd/containerd.sock")
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	c, err := registry.NewClient(
		registry.WithHosts(map[string]registry.HostConfig{"127.0.0.1:5000": {PlainHTTP: true}}),
		registry.WithProgress(func(p registry.Progress) {
			if p.Complete {
				fmt.Println("fetched", p.Descriptor.Digest)
			}
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := namespaces.WithNamespace(context.Background(), "default")
	img, err := c.Pull(ctx, cc, "127.0.0.1:5000/app:1", registry.WithPullConcurrency(4))
	if err != nil {
		log.Fatal(err) // nothing half-done is left: a retry resumes where this one stopped
	}
	fmt.Println(img.Name, img.Target.Digest)
}
