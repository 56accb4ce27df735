package ctrd_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao"
	"github.com/opendao/dao/registry/ctrd"
	"github.com/opendao/dao/registry/internal/regtest"
)

// TestOptionsRefuseBadValues gives every option a value it refuses: Pull and Import fail
// before they need containerd, with an error that names the option and is of class
// dao.ErrInvalid.
func TestOptionsRefuseBadValues(t *testing.T) {
	t.Parallel()
	img := regtest.Image(t, "amd64")
	for name, opt := range map[string]ctrd.Option{
		"WithPlatform":    ctrd.WithPlatform(ocispec.Platform{Architecture: "amd64"}),
		"WithName":        ctrd.WithName("Not A Name"),
		"WithConcurrency": ctrd.WithConcurrency(0),
		"WithLabels":      ctrd.WithLabels(map[string]string{"": "x"}),
		"WithKeep":        ctrd.WithKeep(-1),
		"WithUnpackLimit": ctrd.WithUnpackLimit(0),
		"nil option":      nil,
	} {
		_, perr := ctrd.Pull(context.Background(), nil, nil, "x", opt)
		_, ierr := ctrd.Import(context.Background(), nil, "x", img, opt)
		for call, err := range map[string]error{"Pull": perr, "Import": ierr} {
			if !errors.Is(err, dao.ErrInvalid) || !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), name) {
				t.Errorf("%s with a bad %s: %v, want an error of class dao.ErrInvalid naming it", call, name, err)
			}
		}
	}
}
