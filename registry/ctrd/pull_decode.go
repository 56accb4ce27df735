package ctrd

import (
	"bufio"
	"context"
	"io"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/opencontainers/go-digest"
)

// Decoding goes ahead of the extraction by up to decodeAhead chunks of decodeChunk bytes.
// The layer being extracted needs few of them; the layer above it, decoded meanwhile, takes
// what it can until its turn.
const (
	decodeChunk = 256 << 10
	decodeAhead = 128 // 32 MiB
)

// layerDecoder decompresses a layer blob and hashes what comes out (for the layer's diff
// ID) in a goroutine of its own, ahead of the extraction that reads it. The unpacker starts
// the decoder of the layer above the one it extracts, so that both cores stay busy once the
// blobs are in: one extracting, one decompressing the next layer. Reads return the
// uncompressed layer; Digest is valid once they returned io.EOF.
type layerDecoder struct {
	*readahead
	d      digest.Digester
	cancel context.CancelFunc
}

// decode starts decoding the layer blob of in: from its tap as the blob arrives, or from the
// content store once committed. The diff ID is hashed with alg.
func (u *unpacker) decode(ctx context.Context, in *ingest, alg digest.Algorithm) *layerDecoder {
	ctx, cancel := context.WithCancel(ctx)
	d := alg.Digester()
	open := func() (io.Reader, func(), error) {
		select {
		case <-in.started:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		var (
			src     io.Reader
			closeRA = func() {}
		)
		if in.streamed {
			src = in.tap.reader(ctx)
		} else {
			if err := in.wait(ctx); err != nil {
				return nil, nil, err
			}
			ra, err := u.p.cs.ReaderAt(ctx, in.desc)
			if err != nil {
				return nil, nil, err
			}
			src, closeRA = content.NewReader(ra), func() { ra.Close() }
		}
		dr, err := decompress(in.desc.MediaType, bufio.NewReaderSize(src, 1<<20))
		if err != nil {
			closeRA()
			return nil, nil, err
		}
		return io.TeeReader(&limitedDecoder{r: dr, u: u}, d.Hash()), func() {
			dr.Close()
			closeRA()
		}, nil
	}
	return &layerDecoder{readahead: newReadaheadOpen(open, decodeChunk, decodeAhead), d: d, cancel: cancel}
}

// Digest returns the digest of the uncompressed layer, once it is read to its end.
func (ld *layerDecoder) Digest() digest.Digest { return ld.d.Digest() }

// Close stops the decoding and waits for its goroutine.
func (ld *layerDecoder) Close() error {
	ld.cancel()
	return ld.readahead.Close()
}

// limitedDecoder counts what a layer decompresses to against the unpack limit, and fails
// once the layers of the pull pass it.
type limitedDecoder struct {
	r io.Reader
	u *unpacker
}

func (l *limitedDecoder) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if l.u.decoded.Add(int64(n)) > l.u.limit {
		return n, errUnpackLimit(l.u.limit)
	}
	return n, err
}
