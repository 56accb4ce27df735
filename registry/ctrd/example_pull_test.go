package ctrd_test

import (
	"context"
	"fmt"
	"log"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/opendao/dao/registry/ctrd"
	"github.com/opendao/dao/registry/remote"
)

// Pulling an image into containerd, unpacked into overlayfs, ready to run. The process runs
// as root on the containerd host, so layers are extracted as they arrive.
func ExamplePull() {
	cc, err := client.New("/run/containerd/containerd.sock")
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	c, err := remote.NewClient(
		remote.WithHosts(map[string]remote.HostConfig{"127.0.0.1:5000": {PlainHTTP: true}}),
		remote.WithProgress(func(p remote.Progress) {
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
	img, err := ctrd.Pull(ctx, cc, c, "127.0.0.1:5000/app:1", ctrd.WithConcurrency(4))
	if err != nil {
		log.Fatal(err) // nothing half-done is left: a retry resumes where this one stopped
	}
	fmt.Println(img.Name, img.Target.Digest)
}
