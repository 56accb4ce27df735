package oci

import (
	"github.com/containerd/errdefs"

	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/errclass"
)

// Errors of the image model, which the other registry packages return too (a blob fetched
// from a registry or read from a layout that does not match its descriptor is an
// ErrDigestMismatch wherever it is read). They are wrapped with more detail (the blob's
// digest, the reason); test for them with errors.Is, or for their class with errdefs (each
// says its class).
var (
	// ErrInvalidImage means a manifest, image config or index is malformed or inconsistent:
	// an unsupported media type, a config whose diff IDs do not match the layers, two images
	// of one platform in an index. Class dao.ErrInvalid (errdefs.IsInvalidArgument).
	ErrInvalidImage = errclass.New(dao.ErrInvalid, "registry: invalid image")
	// ErrNotImage means a manifest is not that of a container image: its config's media type
	// is not an image config's (OCI or Docker), as with artifacts such as signatures, SBOMs
	// or Helm charts. It also matches ErrInvalidImage.
	ErrNotImage = errclass.New(ErrInvalidImage, "registry: not a container image")
	// ErrInvalidOption means an option was given a value it does not accept. Class
	// dao.ErrInvalid.
	ErrInvalidOption = errclass.New(dao.ErrInvalid, "registry: invalid option")
	// ErrDigestMismatch means a blob's content does not match its descriptor: its digest
	// differs, or it is shorter or longer than the descriptor's size. Class errdefs.ErrDataLoss.
	ErrDigestMismatch = errclass.New(errdefs.ErrDataLoss, "registry: digest mismatch")
	// ErrSizeMismatch means a blob is shorter or longer than its descriptor says. It also
	// matches ErrDigestMismatch.
	ErrSizeMismatch = errclass.New(ErrDigestMismatch, "registry: size mismatch")
	// ErrBlobNotFound means a blob that a descriptor names is missing. Class
	// errdefs.ErrNotFound.
	ErrBlobNotFound = errclass.New(errdefs.ErrNotFound, "registry: blob not found")
	// ErrNoPlatform means an index lists no manifest for the requested platform, or an image
	// is not for it. Class errdefs.ErrNotFound.
	ErrNoPlatform = errclass.New(errdefs.ErrNotFound, "registry: no manifest for the platform")
	// ErrTooLarge means something is larger than its reader takes: a manifest or index of
	// more than MaxManifestSize or a config of more than MaxDocumentSize (errors that also
	// match ErrInvalidImage), an answer of a registry larger than its reader reads, or the
	// layers of a pull, unpacked, more than its unpack limit. Class
	// errdefs.ErrResourceExhausted.
	ErrTooLarge = errclass.New(errdefs.ErrResourceExhausted, "registry: too large")
)

// MaxDocumentSize is the largest image config, or manifest or index of a layout, that the
// registry packages read into memory: 16 MiB.
const MaxDocumentSize = 16 << 20
