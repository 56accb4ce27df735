package remote

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opendao/dao/registry/internal/spool"
	"github.com/opendao/dao/registry/name"
	"github.com/opendao/dao/registry/oci"
	"golang.org/x/sync/errgroup"
)

// download is one fetch of a blob into a spool, shared by every reader that FetchBlob
// returns for that blob of that repository while it runs. Its bytes reach the readers only
// after the hasher has read them, in order, so that what the readers get is what was
// verified; the end of the blob reaches them as io.EOF only if the digest matched.
type download struct {
	c      *Client
	key    string
	repo   name.Reference
	desc   ocispec.Descriptor
	spool  spool.Spool
	cancel context.CancelFunc
	// wake tells the hasher that bytes were written.
	wake chan struct{}

	mu sync.Mutex
	// changed is closed and replaced whenever readable, started or done change.
	changed  chan struct{}
	chunks   []*chunk
	readable int64 // bytes hashed in order, which readers may read
	started  bool  // a server answered, or the download is done
	done     bool
	err      error
	refs     int
	closed   bool // spool closed
}

// chunk is a range [start, end) of the blob fetched by one request at a time.
type chunk struct {
	start, end int64
	written    int64 // guarded by download.mu
}

// joinDownload returns the running download of desc from repo, or starts one. The caller
// holds a reference, which it gives back with release.
func (c *Client) joinDownload(ctx context.Context, repo name.Reference, desc ocispec.Descriptor) (*download, error) {
	key := repo.Name() + "@" + desc.Digest.String()
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := c.downloads[key]; ok && d.desc.Size == desc.Size {
		d.mu.Lock()
		d.refs++
		d.mu.Unlock()
		return d, nil
	}
	sp, err := spool.New(c.opts.spoolDir, desc.Size)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d := &download{
		c: c, key: key, repo: repo, desc: desc, spool: sp, cancel: cancel,
		wake: make(chan struct{}, 1), changed: make(chan struct{}), refs: 1,
	}
	if _, ok := c.downloads[key]; !ok {
		c.downloads[key] = d
	}
	go d.run(dctx)
	return d, nil
}

// release gives back a reference; the last one stops an unfinished download.
func (d *download) release() {
	d.c.mu.Lock()
	d.mu.Lock()
	d.refs--
	last := d.refs == 0
	if last && d.c.downloads[d.key] == d {
		delete(d.c.downloads, d.key)
	}
	closeSpool := last && d.done && !d.closed
	d.closed = d.closed || closeSpool
	d.mu.Unlock()
	d.c.mu.Unlock()
	if last {
		d.cancel()
	}
	if closeSpool {
		d.spool.Close()
	}
}

// notify wakes the readers. d.mu is held.
func (d *download) notify() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// run fetches and verifies the blob, then records the outcome.
func (d *download) run(ctx context.Context) {
	hctx, hcancel := context.WithCancel(ctx)
	hashed := make(chan error, 1)
	go func() { hashed <- d.hash(hctx) }()
	err := d.fetch(ctx)
	if err != nil {
		hcancel()
		<-hashed
	} else {
		err = <-hashed
	}
	hcancel()
	d.finish(err)
}

// finish records the outcome. A failed download is forgotten, so that the next FetchBlob
// starts anew; one that succeeded stays for FetchBlob calls to join (reading its spool) until
// its last reader is closed.
func (d *download) finish(err error) {
	if err != nil {
		err = fmt.Errorf("registry: fetch blob %s from %s: %w", d.desc.Digest, d.repo.Name(), err)
	}
	d.c.mu.Lock()
	d.mu.Lock()
	d.done, d.started, d.err = true, true, err
	d.notify()
	if (err != nil || d.refs == 0) && d.c.downloads[d.key] == d {
		delete(d.c.downloads, d.key)
	}
	closeSpool := d.refs == 0 && !d.closed
	d.closed = d.closed || closeSpool
	d.mu.Unlock()
	d.c.mu.Unlock()
	if closeSpool {
		d.spool.Close()
	}
	d.cancel()
}

// hash reads what the fetches wrote, in order, into the digest, making it readable, and
// checks the digest once the whole blob is there.
func (d *download) hash(ctx context.Context) error {
	rep := d.c.reporter("fetch", d.repo, d.desc)
	h := d.desc.Digest.Algorithm().Hash()
	buf := make([]byte, 256<<10)
	var off int64
	for {
		avail := d.contiguous()
		for off < avail {
			n := int(min(int64(len(buf)), avail-off))
			if _, err := d.spool.ReadAt(buf[:n], off); err != nil {
				return &permanentError{fmt.Errorf("read spool: %w", err)}
			}
			h.Write(buf[:n])
			off += int64(n)
			d.mu.Lock()
			d.readable = off
			d.notify()
			d.mu.Unlock()
			rep.update(off)
		}
		if off == d.desc.Size {
			if got := digest.NewDigest(d.desc.Digest.Algorithm(), h); got != d.desc.Digest {
				return fmt.Errorf("%w: content has digest %s", oci.ErrDigestMismatch, got)
			}
			rep.complete()
			return nil
		}
		select {
		case <-d.wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// contiguous returns how many bytes from the start of the blob are written.
func (d *download) contiguous() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var n int64
	for _, ch := range d.chunks {
		n += ch.written
		if ch.written < ch.end-ch.start {
			break
		}
	}
	return n
}

// fetch fetches every byte of the blob into the spool: from the first endpoint that
// answers, in parallel ranges if the blob is large and the server serves ranges, each
// chunk one range of the fetch engine (ranges.go) copied into the spool at its offset.
// When an endpoint fails for a reason that may pass (its connections keep breaking, or are
// too slow, see WithSpeedLimit), every chunk goes on from the next endpoint, where it stopped.
func (d *download) fetch(ctx context.Context) error {
	size := d.desc.Size
	if size == 0 {
		d.setChunks(nil)
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.c.opts.rangeParallel)
	src := d.c.newSource(gctx, d.repo, d.desc)
	defer src.close()
	chunkSize := d.c.opts.rangeChunk
	first := &chunk{start: 0, end: size}
	if d.c.opts.rangeParallel > 1 && size > 2*chunkSize {
		first.end = chunkSize
	}
	r := src.reader(0, first.end)
	if err := r.open(); err != nil {
		return err
	}
	chunks := []*chunk{first}
	if r.rr.resp.StatusCode == http.StatusPartialContent {
		for off := first.end; off < size; off += chunkSize {
			chunks = append(chunks, &chunk{start: off, end: min(off+chunkSize, size)})
		}
	} else {
		first.end, r.end = size, size // a full answer: the server ignored the range
	}
	d.setChunks(chunks)
	for _, ch := range chunks {
		cr := r
		if ch != first {
			cr = src.reader(ch.start, ch.end)
		}
		g.Go(func() error { return d.fill(ch, cr) })
	}
	return g.Wait()
}

// setChunks records the chunks and that a server answered.
func (d *download) setChunks(chunks []*chunk) {
	d.mu.Lock()
	d.chunks, d.started = chunks, true
	d.notify()
	d.mu.Unlock()
}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

// fill copies the range r of ch into the spool, telling the hasher of every write.
func (d *download) fill(ch *chunk, r *rangeReader) error {
	defer r.close()
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := d.spool.WriteAt(buf[:n], r.off-int64(n)); werr != nil {
				return &permanentError{fmt.Errorf("write spool: %w", werr)}
			}
			d.mu.Lock()
			ch.written += int64(n)
			d.mu.Unlock()
			select {
			case d.wake <- struct{}{}:
			default:
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
