// Package registry builds OCI images, stores them in OCI image layouts, imports them into
// containerd, and talks to OCI registries.
//
// # Client
//
// [NewClient] returns a [Client] of the OCI distribution API. References are normalised as
// the ecosystem does ([ParseReference]: "busybox" is docker.io/library/busybox:latest).
// [Client.Resolve] turns a tag into a descriptor, [Client.Manifest] and
// [Client.FetchManifest] read OCI and Docker schema 2 manifests and indexes ([SelectPlatform]
// picks a platform's manifest), and [Client.FetchBlob] streams a blob that is verified as it
// is read: the last Read returns io.EOF only when digest and size match, and
// [ErrDigestMismatch] or [ErrSizeMismatch] otherwise, so bad bytes are never returned as good.
// Downloads resume with Range after a broken connection, can run as parallel ranges, and are
// shared by concurrent callers asking for the same blob. [Client.Push] uploads an image or
// index (blobs monolithic or chunked, cross-repository mounts, then the manifest);
// [Client.Copy] copies between registries, [Client.PullLayout] and [Client.PushLayout] to and
// from OCI layouts; [Client.Tags], [Client.Catalog], [Client.Delete] and [Client.Referrers]
// (with the tag-schema fallback) do the rest.
//
// Authentication follows the registry's challenge: anonymous, basic, or bearer tokens from
// its token server, cached per scope and refreshed before they expire; credentials come from
// [WithCredentials] or a docker config.json ([WithDockerConfig]). Hosts are HTTPS unless
// [WithHosts] says plain HTTP or a custom CA for one, and may have mirrors (tried in order for
// what their capabilities allow, then the upstream). Requests are retried with exponential
// backoff and jitter on 408, 429, 5xx and broken connections, honouring Retry-After in full,
// and limited per host in rate ([WithRateLimit]) and concurrency ([WithMaxConcurrency]).
// Every response body the client reads (manifests, indexes, configs, blobs, tokens, lists)
// is watched: one that stalls or trickles below [WithSpeedLimit] (1 KiB/s over 30 s by
// default) is cut, asked for again (a blob from where it stopped, a manifest whole, with
// its digest verified again) and then from the next mirror, so a stuck mirror never holds
// a pull until the caller's context ends. Manifests and indexes of more than 4 MiB are
// refused ([ErrTooLarge]). [WithProgress] reports bytes done per blob, for progress bars.
//
// Errors from a registry are a *[ResponseError] (method, URL, status and the OCI error codes),
// which matches sentinels such as [ErrNotFound], [ErrUnauthorized], [ErrManifestUnknown] and
// [ErrTooManyRequests] with errors.Is.
//
// # Pulling into containerd
//
// [Client.Pull] puts an image from a registry into a containerd (1.6 or later, no transfer
// service needed) ready to run: blobs into its content store, layers unpacked into its
// snapshotter, and the image record last. It streams each layer once: fetched in parallel,
// hashed as it is written, and decompressed and extracted into the
// layer's snapshot while it arrives, so a pull takes about as long as the slowest layer's
// fetch and extraction rather than the sum of downloading and then unpacking. Only verified
// content is committed ([ErrDigestMismatch] otherwise), partial downloads resume with Range,
// content and snapshots already there are reused, a failed or cancelled pull leaves no image
// record (and keeps what it verified for the next attempt, [WithPullKeep]; its clean-up waits
// a few seconds for a containerd that is restarting), and layers cannot write outside their
// snapshot. Pull takes container images only: a manifest whose config is not an OCI or
// Docker image config (an artifact: a signature, a Helm chart) fails with [ErrNotImage], as
// does, before any fetch, a layer whose media type containerd cannot unpack; PullLayout and
// Copy take artifacts too. The layers of a pull may unpack to at most
// [WithPullUnpackLimit] (by default 100 times their compressed size, and at least 1 GiB):
// a decompression bomb fails with [ErrTooLarge] and its snapshot is removed.
// [WithProgress] reports every blob's bytes, for progress bars.
//
// When containerd runs on this host and the program is root, layer blobs skip containerd's
// socket: each is written into an unnamed file in the content store's own directory, hashed
// here as it arrives, and named in the store only once verified; containerd then records it
// through its content API as content it already has. This is what makes the pull about three
// times as fast as ctr's (BENCHMARKS.md). Where it cannot be done (another host, a user
// namespace, containerd not seeing the file) the pull falls back to the API by itself;
// [WithPullDirectContent](false) asks for the API always.
//
//	img, err := c.Pull(namespaces.WithNamespace(ctx, "dao"), cc, "registry.local/app:1.2")
//	if err != nil {
//		return err // e.g. errors.Is(err, registry.ErrNotFound), registry.ErrDigestMismatch
//	}
//	fmt.Println(img.Name, img.Target.Digest)
//
// # Images without a registry
//
// An image is made in three steps. A [LayerBuilder] collects files, directories, links and
// whiteouts (from bytes or from the host; host files are read at Build through handles that
// follow no link, and only if they are still the files that were added) and builds a
// [Layer]: a reproducible tar stream, compressed
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
// [ReadLayout] reads a layout back, verifying every blob against its descriptor and
// following no symbolic link inside the layout.
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
