// Package registry builds OCI images, stores them in OCI image layouts and imports them into
// containerd, all without a registry: what pipelines, examples and tests need to make real
// images on the spot. The OCI registry client and the pull engine will join it here.
//
// An image is made in three steps. A [LayerBuilder] collects files, directories and links
// (from bytes or from the host) and builds a [Layer]: a reproducible tar stream, compressed
// with gzip (the default), zstd or not at all, kept in an unlinked temporary file until
// [Layer.Close]. [NewImage] puts layers and an [ocispec.ImageConfig] (entrypoint, command,
// environment, user, ports) together into an [Image] for one platform, and [NewIndex] puts
// images for several platforms under one [Index]. The same inputs always give the same
// digests.
//
// Images and indexes are [Artifact] values: a root [Blob] (the manifest or the index) and
// every blob it refers to, each a descriptor and a way to read the content. Three things
// consume them: [WriteLayout] writes an OCI image layout directory, [WriteLayoutTar] streams
// one as a tar (for `ctr images import` and other tools), and [Import] writes the blobs into
// containerd's content store and creates the image record, optionally unpacking it.
// [ReadLayout] reads a layout back, verifying every blob against its descriptor.
//
// The smallest complete use builds a busybox image and makes it runnable in containerd
// (c is a *client.Client):
//
//	b, err := registry.NewLayerBuilder()
//	if err != nil {
//		return err
//	}
//	b.AddHostFile("bin/busybox", "/usr/bin/busybox")
//	b.AddSymlink("bin/sh", "busybox")
//	layer, err := b.Build(ctx) // fails with the first error of the Adds above
//	if err != nil {
//		return err
//	}
//	defer layer.Close()
//	img, err := registry.NewImage([]*registry.Layer{layer}, ocispec.ImageConfig{
//		Cmd: []string{"/bin/sh"},
//		Env: []string{"PATH=/bin"},
//	})
//	if err != nil {
//		return err
//	}
//	ctx = namespaces.WithNamespace(ctx, "default")
//	_, err = registry.Import(ctx, c, "example.com/busybox:1", img, registry.WithUnpack(""))
//
// or, to keep the image in a directory instead:
//
//	err = registry.WriteLayout(ctx, "busybox-layout", "example.com/busybox:1", img)
//
// Errors wrap the sentinels of this package (such as [ErrInvalidPath], [ErrDigestMismatch])
// and name the path or blob at fault; a refused layer entry is an [*EntryError].
package registry
