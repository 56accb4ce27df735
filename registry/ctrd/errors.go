package ctrd

import (
	"errors"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/errclass"
	"github.com/opendao/dao/registry/oci"
)

// ErrInvalidOption means an option was given a value it does not accept, or a required
// argument is missing (a nil client). Class dao.ErrInvalid (errdefs.IsInvalidArgument).
//
// Pull and Import return the errors of the other registry packages too: those of the
// registry client (remote.ErrManifestUnknown, remote.ErrUnauthorized, ..., all of containerd's
// error classes, so errdefs.IsNotFound(err) holds for a missing image), those of the image
// model (oci.ErrDigestMismatch for content that does not match its descriptor,
// oci.ErrNotImage, oci.ErrTooLarge, oci.ErrNoPlatform) and containerd's own.
var ErrInvalidOption = errclass.New(dao.ErrInvalid, "registry: invalid option")

// blobError adds the blob's digest to err, unless err is nil or already names the blob.
func blobError(op string, desc ocispec.Descriptor, err error) error {
	if err == nil || errors.Is(err, oci.ErrDigestMismatch) || errors.Is(err, oci.ErrInvalidImage) {
		return err
	}
	return fmt.Errorf("registry: %s blob %s: %w", op, desc.Digest, err)
}
