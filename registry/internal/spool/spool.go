package spool

import (
	"fmt"
	"io"
	"os"
)

// Spool holds a blob while it is fetched: written at any offset by the range fetches, read
// back by the hasher and the readers.
type Spool interface {
	io.WriterAt
	io.ReaderAt
	io.Closer
}

// memorySpoolMax is the size up to which a blob is spooled in memory.
const memorySpoolMax = 1 << 20

// New returns a spool for size bytes: memory for small blobs, else an unlinked temporary
// file in dir.
func New(dir string, size int64) (Spool, error) {
	if size <= memorySpoolMax {
		return Memory(size), nil
	}
	f, err := os.CreateTemp(dir, ".dao-blob-*")
	if err != nil {
		return nil, fmt.Errorf("registry: spool: %w", err)
	}
	// Unlinked at once, so nothing is left behind whatever happens.
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("registry: spool: %w", err)
	}
	return f, nil
}

// Memory returns a spool of size bytes in memory.
func Memory(size int64) Spool { return &memorySpool{b: make([]byte, size)} }

// memorySpool is a spool of a fixed size in memory. Writers and readers never touch the same
// bytes at the same time: a byte is read only after its write is complete.
type memorySpool struct{ b []byte }

func (s *memorySpool) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(s.b)) {
		return 0, fmt.Errorf("registry: spool write beyond the blob's size")
	}
	return copy(s.b[off:], p), nil
}

func (s *memorySpool) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(s.b)) {
		return 0, io.EOF
	}
	n := copy(p, s.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (s *memorySpool) Close() error { return nil }
