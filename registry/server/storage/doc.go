// Package storage is where a registry server keeps what is pushed to it: a [Store] of
// content-addressed blobs, upload sessions, and per repository the links that make a blob
// or a manifest part of it, its tags and the referrers of its manifests. [FS] is the default
// store, on a local file system; a product that keeps blobs elsewhere (an object store, a
// database) implements Store and hands it to [github.com/opendao/dao/registry/server.New].
//
//	st, err := storage.OpenFS("/var/lib/dao/hub")
//	if err != nil {
//		return err
//	}
//	srv, err := server.New(st)
//
// # The file system store
//
// Under its root FS keeps:
//
//	blobs/<algorithm>/<first two hex digits>/<hex>     the content, manifests included
//	uploads/<id>/data, uploads/<id>/state.json          an upload session
//	repos/<name>/_blobs/<algorithm>/<hex>               a blob linked into the repository
//	repos/<name>/_manifests/<algorithm>/<hex>           a manifest of the repository (its media type)
//	repos/<name>/_tags/<tag>                            the digest a tag names
//	repos/<name>/_referrers/<alg>/<hex>/<alg>-<hex>     a referrer of a subject, as its descriptor
//
// Every file that is not appended to is written atomically (a temporary file beside it,
// synced, renamed over it, the directory synced). An upload appends to its data file and
// hashes what it appends with sha256 as it streams; after each append the data is synced
// and then the session's state (size, the hash's state) is written, so a server that is
// killed and restarted finds the session where the last complete append left it, and a
// PATCH resumes it (bytes past the recorded size, from an append cut by the crash, are cut
// off). Commit verifies the digest (sha256 from the streamed state; another algorithm,
// sha512, by hashing the file once more) before the data file is renamed into blobs/: a blob
// is either absent or whole, and is never served partial. Repository names are checked by
// the server against the distribution grammar, whose components cannot start with "_" or
// ".", so a repository cannot reach into the store's own directories.
//
// FS keeps the tags, manifest links and manifests it reads or writes in memory (64 MiB of
// manifests at most), so that a manifest GET of a hot image reads no file, and, after the
// first Repositories walks repos/, the list of repositories, which the writes keep; this is
// why one process only may use a root. A manifest read from disk is verified against its digest.
//
// # Garbage collection
//
// Nothing here deletes content that a repository no longer uses: DeleteManifest and
// UnlinkBlob only remove links. Collection is meant to be online, with no read-only window,
// and to run beside pushes through the [Collector] interface that FS implements:
//
//  1. Note the time T at which the collection starts.
//  2. Mark: for every repository (Repositories), every manifest it links (Manifests) and every
//     blob those manifests reference are live. A blob linked into a repository that no
//     manifest references is not: its link dangles once it is deleted, and BlobLinked
//     reports false.
//  3. Sweep: WalkBlobs lists every stored blob with the time it was last referenced (written,
//     committed, linked, or checked by a manifest put). A blob that is not live and was last
//     referenced before T minus a grace period is deleted with DeleteBlob(dgst, before),
//     which deletes it only if it was still not referenced since: a push that linked it
//     during the sweep wins (FS serialises the two per blob). WalkUploads lists the
//     sessions with their start times, so that sessions abandoned longer than a limit are
//     cancelled.
//
// A push in progress never loses a blob: uploads live under uploads/ until committed, a
// commit and a link refresh the blob's reference time, and a manifest put refreshes the
// time of every blob it checks before it links the manifest, so that a sweep that started
// before sees it as recent. The grace period must be longer than the longest time between a
// blob's commit and the put of the manifest that references it.
//
// Package [github.com/opendao/dao/registry/server/gc] is this collector.
package storage
