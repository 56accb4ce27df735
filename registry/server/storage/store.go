package storage

import (
	"context"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Store keeps the content and the repositories of a registry. Blobs are global and
// addressed by digest; a repository sees a blob only once it is linked into it. The names
// and digests it is given have been validated by the server (repository names by the
// distribution grammar, digests by their algorithm), and the content of a manifest checked.
// Implementations must be safe for simultaneous use; FS is.
type Store interface {
	// StatBlob returns the size of the stored blob dgst, or an error matching
	// ErrBlobUnknown.
	StatBlob(ctx context.Context, dgst digest.Digest) (int64, error)
	// OpenBlob returns a reader of the whole blob dgst and its size, or an error matching
	// ErrBlobUnknown. The caller closes the reader.
	OpenBlob(ctx context.Context, dgst digest.Digest) (io.ReadSeekCloser, int64, error)

	// NewUpload starts an upload session for repository repo.
	NewUpload(ctx context.Context, repo string) (Upload, error)
	// Upload returns the session id of repository repo, started by this process or an
	// earlier one, or an error matching ErrUploadUnknown.
	Upload(ctx context.Context, repo, id string) (Upload, error)

	// LinkBlob makes the stored blob dgst part of repository repo (an error matching
	// ErrBlobUnknown if it is not stored).
	LinkBlob(ctx context.Context, repo string, dgst digest.Digest) error
	// BlobLinked reports whether the blob dgst is stored and linked into repo; it counts
	// as a reference of the blob for a collector.
	BlobLinked(ctx context.Context, repo string, dgst digest.Digest) (bool, error)
	// UnlinkBlob removes the blob from repo, or fails with ErrBlobUnknown if it was not
	// linked.
	UnlinkBlob(ctx context.Context, repo string, dgst digest.Digest) error

	// PutManifest stores m and links it into repo, with its referrer entry if it has a
	// subject.
	PutManifest(ctx context.Context, repo string, m Manifest) error
	// Manifest returns the manifest dgst of repo, or an error matching ErrManifestUnknown.
	// The caller must not modify its Raw, which the store may share between callers.
	Manifest(ctx context.Context, repo string, dgst digest.Digest) (Manifest, error)
	// ManifestLinked reports whether the manifest dgst is linked into repo.
	ManifestLinked(ctx context.Context, repo string, dgst digest.Digest) (bool, error)
	// DeleteManifest unlinks the manifest from repo, with the tags that name it and its
	// referrer entry, or fails with ErrManifestUnknown.
	DeleteManifest(ctx context.Context, repo string, dgst digest.Digest) error
	// Manifests lists the digests of the manifests linked into repo.
	Manifests(ctx context.Context, repo string) ([]digest.Digest, error)

	// Tag points tag of repo at the manifest dgst, which is linked.
	Tag(ctx context.Context, repo, tag string, dgst digest.Digest) error
	// ResolveTag returns the digest tag names, or an error matching ErrManifestUnknown.
	ResolveTag(ctx context.Context, repo, tag string) (digest.Digest, error)
	// Untag removes tag, or fails with ErrManifestUnknown.
	Untag(ctx context.Context, repo, tag string) error
	// Tags lists the tags of repo in lexical order, or fails with ErrNameUnknown for a
	// repository that does not exist.
	Tags(ctx context.Context, repo string) ([]string, error)

	// Referrers lists the referrer entries of subject in repo: the descriptors of the
	// manifests whose subject it is, with their artifact types and annotations.
	Referrers(ctx context.Context, repo string, subject digest.Digest) ([]ocispec.Descriptor, error)
	// Repositories lists the repositories in lexical order.
	Repositories(ctx context.Context) ([]string, error)
}

// Manifest is a manifest as a Store keeps it: its bytes and what the server read from them.
type Manifest struct {
	// Descriptor is the manifest's media type (as it was pushed), digest and size.
	Descriptor ocispec.Descriptor
	// Raw is the manifest, byte for byte as it was pushed.
	Raw []byte
	// Subject is the digest of the manifest's subject, "" if it has none.
	Subject digest.Digest
	// Referrer is the manifest's entry in its subject's referrers list; only with Subject.
	Referrer ocispec.Descriptor
}

// Upload is an upload session: content appended in order, then committed as a blob under
// its digest. Its methods may be called from several goroutines; they are serialised.
type Upload interface {
	// ID names the session in its URL; it is made of [0-9a-f] only.
	ID() string
	// Size is the number of bytes appended so far.
	Size() int64
	// StartedAt is when the session began.
	StartedAt() time.Time
	// Append appends r's content, which must start at offset (the session's size, or it
	// fails with ErrRangeInvalid and appends nothing), and returns the number of bytes it
	// appended. They are durable when Append returns, even with an error (a body cut off
	// midway), so that a client can resume from Size.
	Append(ctx context.Context, offset int64, r io.Reader) (int64, error)
	// Commit verifies that the content has digest dgst (else an error matching
	// ErrDigestInvalid, and the session is left as it was) and stores it as a blob, whole;
	// the session ends.
	Commit(ctx context.Context, dgst digest.Digest) error
	// Cancel ends the session and removes what it holds.
	Cancel(ctx context.Context) error
}

// Collector is what an online garbage collector needs of a Store beyond it; see the
// package documentation for how a collection runs.
type Collector interface {
	// WalkBlobs calls fn for each stored blob, with its size and the time it was last
	// referenced, until fn returns an error, which WalkBlobs returns.
	WalkBlobs(ctx context.Context, fn func(dgst digest.Digest, size int64, referenced time.Time) error) error
	// BlobReferenced returns the time the stored blob dgst was last referenced, or an
	// error matching ErrBlobUnknown.
	BlobReferenced(ctx context.Context, dgst digest.Digest) (time.Time, error)
	// DeleteBlob deletes the blob dgst if it was last referenced before before, and
	// reports whether it did.
	DeleteBlob(ctx context.Context, dgst digest.Digest, before time.Time) (bool, error)
	// WalkUploads calls fn for each upload session, with its repository, id, size and start.
	WalkUploads(ctx context.Context, fn func(repo, id string, size int64, started time.Time) error) error
}
