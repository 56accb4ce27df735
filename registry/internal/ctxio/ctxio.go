package ctxio

import (
	"context"
	"io"
)

// Reader fails reads once ctx is done, so that a long copy (a layer into a tar stream, a blob
// into a layout) stops on cancellation between two reads.
func Reader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
