// Package ctrd puts images into containerd (1.6 or later, no transfer service needed): it
// pulls them from registries through a [remote.Client] ([Pull]) and imports artifacts that
// were built or read from a layout ([Import]). It is the containerd side of the registry
// packages, which otherwise import no containerd.
//
// [Pull] puts an image from a registry into a containerd ready to run: blobs into its
// content store, layers unpacked into its snapshotter, and the image record last. It
// streams each layer once: fetched in parallel, hashed as it is written, and decompressed
// and extracted into the layer's snapshot while it arrives, so a pull takes about as long
// as the slowest layer's fetch and extraction rather than the sum of downloading and then
// unpacking. Only verified content is committed (oci.ErrDigestMismatch otherwise), partial
// downloads resume with Range, content and snapshots already there are reused, a failed or
// cancelled pull leaves no image record (and keeps what it verified for the next attempt,
// [WithKeep]; its clean-up waits a few seconds for a containerd that is restarting), and
// layers cannot write outside their snapshot. Pull takes container images only: a manifest
// whose config is not an OCI or Docker image config (an artifact: a signature, a Helm
// chart) fails with oci.ErrNotImage, as does, before any fetch, a layer whose media type
// containerd cannot unpack; remote's PullLayout and Copy take artifacts too. The layers of
// a pull may unpack to at most [WithUnpackLimit] (by default 100 times their compressed
// size, and at least 1 GiB): a decompression bomb fails with oci.ErrTooLarge and its
// snapshot is removed. The client's remote.WithProgress reports every blob's bytes.
//
// When containerd runs on this host and the program is root, layer blobs skip containerd's
// socket: each is written into an unnamed file in the content store's own directory, hashed
// here as it arrives, and named in the store only once verified; containerd then records it
// through its content API as content it already has. This is what makes the pull about
// three times as fast as ctr's (BENCHMARKS.md). Where it cannot be done (another host, a
// user namespace, containerd not seeing the file) the pull falls back to the API by itself;
// [WithDirectContent](false) asks for the API always.
//
//	rc, err := remote.NewClient()
//	if err != nil {
//		return err
//	}
//	defer rc.Close()
//	img, err := ctrd.Pull(namespaces.WithNamespace(ctx, "dao"), cc, rc, "registry.local/app:1.2")
//	if err != nil {
//		return err // e.g. errdefs.IsNotFound(err), errors.Is(err, oci.ErrDigestMismatch)
//	}
//	fmt.Println(img.Name, img.Target.Digest)
//
// [Import] writes an artifact's blobs into containerd's content store and creates the image
// record, optionally unpacking it ([WithUnpack]):
//
//	_, err = ctrd.Import(ctx, cc, "example.com/busybox:1", img, ctrd.WithUnpack(""))
//
// Pull and Import take the same [Option]s; each With function says which of the two it
// applies to and its default.
package ctrd
