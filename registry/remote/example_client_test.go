package remote_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/remote"
)

func ExampleNewClient() {
	c, err := remote.NewClient(
		remote.WithDockerConfig(""), // ~/.docker/config.json, if there is one
		remote.WithHosts(map[string]remote.HostConfig{
			"docker.io":      {Mirrors: []remote.Mirror{{URL: "https://mirror.example.com"}}},
			"127.0.0.1:5000": {PlainHTTP: true},
		}),
		remote.WithRateLimit("registry-1.docker.io", 10, 20),
		remote.WithRetry(remote.RetryPolicy{MaxAttempts: 3, MinDelay: 100 * time.Millisecond, MaxDelay: 5 * time.Second, MaxRetryAfter: time.Minute}),
		remote.WithProgress(func(p remote.Progress) {
			fmt.Printf("%s %s %d/%d\n", p.Action, p.Descriptor.Digest.Encoded()[:12], p.Done, p.Total)
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println("ready")
	// Output: ready
}

// Pulling an image for one platform by hand: what a pull engine does before it writes the
// blobs into a content store.
func ExampleClient_FetchBlob() {
	ctx := context.Background()
	c, err := remote.NewClient(remote.WithHosts(map[string]remote.HostConfig{"127.0.0.1:5000": {PlainHTTP: true}}))
	if err != nil {
		log.Fatal(err)
	}
	m, err := c.Manifest(ctx, "127.0.0.1:5000/app:1")
	if err != nil {
		log.Fatal(err)
	}
	if m.Index != nil {
		d, err := oci.SelectPlatform(*m.Index, ocispec.Platform{OS: "linux", Architecture: "amd64"})
		if err != nil {
			log.Fatal(err)
		}
		if m, err = c.FetchManifest(ctx, "127.0.0.1:5000/app", d); err != nil {
			log.Fatal(err)
		}
	}
	for _, layer := range m.Image.Layers {
		rc, err := c.FetchBlob(ctx, "127.0.0.1:5000/app", layer)
		if err != nil {
			log.Fatal(err)
		}
		// io.Copy fails with ErrDigestMismatch at the end if the content is bad: discard
		// what was written then.
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			log.Fatal(err)
		}
	}
}

func ExampleClient_Copy() {
	ctx := context.Background()
	c, err := remote.NewClient(remote.WithHosts(map[string]remote.HostConfig{
		"127.0.0.1:5000": {PlainHTTP: true},
		"127.0.0.1:5001": {PlainHTTP: true},
	}))
	if err != nil {
		log.Fatal(err)
	}
	// Registry to registry, one platform only.
	if _, err := c.Copy(ctx, "127.0.0.1:5000/app:1", "127.0.0.1:5001/app:1",
		remote.WithPlatform(ocispec.Platform{OS: "linux", Architecture: "arm64"})); err != nil {
		log.Fatal(err)
	}
	// Registry to an OCI layout, and back to another tag.
	if _, err := c.PullLayout(ctx, "127.0.0.1:5000/app:1", "app-layout"); err != nil {
		log.Fatal(err)
	}
	if _, err := c.PushLayout(ctx, "app-layout", "127.0.0.1:5000/app:1", "127.0.0.1:5000/app:2"); err != nil {
		log.Fatal(err)
	}
}
