package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// tap holds a copy of a blob as it is ingested, for the unpacker to read from the first byte
// while the rest still arrives, or later if the layer below is not yet unpacked. One writer
// appends; any number of readers read what is there so far, and get io.EOF once the writer
// finished without error, its error otherwise. The bytes are not verified: the content
// store verifies them when it commits the blob, which the unpacker waits for before it
// commits what it extracted.
type tap struct {
	sp spool

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when n or done change
	n       int64
	done    bool
	err     error
	refs    int  // the writer and the readers to come; the last release closes sp
	closed  bool // sp is closed
}

// newTap returns a tap for a blob of size bytes, held in memory or in an unlinked file in
// dir, with refs references.
func newTap(dir string, size int64, refs int, inMemory bool) (*tap, error) {
	var sp spool
	if inMemory {
		sp = &memorySpool{b: make([]byte, size)}
	} else {
		var err error
		if sp, err = newSpool(dir, size); err != nil {
			return nil, err
		}
	}
	return &tap{sp: sp, changed: make(chan struct{}), refs: refs}, nil
}

// write appends p.
func (t *tap) write(p []byte) error {
	t.mu.Lock()
	off := t.n
	t.mu.Unlock()
	if _, err := t.sp.WriteAt(p, off); err != nil {
		return fmt.Errorf("registry: write tap: %w", err)
	}
	t.mu.Lock()
	t.n += int64(len(p))
	close(t.changed)
	t.changed = make(chan struct{})
	t.mu.Unlock()
	return nil
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
	t.mu.Unlock()
	t.sp.Close()
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
		n, done, err, changed, closed := t.n, t.done, t.err, t.changed, t.closed
		t.mu.Unlock()
		if closed {
			return 0, errTapClosed
		}
		if done && err != nil {
			return 0, err
		}
		if r.off < n {
			m, rerr := t.sp.ReadAt(p[:min(int64(len(p)), n-r.off)], r.off)
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
