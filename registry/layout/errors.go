package layout

import (
	"github.com/containerd/errdefs"

	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/errclass"
)

// Errors of layouts, beside those of the image model that reading one returns
// (oci.ErrBlobNotFound, oci.ErrDigestMismatch, oci.ErrInvalidImage) and name.ErrInvalidName
// for a name that is not an image reference.
var (
	// ErrInvalidLayout means a directory or tar stream is not a usable OCI image layout.
	// Class dao.ErrInvalid (errdefs.IsInvalidArgument).
	ErrInvalidLayout = errclass.New(dao.ErrInvalid, "registry: invalid image layout")
	// ErrNotFound means a layout holds no image of the requested name. Class
	// errdefs.ErrNotFound.
	ErrNotFound = errclass.New(errdefs.ErrNotFound, "registry: not found")
)
