package layout

import (
	"context"

	"github.com/opendao/dao/registry/internal/hostfs"
)

// ReadWalk is Read opening files without openat2, as on kernels that lack it, for tests.
func ReadWalk(ctx context.Context, dir string) (*Layout, error) {
	return read(ctx, dir, hostfs.Opener{Walk: true})
}
