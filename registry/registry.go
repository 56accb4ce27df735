package registry

import (
	"context"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"

	"github.com/opendao/dao/registry/ctrd"
	"github.com/opendao/dao/registry/remote"
)

// Client is a registry client (a *remote.Client, whose methods it has: Resolve, Manifest,
// FetchBlob, Push, Copy, PullLayout, Tags, Delete, Referrers, ...) that also pulls images
// into containerd. It is what a program that runs containers holds: it satisfies
// edge.ImagePuller and pipeline.Pusher. It is safe for simultaneous use; Close releases the
// idle connections of its remote client.
type Client struct {
	*remote.Client
}

// NewClient returns a Client of the registries opts describe (remote.WithHosts,
// remote.WithDockerConfig, remote.WithCredentials, ...); with none, it reaches any registry
// over HTTPS, anonymously. It fails as remote.NewClient does, with an error matching
// remote.ErrInvalidOption for a bad option.
func NewClient(opts ...remote.Option) (*Client, error) {
	rc, err := remote.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	return &Client{Client: rc}, nil
}

// Pull puts the image or index ref names into the containerd behind cc, unpacked, ready to
// run: ctrd.Pull with the client's registries. ctx carries the containerd namespace
// (namespaces.WithNamespace) unless cc has a default one; opts are ctrd's (ctrd.WithUnpack,
// ctrd.WithPlatform, ...).
func (c *Client) Pull(ctx context.Context, cc *client.Client, ref string, opts ...ctrd.Option) (images.Image, error) {
	return ctrd.Pull(ctx, cc, c.Client, ref, opts...)
}
