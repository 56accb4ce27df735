package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
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
// answers, in parallel ranges if the blob is large and the server serves ranges. When an
// endpoint fails for a reason that may pass (its connections keep breaking, or are too
// slow, see WithSpeedLimit), the rest comes from the next endpoint, from where it stopped.
func (d *download) fetch(ctx context.Context) error {
	size := d.desc.Size
	if size == 0 {
		d.setChunks(nil)
		return nil
	}
	chunkSize := d.c.opts.rangeChunk
	parallel := d.c.opts.rangeParallel > 1 && size > 2*chunkSize
	first := &chunk{start: 0, end: size}
	if parallel {
		first.end = chunkSize
	}
	var errs []error
	var chunks []*chunk
	for _, ep := range d.c.endpoints(d.repo.Registry, CapPull) {
		var err error
		if chunks == nil {
			var rr *rangeResponse
			if rr, err = d.open(ctx, ep, first); err == nil {
				chunks = []*chunk{first}
				if rr.resp.StatusCode == http.StatusPartialContent {
					for off := first.end; off < size; off += chunkSize {
						chunks = append(chunks, &chunk{start: off, end: min(off+chunkSize, size)})
					}
				} else {
					first.end = size // a full answer: the server ignored the range
				}
				d.setChunks(chunks)
				err = d.fillAll(ctx, ep, chunks, rr)
			}
		} else {
			err = d.fillAll(ctx, ep, chunks, nil)
		}
		if err == nil {
			return nil
		}
		if permanent(ctx, err) {
			return err
		}
		errs = append(errs, err)
	}
	return endpointsError(errs)
}

// endpointsError is the error of a call that tried every endpoint of errs, in order: the
// last one's (the registry itself) if it is the only one, else a *FallbackError that holds
// the mirrors' errors too.
func endpointsError(errs []error) error {
	switch len(errs) {
	case 0:
		return fmt.Errorf("%w: no endpoint", ErrInvalidOption)
	case 1:
		return errs[0]
	}
	return &FallbackError{Err: errs[len(errs)-1], Mirrors: slices.Clone(errs[:len(errs)-1])}
}

// setChunks records the chunks and that a server answered.
func (d *download) setChunks(chunks []*chunk) {
	d.mu.Lock()
	d.chunks, d.started = chunks, true
	d.notify()
	d.mu.Unlock()
}

// fillAll fetches what is missing of the chunks, up to rangeParallel at once; first, if not
// nil, is the answer for the first chunk.
func (d *download) fillAll(ctx context.Context, ep *endpoint, chunks []*chunk, first *rangeResponse) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.c.opts.rangeParallel)
	for i, ch := range chunks {
		var rr *rangeResponse
		if i == 0 {
			rr = first
		}
		if rr == nil && d.written(ch) == ch.end-ch.start {
			continue
		}
		g.Go(func() error { return d.fill(gctx, ep, ch, rr) })
	}
	return g.Wait()
}

// fill fetches what is missing of ch, resuming with a range when a connection breaks. It
// gives up after MaxAttempts interruptions in a row that brought no byte (or that the
// watchdog cut as too slow, whatever they brought).
func (d *download) fill(ctx context.Context, ep *endpoint, ch *chunk, rr *rangeResponse) error {
	defer func() {
		if rr != nil {
			rr.close()
		}
	}()
	resume := resumer{c: d.c}
	for {
		before := d.written(ch)
		if before == ch.end-ch.start {
			return nil
		}
		if rr == nil {
			var err error
			if rr, err = d.open(ctx, ep, ch); err != nil {
				return err
			}
		}
		err := d.copyBody(ctx, ch, rr)
		rr.close()
		rr = nil
		if err == nil {
			continue
		}
		if permanent(ctx, err) {
			return err
		}
		if err := resume.broke(ctx, ep.host, ch.start+d.written(ch), d.written(ch) > before, err); err != nil {
			var gu *givenUp
			if errors.As(err, &gu) {
				return gu.err
			}
			return err
		}
	}
}

// permanent reports whether a fetch error cannot be fixed by resuming.
func permanent(ctx context.Context, err error) bool {
	var perm *permanentError
	return ctx.Err() != nil || errors.Is(err, oci.ErrDigestMismatch) || errors.Is(err, ErrInvalidResponse) || errors.As(err, &perm)
}

func (d *download) written(ch *chunk) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return ch.written
}

// rangeResponse is an answer to a blob request, with the bytes to skip before ch's missing
// part (when the server ignored the range).
type rangeResponse struct {
	resp   *http.Response
	skip   int64
	cancel context.CancelFunc
}

