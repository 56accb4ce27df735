// Package oci is the image model of the registry packages: blobs, manifests, indexes and
// images as OCI describes them, and the platform an index's image is chosen for.
//
// A [Blob] is a descriptor and a way to read the content; an [Artifact] is a root blob (a
// manifest or an index) and every blob it refers to. [NewImage] puts layers (built by
// [github.com/opendao/dao/registry/build], or read from a layout) and an
// [ocispec.ImageConfig] (entrypoint, command, environment, user, ports) together into an
// [Image] for one platform ([WithPlatform]), and [NewIndex] puts images for several
// platforms under one [Index]. The same inputs always give the same digests.
// [DecodeManifest] reads OCI and Docker schema 2 manifests and indexes, and
// [SelectPlatform] picks a platform's manifest from an index as containerd does. [Verify]
// wraps a reader of a blob so that its last Read returns io.EOF only when digest and size
// match, and [ErrDigestMismatch] otherwise.
//
//	img, err := oci.NewImage([]*oci.Layer{layer}, ocispec.ImageConfig{Cmd: []string{"/bin/sh"}})
//	if err != nil {
//		return err // errors.Is(err, oci.ErrInvalidImage)
//	}
//	fmt.Println(img.Descriptor().Digest)
//
// Three packages consume artifacts: [github.com/opendao/dao/registry/layout] writes them to
// OCI image layouts, [github.com/opendao/dao/registry/remote] pushes them to registries,
// and [github.com/opendao/dao/registry/ctrd] imports them into containerd. This package
// imports none of them, nor containerd.
//
// The errors of this package ([ErrDigestMismatch], [ErrInvalidImage], [ErrTooLarge], ...)
// are those of content wherever it is read, so the other registry packages return them too;
// each is of one of containerd's error classes (errdefs), which its comment names.
package oci
