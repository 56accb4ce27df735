package build

import (
	"fmt"
	"io"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Compression is how a layer's tar stream is compressed into its blob. The zero value is Gzip.
type Compression int

const (
	// Gzip compresses layers with gzip at the default level, the format every runtime and
	// registry accepts. Media type application/vnd.oci.image.layer.v1.tar+gzip.
	Gzip Compression = iota
	// Zstd compresses layers with zstd: smaller and faster to unpack than gzip, and supported
	// by containerd since 1.5. Media type application/vnd.oci.image.layer.v1.tar+zstd.
	Zstd
	// Uncompressed stores the tar stream as it is. Media type
	// application/vnd.oci.image.layer.v1.tar.
	Uncompressed
)

// String returns "gzip", "zstd" or "uncompressed".
func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	case Uncompressed:
		return "uncompressed"
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

// MediaType returns the OCI media type of a layer compressed with c, or "" for an unknown c.
func (c Compression) MediaType() string {
	switch c {
	case Gzip:
		return ocispec.MediaTypeImageLayerGzip
	case Zstd:
		return ocispec.MediaTypeImageLayerZstd
	case Uncompressed:
		return ocispec.MediaTypeImageLayer
	}
	return ""
}

// compress returns a writer that compresses into w; closing it flushes the compressed stream
// but does not close w. The output depends only on the input, so layers are reproducible.
func (c Compression) compress(w io.Writer) (io.WriteCloser, error) {
	switch c {
	case Gzip:
		zw := gzip.NewWriter(w)
		// The header's mtime would otherwise be derived from the zero time.Time.
		zw.ModTime = time.Unix(0, 0)
		return zw, nil
	case Zstd:
		return zstd.NewWriter(w, zstd.WithEncoderConcurrency(1))
	case Uncompressed:
		return nopWriteCloser{w}, nil
	}
	return nil, fmt.Errorf("%w: unknown compression %v", ErrInvalidOption, c)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