func (rr *rangeResponse) close() {
	rr.resp.Body.Close()
	rr.cancel()
}

// open requests the missing part of ch from ep and checks that the answer is that part.
func (d *download) open(ctx context.Context, ep *endpoint, ch *chunk) (*rangeResponse, error) {
	return d.c.openRange(ctx, ep, d.repo, d.desc, ch.start+d.written(ch), ch.end)
}

// openRange requests bytes [from, end) of the blob desc of repo from ep and checks that the
// answer is that part, or the whole blob (with skip set to from) if the server ignored the
// range.
func (c *Client) openRange(ctx context.Context, ep *endpoint, repo name.Reference, desc ocispec.Descriptor, from, end int64) (*rangeResponse, error) {
	size := desc.Size
	h := http.Header{}
	if from > 0 || end < size {
		h.Set("Range", fmt.Sprintf("bytes=%d-%d", from, end-1))
	}
	rctx, cancel := context.WithCancel(ctx)
	resp, err := c.do(rctx, ep, &request{
		method: http.MethodGet,
		url:    ep.url(repo.Repository+"/blobs/"+desc.Digest.String(), nil),
		header: h,
		scopes: []string{pullScope(repo)},
		ok:     []int{http.StatusOK, http.StatusPartialContent},
	})
	if err != nil {
		cancel()
		var re *ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusRequestedRangeNotSatisfiable {
			return nil, fmt.Errorf("%w: %s has fewer than the %d bytes of the descriptor: %w", oci.ErrSizeMismatch, ep.host, size, err)
		}
		return nil, err
	}
	rr := &rangeResponse{resp: resp, cancel: cancel}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, last, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		switch {
		case ok && total >= 0 && total != size:
			rr.close()
			return nil, fmt.Errorf("%w: %s says the blob has %d bytes, the descriptor %d", oci.ErrSizeMismatch, ep.host, total, size)
		case !ok || start != from || last >= end:
			rr.close()
			return nil, fmt.Errorf("%w: asked %s for bytes %d-%d, got Content-Range %q", ErrInvalidResponse, ep.host, from, end-1, resp.Header.Get("Content-Range"))
		}
	case http.StatusOK:
		if resp.ContentLength >= 0 && resp.ContentLength != size {
			rr.close()
			return nil, fmt.Errorf("%w: %s sends %d bytes, the descriptor says %d", oci.ErrSizeMismatch, ep.host, resp.ContentLength, size)
		}
		rr.skip = from
	}
	return rr, nil
}

// parseContentRange parses "bytes START-END/TOTAL"; total is -1 for "*".
func parseContentRange(s string) (start, end, total int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, 0, false
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, 0, false
	}
	var err1, err2, err3 error
	start, err1 = strconv.ParseInt(a, 10, 64)
	end, err2 = strconv.ParseInt(b, 10, 64)
	total = -1
	if tot != "*" {
		total, err3 = strconv.ParseInt(tot, 10, 64)
	}
	if err1 != nil || err2 != nil || err3 != nil || start < 0 || end < start {
		return 0, 0, 0, false
	}
	return start, end, total, true
}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

// errShortBody means an answer ended before the bytes it should have held.
var errShortBody = errors.New("answer ended early")

// copyBody writes the answer's bytes into the spool at ch's missing part. It returns nil when
// ch is full, and an error when the answer broke or ended before.
func (d *download) copyBody(ctx context.Context, ch *chunk, rr *rangeResponse) error {
	body := rr.resp.Body
	if rr.skip > 0 {
		if _, err := io.CopyN(io.Discard, body, rr.skip); err != nil {
			return err
		}
	}
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	off := ch.start + d.written(ch)
	for off < ch.end {
		n, err := body.Read(buf[:min(int64(len(buf)), ch.end-off)])
		if n > 0 {
			if _, werr := d.spool.WriteAt(buf[:n], off); werr != nil {
				return &permanentError{fmt.Errorf("write spool: %w", werr)}
			}
			off += int64(n)
			d.mu.Lock()
			ch.written += int64(n)
			d.mu.Unlock()
			select {
			case d.wake <- struct{}{}:
			default:
			}
		}
		if err == io.EOF && off < ch.end {
			return errShortBody
		}
		if err != nil && err != io.EOF {
			return err
		}
	}
	if ch.end == d.desc.Size && rr.resp.ContentLength < 0 {
		// No declared length: the answer must end with the blob.
		var one [1]byte
		if n, _ := io.ReadFull(body, one[:]); n > 0 {
			return fmt.Errorf("%w: the registry sends more than the %d bytes of the descriptor", oci.ErrSizeMismatch, d.desc.Size)
		}
	}
	return ctx.Err()
}
