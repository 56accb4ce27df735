// Package build builds image layers: reproducible tar streams, compressed with gzip (the
// default), zstd or not at all ([WithCompression]).
//
// A [LayerBuilder] collects files, directories, links and whiteouts, from bytes or from the
// host, and Build makes an [oci.Layer] of them, kept in an unlinked temporary file until
// its Close. Host files are read at Build through handles that follow no symbolic link, and
// only if they are still the files that were added. The same entries always give the same
// digests. A refused entry is an [*EntryError] matching [ErrInvalidPath] or
// [ErrInvalidEntry]; Build fails with the first error of the Adds.
//
//	b, err := build.NewLayerBuilder()
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
//	img, err := oci.NewImage([]*oci.Layer{layer}, ocispec.ImageConfig{
//		Cmd: []string{"/bin/sh"},
//		Env: []string{"PATH=/bin"},
//	})
//
// The image is then written to a layout ([github.com/opendao/dao/registry/layout]), pushed
// ([github.com/opendao/dao/registry/remote]) or imported into containerd
// ([github.com/opendao/dao/registry/ctrd]).
package build
