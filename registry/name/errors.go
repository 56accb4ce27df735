package name

import (
	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/errclass"
)

// ErrInvalidName means a string is not a valid image reference or repository name. It is of
// class dao.ErrInvalid (errdefs.IsInvalidArgument). The error wrapping it names the string
// and the reason.
var ErrInvalidName = errclass.New(dao.ErrInvalid, "registry: invalid image name")
