package storage

import (
	"github.com/containerd/errdefs"

	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/errclass"
)

// Errors of a Store, which the server maps to the distribution spec's error codes. A Store
// other than FS returns them too (wrapped with detail), so that the server answers alike.
var (
	// ErrBlobUnknown means a blob is not stored, or not linked into the repository. Class
	// errdefs.ErrNotFound.
	ErrBlobUnknown = errclass.New(errdefs.ErrNotFound, "registry storage: blob unknown")
	// ErrManifestUnknown means a manifest or a tag is not in the repository. Class
	// errdefs.ErrNotFound.
	ErrManifestUnknown = errclass.New(errdefs.ErrNotFound, "registry storage: manifest unknown")
	// ErrNameUnknown means a repository does not exist. Class errdefs.ErrNotFound.
	ErrNameUnknown = errclass.New(errdefs.ErrNotFound, "registry storage: repository unknown")
	// ErrUploadUnknown means an upload session does not exist (never, or no longer).
	// Class errdefs.ErrNotFound.
	ErrUploadUnknown = errclass.New(errdefs.ErrNotFound, "registry storage: upload unknown")
	// ErrRangeInvalid means a chunk does not start where the upload ends. Class
	// errdefs.ErrOutOfRange.
	ErrRangeInvalid = errclass.New(errdefs.ErrOutOfRange, "registry storage: chunk out of order")
	// ErrDigestInvalid means content does not have the digest it was pushed with, or the
	// digest is not one the store takes. Class dao.ErrInvalid.
	ErrDigestInvalid = errclass.New(dao.ErrInvalid, "registry storage: digest invalid")
	// ErrInvalidOption means an option of OpenFS was given a value it does not accept.
	// Class dao.ErrInvalid.
	ErrInvalidOption = errclass.New(dao.ErrInvalid, "registry storage: invalid option")
)
