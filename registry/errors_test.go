package registry_test

import (
	"errors"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/opendao/dao"
	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/ctrd"
	"github.com/opendao/dao/registry/layout"
	"github.com/opendao/dao/registry/name"
	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/remote"
)

// TestSentinelsHaveClasses checks that every sentinel of the registry packages is of the
// containerd error class its documentation names, so that errdefs.IsX works on any of
// them, and that each is still told apart from the others by errors.Is.
func TestSentinelsHaveClasses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		err   error
		class error
	}{
		{"name.ErrInvalidName", name.ErrInvalidName, dao.ErrInvalid},
		{"oci.ErrInvalidImage", oci.ErrInvalidImage, dao.ErrInvalid},
		{"oci.ErrNotImage", oci.ErrNotImage, oci.ErrInvalidImage},
		{"oci.ErrInvalidOption", oci.ErrInvalidOption, dao.ErrInvalid},
		{"oci.ErrDigestMismatch", oci.ErrDigestMismatch, errdefs.ErrDataLoss},
		{"oci.ErrSizeMismatch", oci.ErrSizeMismatch, oci.ErrDigestMismatch},
		{"oci.ErrBlobNotFound", oci.ErrBlobNotFound, errdefs.ErrNotFound},
		{"oci.ErrNoPlatform", oci.ErrNoPlatform, errdefs.ErrNotFound},
		{"oci.ErrTooLarge", oci.ErrTooLarge, errdefs.ErrResourceExhausted},
		{"build.ErrInvalidPath", build.ErrInvalidPath, dao.ErrInvalid},
		{"build.ErrInvalidEntry", build.ErrInvalidEntry, dao.ErrInvalid},
		{"build.ErrInvalidOption", build.ErrInvalidOption, dao.ErrInvalid},
		{"layout.ErrInvalidLayout", layout.ErrInvalidLayout, dao.ErrInvalid},
		{"layout.ErrNotFound", layout.ErrNotFound, errdefs.ErrNotFound},
		{"remote.ErrNotFound", remote.ErrNotFound, errdefs.ErrNotFound},
		{"remote.ErrUnauthorized", remote.ErrUnauthorized, errdefs.ErrUnauthenticated},
		{"remote.ErrDenied", remote.ErrDenied, errdefs.ErrPermissionDenied},
		{"remote.ErrManifestUnknown", remote.ErrManifestUnknown, errdefs.ErrNotFound},
		{"remote.ErrBlobUnknown", remote.ErrBlobUnknown, oci.ErrBlobNotFound},
		{"remote.ErrNameUnknown", remote.ErrNameUnknown, errdefs.ErrNotFound},
		{"remote.ErrTooManyRequests", remote.ErrTooManyRequests, errdefs.ErrResourceExhausted},
		{"remote.ErrUnsupported", remote.ErrUnsupported, errdefs.ErrNotImplemented},
		{"remote.ErrNotMounted", remote.ErrNotMounted, errdefs.ErrFailedPrecondition},
		{"remote.ErrInvalidResponse", remote.ErrInvalidResponse, errdefs.ErrDataLoss},
		{"remote.ErrInvalidOption", remote.ErrInvalidOption, dao.ErrInvalid},
		{"ctrd.ErrInvalidOption", ctrd.ErrInvalidOption, dao.ErrInvalid},
	} {
		if !errors.Is(tc.err, tc.class) {
			t.Errorf("%s is not of class %v", tc.name, tc.class)
		}
		if tc.err == tc.class {
			t.Errorf("%s is its class itself", tc.name)
		}
	}
	// Distinct sentinels of one class do not match each other.
	if errors.Is(remote.ErrNotFound, layout.ErrNotFound) || errors.Is(remote.ErrManifestUnknown, remote.ErrNotFound) {
		t.Error("sentinels of one class match each other")
	}
}
