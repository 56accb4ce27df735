// Package registry is the entry to Dao's image packages, and a thin facade over two of them
// for the common case: a [Client] that is a registry client
// ([github.com/opendao/dao/registry/remote]) which also pulls images into containerd
// ([github.com/opendao/dao/registry/ctrd]). It satisfies edge.ImagePuller and
// pipeline.Pusher, so a program that runs containers holds one value and one import.
//
//	c, err := registry.NewClient(remote.WithDockerConfig(os.ExpandEnv("$HOME/.docker/config.json")))
//	if err != nil {
//		return err
//	}
//	defer c.Close()
//	img, err := c.Pull(namespaces.WithNamespace(ctx, "dao"), cc, "registry.example.com/web:1.0")
//
// The packages below it, each one responsibility, from the bottom up:
//
//   - [github.com/opendao/dao/registry/name]: image references, parsed and normalised.
//   - [github.com/opendao/dao/registry/oci]: blobs, manifests, indexes, images and
//     platforms: the image model, and the errors of content (oci.ErrDigestMismatch).
//   - [github.com/opendao/dao/registry/build]: the layer builder.
//   - [github.com/opendao/dao/registry/layout]: OCI image layouts, directories and tars.
//   - [github.com/opendao/dao/registry/remote]: the OCI distribution client: resolve,
//     fetch, push, copy, list, delete, referrers; auth, credentials, hosts and mirrors,
//     retries, rate limits and stall watchdogs.
//   - [github.com/opendao/dao/registry/ctrd]: pull into and import into containerd.
//
// Only ctrd (and so this package) imports containerd; a program that wants a registry
// client, or to build images, gets no containerd and no gRPC.
package registry
