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

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opendao/dao/registry/name"
	"github.com/opendao/dao/registry/oci"
)

// This file is the client's one engine for fetching blobs: a rangeReader reads bytes
// [off, end) of a blob in order, resuming where an answer broke or was too slow and moving
// on to the next endpoint when the one in use is given up. A BlobStream (stream.go) is the
// instance [off, size) read straight through; a download (download.go) runs one instance
// per chunk and copies it into its spool. The endpoints are a source, shared by the chunks
// of a download so that they move on together.

// source is a blob to fetch and the endpoints to fetch it from, in order, shared by the
// ranges of one fetch: when one range gives up an endpoint, every range reading from it is
// cut and goes on from the next.
type source struct {
	c    *Client
	ctx  context.Context // the fetch's
	repo name.Reference
	desc ocispec.Descriptor
	eps  []*endpoint

	mu     sync.Mutex
	cur    int             // the endpoint in use; len(eps) once every one is given up
	epCtx  context.Context // the requests to eps[cur], cancelled when it is given up
	cancel context.CancelFunc
	errs   []error // of the endpoints given up
}

// newSource returns the source of the blob desc of repo, its endpoints those of CapPull.
// The caller must close it.
func (c *Client) newSource(ctx context.Context, repo name.Reference, desc ocispec.Descriptor) *source {
	s := &source{c: c, ctx: ctx, repo: repo, desc: desc, eps: c.endpoints(repo.Registry, CapPull)}
	s.epCtx, s.cancel = context.WithCancel(ctx)
	return s
}

// current returns the endpoint in use, its index and the context of its requests, or the
// error of every endpoint once all are given up.
func (s *source) current() (int, *endpoint, context.Context, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == len(s.eps) {
		return 0, nil, nil, endpointsError(s.errs)
	}
	return s.cur, s.eps[s.cur], s.epCtx, nil
}

// giveUp gives up endpoint i for err, cutting every request to it, unless it is given up
// already.
func (s *source) giveUp(i int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i != s.cur {
		return
	}
	s.errs = append(s.errs, err)
	s.cancel()
	s.cur++
	s.epCtx, s.cancel = context.WithCancel(s.ctx)
}

func (s *source) close() {
	s.mu.Lock()
	s.cancel()
	s.mu.Unlock()
}

// rangeReader reads bytes [off, end) of a blob from its source, in order: exactly those
// bytes (a server that sends fewer, or more than the blob, is an error), but it does not
// verify the digest, which is its caller's work. After an answer broke or the watchdog cut
// it, it asks for the rest, as the resumer says; after a request failed, or the resumer
// gave the endpoint up, it asks the next endpoint. It returns io.EOF after byte end-1.
type rangeReader struct {
	src      *source
	off, end int64
	at       int             // the endpoint of rr
	atCtx    context.Context // its requests' context
	rr       *rangeResponse
	openedAt int64 // off when rr was opened
	resume   resumer
	err      error // sticky
}

func (s *source) reader(off, end int64) *rangeReader {
	return &rangeReader{src: s, off: off, end: end, resume: resumer{c: s.c}}
}

// Read reads the next bytes of the range. Bytes read before an error that resuming cannot
// fix are returned first, the error by the next Read.
func (r *rangeReader) Read(p []byte) (int, error) {
	for r.err == nil {
		if r.off >= r.end {
			r.err = r.checkEnd()
			r.close()
			if r.err == nil {
				r.err = io.EOF
			}
			break
		}
		if len(p) == 0 {
			return 0, nil
		}
		if r.rr == nil {
			if r.err = r.open(); r.err != nil {
				break
			}
		}
		n, err := r.read(p[:min(int64(len(p)), r.end-r.off)])
		r.off += int64(n)
		if err != nil {
			r.err = r.broken(err)
		}
		if n > 0 {
			return n, nil
		}
	}
	return 0, r.err
}

// open asks the endpoint in use for the rest of the range, giving it up for the next while
// the request fails for a reason that may pass.
func (r *rangeReader) open() error {
	s := r.src
	for {
		i, ep, ctx, err := s.current()
		if err != nil {
			return err
		}
		if i != r.at {
			r.at = i
			r.resume.reset()
		}
		rr, err := s.c.openRange(ctx, ep, s.repo, s.desc, r.off, r.end)
		switch {
		case err == nil:
			r.rr, r.atCtx, r.openedAt = rr, ctx, r.off
			return nil
		case s.ctx.Err() != nil:
			return s.ctx.Err()
		case ctx.Err() != nil: // another range gave the endpoint up meanwhile
		case permanent(s.ctx, err):
			return err
		default:
			s.giveUp(i, err)
		}
	}
}

