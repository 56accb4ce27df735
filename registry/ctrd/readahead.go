package ctrd

import (
	"io"
	"sync"
)

// readahead reads from r in its own goroutine, up to n chunks of size bytes ahead of the
// reader, so that producing the bytes (decompressing and hashing a layer) and consuming them
// (extracting files) run on two cores. The reader's last Read returns r's error (io.EOF at
// the end). Close stops the goroutine and waits for it, so a caller that stops reading early
// must first make r's reads return (by ending the context they read under). Chunks are
// allocated as they are first needed.
type readahead struct {
	full  chan []byte
	free  chan []byte
	size  int
	err   error  // the reader's error, read after full is closed
	buf   []byte // the chunk being read, of which cur is the unread part
	cur   []byte
	stop  chan struct{}
	done  chan struct{}
	close sync.Once
}

func newReadahead(r io.Reader, size, n int) *readahead {
	return newReadaheadOpen(func() (io.Reader, func(), error) { return r, nil, nil }, size, n)
}

// newReadaheadOpen is newReadahead of the reader that open returns, called in the
// readahead's goroutine (so it may block until its source is there); done, if not nil, is
// called once the goroutine no longer reads it.
func newReadaheadOpen(open func() (r io.Reader, done func(), err error), size, n int) *readahead {
	ra := &readahead{
		full: make(chan []byte, n),
		free: make(chan []byte, n+1),
		size: size,
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go ra.fill(open, n+1)
	return ra
}

func (ra *readahead) fill(open func() (io.Reader, func(), error), chunks int) {
	defer close(ra.done)
	defer close(ra.full)
	r, done, err := open()
	if done != nil {
		defer done()
	}
	if err != nil {
		ra.err = err
		return
	}
	for {
		var b []byte
		if chunks > 0 {
			select {
			case b = <-ra.free:
			case <-ra.stop:
				return
			default:
				b = make([]byte, ra.size)
				chunks--
			}
		} else {
			select {
			case b = <-ra.free:
			case <-ra.stop:
				return
			}
		}
		n, err := io.ReadFull(r, b)
		if n > 0 {
			select {
			case ra.full <- b[:n]:
			case <-ra.stop:
				return
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			ra.err = io.EOF
			return
		}
		if err != nil {
			ra.err = err
			return
		}
	}
}

func (ra *readahead) Read(p []byte) (int, error) {
	if !ra.next() {
		return 0, ra.err
	}
	n := copy(p, ra.cur)
	ra.consumed(n)
	return n, nil
}

// next makes cur the next chunk if it is empty; false at the end.
func (ra *readahead) next() bool {
	if len(ra.cur) > 0 {
		return true
	}
	b, ok := <-ra.full
	if !ok {
		return false
	}
	ra.buf, ra.cur = b, b
	return true
}

// consumed drops n bytes of cur, giving the chunk back once all are read.
func (ra *readahead) consumed(n int) {
	ra.cur = ra.cur[n:]
	if len(ra.cur) == 0 {
		ra.free <- ra.buf[:cap(ra.buf)]
		ra.buf = nil
	}
}

// WriteTo hands whole chunks to w, sparing a copy.
func (ra *readahead) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for ra.next() {
		n, err := w.Write(ra.cur)
		total += int64(n)
		ra.consumed(n)
		if err != nil {
			return total, err
		}
	}
	if ra.err == io.EOF {
		return total, nil
	}
	return total, ra.err
}

func (ra *readahead) Close() error {
	ra.close.Do(func() { close(ra.stop) })
	<-ra.done
	return nil
}
