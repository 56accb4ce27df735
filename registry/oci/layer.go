package oci

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Layer is one filesystem layer of an image: a tar stream, possibly compressed, that is
// stored as a blob. LayerBuilder.Build makes layers; layout.Read reads them from a layout.
//
// A built layer keeps its blob in an unlinked temporary file, which holds disk space until
// Close (or, for a layer that is never closed, until the garbage collector or the end of the
// process frees it). A Layer is safe for simultaneous use.
type Layer struct {
	desc   ocispec.Descriptor
	diffID digest.Digest

	// open opens the blob of a layer read from a layout.
	open func() (io.ReadCloser, error)
	// file holds a built layer's blob. It is unlinked at once, except on systems that cannot
	// remove an open file: there path names it until Close.
	file *os.File
	path string

	mu      sync.Mutex
	closed  bool
	readers int // open readers of file
}

// Descriptor returns the descriptor of the layer's blob: its media type (which says how it is
// compressed), the digest and the size of the compressed content.
func (l *Layer) Descriptor() ocispec.Descriptor { return l.desc }

// DiffID returns the digest of the uncompressed tar stream, as the image config's rootfs
// lists it. For an uncompressed layer it equals the blob's digest.
func (l *Layer) DiffID() digest.Digest { return l.diffID }

// Open returns a reader of the layer's blob, as its descriptor describes it (compressed).
// After Close, Open fails with an error matching fs.ErrClosed.
func (l *Layer) Open() (io.ReadCloser, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("registry: open layer %s: %w", l.desc.Digest, fs.ErrClosed)
	}
	if l.file == nil {
		return l.open()
	}
	l.readers++
	return &layerReader{SectionReader: io.NewSectionReader(l.file, 0, l.desc.Size), l: l}, nil
}

// Close frees the temporary file of a built layer once the readers already open are closed.
// Closing a layer read from a layout frees nothing. Close is idempotent.
func (l *Layer) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	return l.release()
}

// release closes the temporary file when the layer is closed and no reader is open. l.mu
// is held.
func (l *Layer) release() error {
	if !l.closed || l.readers > 0 || l.file == nil {
		return nil
	}
	err := l.file.Close()
	if l.path != "" {
		if rerr := os.Remove(l.path); err == nil && !os.IsNotExist(rerr) {
			err = rerr
		}
	}
	l.file = nil
	if err != nil {
		return fmt.Errorf("registry: close layer %s: %w", l.desc.Digest, err)
	}
	return nil
}

// layerReader reads a built layer's blob; it reads with ReadAt, so readers do not disturb
// each other.
type layerReader struct {
	*io.SectionReader
	l    *Layer
	once sync.Once
}

func (r *layerReader) Close() error {
	var err error
	r.once.Do(func() {
		r.l.mu.Lock()
		defer r.l.mu.Unlock()
		r.l.readers--
		err = r.l.release()
	})
	return err
}

// NewLayer returns a layer of the blob desc whose uncompressed tar stream has digest diffID,
// read through open: a layer of an image stored elsewhere (an OCI layout). Close frees
// nothing. NewLayer trusts its arguments; open is expected to verify what it reads (Verify).
func NewLayer(desc ocispec.Descriptor, diffID digest.Digest, open func() (io.ReadCloser, error)) *Layer {
	return &Layer{desc: desc, diffID: diffID, open: open}
}

// NewFileLayer returns a layer of the blob desc held in f, which it owns: Close closes f
// once its readers are closed, and removes path if it is not "" (a file that could not be
// unlinked while open). The layer builder makes its layers so.
func NewFileLayer(desc ocispec.Descriptor, diffID digest.Digest, f *os.File, path string) *Layer {
	return &Layer{desc: desc, diffID: diffID, file: f, path: path}
}