// read reads from the answer, past the bytes it must skip.
func (r *rangeReader) read(p []byte) (int, error) {
	body := r.rr.resp.Body
	if r.rr.skip > 0 {
		n, err := io.CopyN(io.Discard, body, r.rr.skip)
		r.rr.skip -= n
		if err != nil {
			return 0, err
		}
	}
	n, err := body.Read(p)
	if err == io.EOF {
		if int64(n) < r.end-r.off {
			return n, errShortBody
		}
		err = nil
	}
	return n, err
}

// broken drops the answer after err, and returns err if resuming cannot help: err is
// permanent, or every endpoint was given up. It returns nil when the range is to be asked
// for again.
func (r *rangeReader) broken(err error) error {
	progress := r.off > r.openedAt
	r.close()
	s := r.src
	switch {
	case s.ctx.Err() != nil:
		return s.ctx.Err()
	case r.atCtx.Err() != nil: // another range gave the endpoint up
		return nil
	case permanent(s.ctx, err):
		return err
	}
	rerr := r.resume.broke(r.atCtx, s.eps[r.at].host, r.off, progress, err)
	var gu *givenUp
	if errors.As(rerr, &gu) {
		s.giveUp(r.at, gu.err)
		return nil
	}
	if rerr != nil && s.ctx.Err() == nil && r.atCtx.Err() != nil {
		return nil // given up by another range during the backoff
	}
	return rerr
}

// checkEnd checks, at the blob's last byte, that an answer of no declared length ends there.
func (r *rangeReader) checkEnd() error {
	if r.rr == nil || r.end < r.src.desc.Size || r.rr.resp.ContentLength >= 0 {
		return nil
	}
	var one [1]byte
	if n, _ := io.ReadFull(r.rr.resp.Body, one[:]); n > 0 {
		return fmt.Errorf("%w: the registry sends more than the %d bytes of the descriptor", oci.ErrSizeMismatch, r.src.desc.Size)
	}
	return nil
}

// close closes the answer being read.
func (r *rangeReader) close() {
	if r.rr != nil {
		r.rr.close()
		r.rr = nil
	}
}

// resumer is the policy by which a rangeReader resumes after an answer broke or the
// watchdog cut it as too slow: an answer that brought bytes (and was not too slow) is
// resumed at once; one that brought none is resumed after the retry policy's backoff, and
// after MaxAttempts of those in a row on one endpoint, that endpoint is given up. The caller
// checks first that the error is not permanent (permanent), which resuming cannot fix.
type resumer struct {
	c        *Client
	failures int // answers in a row that broke without progress
}

// broke records an answer of host that broke with err at byte at, having brought bytes if
// progressed. It returns a *givenUp wrapping err when the endpoint is to be given up,
// the context's error if it ended during the backoff, and nil when the caller is to resume.
func (r *resumer) broke(ctx context.Context, host string, at int64, progressed bool, err error) error {
	if progressed && !tooSlow(err) {
		r.failures = 0
		return nil
	}
	r.failures++
	if r.failures >= r.c.opts.retry.MaxAttempts {
		return &givenUp{fmt.Errorf("connection to %s broke %d times in a row at byte %d: %w", host, r.failures, at, err)}
	}
	return r.c.sleep(ctx, r.failures, 0)
}

// reset starts counting again, for a new endpoint.
func (r *resumer) reset() { r.failures = 0 }

// givenUp is resumer.broke's error for an endpoint given up.
type givenUp struct{ err error }

func (e *givenUp) Error() string { return e.err.Error() }
func (e *givenUp) Unwrap() error { return e.err }

// permanent reports whether a fetch error cannot be fixed by resuming.
func permanent(ctx context.Context, err error) bool {
	var perm *permanentError
	return ctx.Err() != nil || errors.Is(err, oci.ErrDigestMismatch) || errors.Is(err, ErrInvalidResponse) || errors.As(err, &perm)
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

// errShortBody means an answer ended before the bytes it should have held.
var errShortBody = errors.New("answer ended early")

// rangeResponse is an answer to a blob request, with the bytes to skip before the range
// asked for (when the server ignored the range).
type rangeResponse struct {
	resp   *http.Response
	skip   int64
	cancel context.CancelFunc
}

func (rr *rangeResponse) close() {
	rr.resp.Body.Close()
	rr.cancel()
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
