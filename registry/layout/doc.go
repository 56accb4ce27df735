// Package layout reads and writes OCI image layouts: a directory (or a tar stream of one,
// for `ctr images import` and other tools) of blobs under blobs/<algorithm>/<hex> and an
// index.json that names the images.
//
// [Write] writes an artifact (an [oci.Image] or [oci.Index]) into a layout directory under a
// name, replacing an entry of that name, and [WriteTar] streams a whole layout as a tar.
// [Read] reads a layout back, verifying every manifest, index and config against its
// descriptor (a layer's blob is verified as it is read) and following no symbolic link
// inside the layout; its [Layout] lists each [Entry] of index.json, and [Layout.Find]
// returns the artifact of a name.
//
//	if err := layout.Write(ctx, "busybox-layout", "example.com/busybox:1", img); err != nil {
//		return err
//	}
//	l, err := layout.Read(ctx, "busybox-layout")
//	if err != nil {
//		return err // errors.Is(err, layout.ErrInvalidLayout), oci.ErrDigestMismatch, ...
//	}
//	a, err := l.Find("example.com/busybox:1")
//
// The registry client copies between layouts and registries (remote's PullLayout and
// PushLayout). This package imports no containerd.
package layout
