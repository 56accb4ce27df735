// Package gc collects what a registry's store no longer needs, online: beside pushes and
// pulls, with no read-only window. [Collect] runs one collection over a [Store] (a
// storage.Store that is also a storage.Collector, as storage.FS is); [Run] runs one every
// interval until its context is done.
//
//	fence := gc.NewFence()
//	srv, err := server.New(st, server.WithFence(fence))
//	...
//	rep, err := gc.Collect(ctx, st, gc.WithFence(fence), gc.WithGrace(time.Hour))
//
// A collection, started at T:
//
//  1. Takes before = T minus the grace period, or earlier if a manifest put that the
//     [Fence] knows of started earlier still.
//  2. With WithDeleteUntagged, per repository and under the repository's fence (manifest
//     puts to that repository wait for a few milliseconds; pulls and uploads do not),
//     unlinks the manifests that no tag names, that no kept index lists, whose subject (for
//     a referrer: a signature, an SBOM) is not kept, and that were last referenced before
//     before. This is what Harbor's "delete untagged artifacts" does; distribution's
//     --delete-untagged also deletes the platforms of an untagged index, which this does
//     not.
//  3. Marks every manifest still linked into a repository and every blob and manifest it
//     references.
//  4. Sweeps every blob that is not marked and was last referenced before before, with
//     storage.Collector.DeleteBlob's compare-and-delete: a blob that a push referenced since
//     (a commit, a link, a mount, a manifest put checking it) survives.
//  5. Cancels the upload sessions started longer ago than the upload TTL.
//
// [WithOnDelete] tells a caller that keeps its own accounts of the store (registry/hub's
// per-project quota usage) of each manifest unlinked and each blob deleted, as they go.
//
// # Why no push loses a blob
//
// A blob just uploaded is kept by the grace period until its manifest is put: the grace
// must be longer than a client takes between a layer's commit and the manifest put (an
// hour is generous; the default). A manifest put checks every blob it references, which
// refreshes the blob's reference time, and then links the manifest. If the check comes
// after the sweep set the blob aside, it fails and the put is refused with
// MANIFEST_BLOB_UNKNOWN (the client uploads the blob again); if it comes before, the blob's
// time is past before and the compare-and-delete spares it. The put's own duration is
// covered by the Fence: before is never later than the start of a put in progress at T, so
// a slow put (longer than the grace) is safe too; without a Fence, the grace must also be
// longer than any manifest put takes. An index put checks its manifests the same way, and
// the unlinking of untagged manifests waits for the puts in progress in its repository and
// holds new ones back while it decides, so that an index is never stored whose manifests
// are being unlinked.
package gc
