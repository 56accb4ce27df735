package ctrd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/opendao/dao/registry/internal/spool"
)

// tap holds a copy of a blob as it is ingested, for the unpacker to read from the first byte
// while the rest still arrives, or later if the layer below is not yet unpacked. One writer
// appends; any number of readers read what is there so far, and get io.EOF once the writer
// finished without error, its error otherwise. The bytes are not verified: the content
// store verifies them when it commits the blob, which the unpacker waits for before it
// commits what it extracted. The copy is made at the first write, unless the tap is
// attached to a file that holds the blob already (attach).
type tap struct {
	dir      string
	size     int64
	inMemory bool

	mu      sync.Mutex
	sp      spool.Spool   // nil until the first write or attach
	changed chan struct{} // closed and replaced when n or done change
	n       int64
	done    bool
	err     error
	refs    int  // the writer and the readers to come; the last release closes sp
	closed  bool // sp is closed
}

// newTap returns a tap for a blob of size bytes, to be held in memory or in an unlinked file
// in dir, with refs references.
func newTap(dir string, size int64, refs int, inMemory bool) *tap {
	return &tap{dir: dir, size: size, inMemory: inMemory, changed: make(chan struct{}), refs: refs}
}

// spool returns the tap's copy of the blob, made if it is not yet.
func (t *tap) spool() (spool.Spool, error) {
	t.mu.Lock()
	sp := t.sp
	t.mu.Unlock()
	if sp != nil {
		return sp, nil
	}
	if t.inMemory {
		sp = spool.Memory(t.size)
	} else {
		var err error
		if sp, err = spool.New(t.dir, t.size); err != nil {
			return nil, err
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		sp.Close()
		return nil, errTapClosed
	}
	t.sp = sp
	return sp, nil
}

// attach makes f, a file into which the blob is being written from its first byte, the
// tap's copy: the writer then reports what it wrote with advance instead of writing. It
// takes f, and closes it with the tap; it reports false (and closes f) if the tap has a copy
// already.
func (t *tap) attach(f *os.File) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sp != nil || t.closed || t.n > 0 {
		f.Close()
		return false
	}
	t.sp = f
	return true
}

// write appends p.
func (t *tap) write(p []byte) error {
	sp, err := t.spool()
	if err != nil {
		return fmt.Errorf("registry: write tap: %w", err)
	}
	t.mu.Lock()
	off := t.n
	t.mu.Unlock()
	if _, err := sp.WriteAt(p, off); err != nil {
		return fmt.Errorf("registry: write tap: %w", err)
	}
	t.advance(int64(len(p)))
	return nil
}

// advance records that n more bytes are in the tap's copy.
func (t *tap) advance(n int64) {
	t.mu.Lock()
	t.n += n
	close(t.changed)
	t.changed = make(chan struct{})
	t.mu.Unlock()
}

// finish records that the blob is complete (err nil) or failed.
func (t *tap) finish(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return
	}
	t.done, t.err = true, err
	close(t.changed)
	t.changed = make(chan struct{})
}

// release gives back a reference; the last one frees the spool.
func (t *tap) release() {
	t.mu.Lock()
	t.refs--
	last := t.refs == 0
	t.mu.Unlock()
	if last {
		t.close()
	}
}

// close frees the spool, whoever still holds a reference; readers then fail.
func (t *tap) close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	if !t.done {
		t.done, t.err = true, errTapClosed
	}
	close(t.changed)
	t.changed = make(chan struct{})
	sp := t.sp
	t.mu.Unlock()
	if sp != nil {
		sp.Close()
	}
}

var errTapClosed = errors.New("registry: tap closed")

// reader returns a reader of the tap from its first byte; reads fail once ctx ends.
func (t *tap) reader(ctx context.Context) io.Reader { return &tapReader{t: t, ctx: ctx} }

type tapReader struct {
	t   *tap
	ctx context.Context
	off int64
}

func (r *tapReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	t := r.t
	for {
		t.mu.Lock()
		n, done, err, changed, closed, sp := t.n, t.done, t.err, t.changed, t.closed, t.sp
		t.mu.Unlock()
		if closed {
			return 0, errTapClosed
		}
		if done && err != nil {
			return 0, err
		}
		if r.off < n {
			m, rerr := sp.ReadAt(p[:min(int64(len(p)), n-r.off)], r.off)
			r.off += int64(m)
			if rerr != nil && !errors.Is(rerr, io.EOF) {
				return m, fmt.Errorf("registry: read tap: %w", rerr)
			}
			return m, nil
		}
		if done {
			return 0, io.EOF
		}
		select {
		case <-changed:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
}
