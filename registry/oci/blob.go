package oci

import (
	"bytes"
	"fmt"
	"hash"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Blob is a piece of content addressed by its descriptor: a layer, an image config, a
// manifest or an index. Code that stores or sends content (a layout writer, a containerd
// import, a registry push) needs nothing more.
type Blob interface {
	// Descriptor returns the blob's media type, digest and size.
	Descriptor() ocispec.Descriptor
	// Open returns a reader of the blob's content. Each call returns a new reader that starts
	// at the beginning; the caller closes it. Readers of blobs that this package did not
	// produce itself (a layout on disk) fail with ErrDigestMismatch when the content read does
	// not match the descriptor.
	Open() (io.ReadCloser, error)
}

// Artifact is an image or an index together with every blob it references: what layout.Write,
// layout.WriteTar and Import accept. *Image and *Index implement it.
type Artifact interface {
	// Blob is the artifact's root: the image's manifest or the index.
	Blob
	// Blobs returns every blob of the artifact once, each after the blobs it refers to (an
	// image's layers and config before its manifest), and the root itself last. Writing them
	// in this order never leaves a stored blob that refers to a missing one.
	Blobs() []Blob
}

var (
	_ Artifact = (*Image)(nil)
	_ Artifact = (*Index)(nil)
	_ Blob     = (*Layer)(nil)
	_ Blob     = (*Bytes)(nil)
)

// Bytes is a small blob held in memory: a config, a manifest or an index.
type Bytes struct {
	desc ocispec.Descriptor
	data []byte
}

// newBytesBlob describes data with the given media type.
func NewBytes(mediaType string, data []byte) *Bytes {
	return &Bytes{
		desc: ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))},
		data: data,
	}
}

func (b *Bytes) Descriptor() ocispec.Descriptor { return b.desc }

func (b *Bytes) Open() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(b.data)), nil
}

// verifier checks that what is read through it matches desc: at most desc.Size bytes, and at
// EOF exactly desc.Size bytes with desc.Digest.
type verifier struct {
	r    io.ReadCloser
	desc ocispec.Descriptor
	h    hash.Hash
	n    int64
	err  error
}

// verify wraps r so that reading it fails with ErrDigestMismatch if the content does not
// match desc.
func Verify(r io.ReadCloser, desc ocispec.Descriptor) io.ReadCloser {
	if err := desc.Digest.Validate(); err != nil {
		return &verifier{r: r, desc: desc, err: fmt.Errorf("%w: blob %q: %v", ErrInvalidImage, desc.Digest, err)}
	}
	return &verifier{r: r, desc: desc, h: desc.Digest.Algorithm().Hash()}
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.n += int64(n)
	v.h.Write(p[:n])
	if v.n > v.desc.Size {
		v.err = fmt.Errorf("%w: blob %s: longer than its size %d", ErrDigestMismatch, v.desc.Digest, v.desc.Size)
		return n, v.err
	}
	if err == io.EOF {
		switch got := digest.NewDigest(v.desc.Digest.Algorithm(), v.h); {
		case v.n < v.desc.Size:
			err = fmt.Errorf("%w: blob %s: truncated: %d of %d bytes", ErrDigestMismatch, v.desc.Digest, v.n, v.desc.Size)
		case got != v.desc.Digest:
			err = fmt.Errorf("%w: blob %s: content has digest %s", ErrDigestMismatch, v.desc.Digest, got)
		}
	}
	v.err = err
	return n, err
}

func (v *verifier) Close() error { return v.r.Close() }

// readBlob reads a whole blob, verifying it, and refuses blobs larger than limit.
func ReadAll(b Blob, limit int64) ([]byte, error) {
	desc := b.Descriptor()
	if desc.Size > limit {
		return nil, fmt.Errorf("%w: %w: blob %s: %d bytes is more than the %d allowed for a %s", ErrInvalidImage, ErrTooLarge, desc.Digest, desc.Size, limit, desc.MediaType)
	}
	r, err := b.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(Verify(r, desc))
}

// BytesOf returns the blob desc whose content is data, which it does not check: for content
// already verified against desc (a manifest fetched and verified, a document read from a
// layout).
func BytesOf(desc ocispec.Descriptor, data []byte) *Bytes {
	return &Bytes{desc: desc, data: data}
}

// Data returns the blob's content, which the caller must not change.
func (b *Bytes) Data() []byte { return b.data }
