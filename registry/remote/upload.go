package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opendao/dao/registry/name"
	"github.com/opendao/dao/registry/oci"
)

// PushBlob uploads b's content to repo, unless the registry has it already. It reads b
// through Open, verifying it against b's descriptor, and sends it in one request, or in
// chunks with WithChunkedUpload; the registry checks the digest before it keeps the blob.
// A failed upload is started again, up to the retry policy's attempts.
func (c *Client) PushBlob(ctx context.Context, repo string, b oci.Blob) error {
	r, err := name.ParseRepository(repo)
	if err != nil {
		return err
	}
	desc := b.Descriptor()
	if err := checkDescriptor(desc); err != nil {
		return err
	}
	if err := c.pushBlob(ctx, c.pushEndpoint(r.Registry), r, b, ""); err != nil {
		return fmt.Errorf("registry: push blob %s to %s: %w", desc.Digest, r.Name(), err)
	}
	return nil
}

// MountBlob asks the registry to link the blob desc describes from repository from (on the
// same registry, such as "127.0.0.1:5000/base") into repo, without sending its content. It
// fails with ErrNotMounted if the registry declines, as it may when from lacks the blob or
// the client may not read it.
func (c *Client) MountBlob(ctx context.Context, repo, from string, desc ocispec.Descriptor) error {
	r, err := name.ParseRepository(repo)
	if err != nil {
		return err
	}
	f, err := name.ParseRepository(from)
	if err != nil {
		return err
	}
	if f.Registry != r.Registry {
		return fmt.Errorf("%w: cannot mount from %s into %s: not the same registry", ErrInvalidOption, f.Name(), r.Name())
	}
	if err := checkDescriptor(desc); err != nil {
		return err
	}
	ep := c.pushEndpoint(r.Registry)
	s, err := c.startUpload(ctx, ep, r, desc, f.Repository)
	if err != nil {
		return fmt.Errorf("registry: mount blob %s from %s into %s: %w", desc.Digest, f.Name(), r.Name(), err)
	}
	if s == nil {
		c.reporter("mount", r, desc).complete()
		return nil
	}
	s.cancel(ctx)
	return fmt.Errorf("%w: %s from %s into %s", ErrNotMounted, desc.Digest, f.Name(), r.Name())
}

// pushEndpoint is where pushes to registry reg go: the first mirror with CapPush, or the
// registry itself.
func (c *Client) pushEndpoint(reg string) *endpoint { return c.endpoints(reg, CapPush)[0] }

// pushBlob uploads b to r on ep unless it is there, trying to mount it from mountFrom (a
// repository of the same registry) first if that is not "".
func (c *Client) pushBlob(ctx context.Context, ep *endpoint, r name.Reference, b oci.Blob, mountFrom string) error {
	desc := b.Descriptor()
	rep := c.reporter("push", r, desc)
	if _, err := c.statBlob(ctx, ep, r, desc.Digest); err == nil {
		rep.complete()
		return nil
	} else if ctx.Err() != nil {
		return err
	}
	var err error
	for attempt := 1; ; attempt++ {
		var s *uploadSession
		if s, err = c.startUpload(ctx, ep, r, desc, mountFrom); err != nil {
			return err
		}
		if s == nil {
			c.reporter("mount", r, desc).complete()
			return nil
		}
		mountFrom = "" // declined once: do not ask again
		if err = s.send(ctx, b, rep); err == nil {
			rep.complete()
			return nil
		}
		s.cancel(ctx)
		if ctx.Err() != nil || errors.Is(err, oci.ErrDigestMismatch) || attempt >= c.opts.retry.MaxAttempts || !retryableUpload(ctx, err) {
			return err
		}
		if err := c.sleep(ctx, attempt, 0); err != nil {
			return err
		}
	}
}

// retryableUpload reports whether an upload that failed with err may succeed in a new
// session.
func retryableUpload(ctx context.Context, err error) bool {
	var re *ResponseError
	if errors.As(err, &re) {
		return retryableStatus(re.StatusCode)
	}
	return retryableError(ctx, err)
}

// uploadSession is an upload the registry has opened.
type uploadSession struct {
	c        *Client
	ep       *endpoint
	r        name.Reference
	desc     ocispec.Descriptor
	location string
	minChunk int64
}

// startUpload opens an upload session, asking to mount the blob from mountFrom if that is
// not "". It returns nil and no error if the registry mounted the blob.
func (c *Client) startUpload(ctx context.Context, ep *endpoint, r name.Reference, desc ocispec.Descriptor, mountFrom string) (*uploadSession, error) {
	q := url.Values{}
	scopes := []string{pushScope(r)}
	if mountFrom != "" {
		q.Set("mount", desc.Digest.String())
		q.Set("from", mountFrom)
		scopes = append(scopes, "repository:"+mountFrom+":pull")
	}
	resp, err := c.do(ctx, ep, &request{
		method: http.MethodPost,
		url:    ep.url(r.Repository+"/blobs/uploads/", q),
		scopes: scopes,
		ok:     []int{http.StatusCreated, http.StatusAccepted},
	})
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusCreated {
		if mountFrom == "" {
			return nil, fmt.Errorf("%w: %s created a blob it was not sent", ErrInvalidResponse, ep.host)
		}
		return nil, nil
	}
	loc, err := location(resp)
	if err != nil {
		return nil, err
	}
	s := &uploadSession{c: c, ep: ep, r: r, desc: desc, location: loc}
	if n, err := strconv.ParseInt(resp.Header.Get("OCI-Chunk-Min-Length"), 10, 64); err == nil && n > 0 {
		s.minChunk = n
	}
	return s, nil
}

// location returns the answer's Location, resolved against its request's URL.
func location(resp *http.Response) (string, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", fmt.Errorf("%w: %s %s answered no Location", ErrInvalidResponse, resp.Request.Method, redact(resp.Request.URL.String()))
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("%w: Location %q: %v", ErrInvalidResponse, loc, err)
	}
	return u.String(), nil
}

// withDigest adds the digest query parameter to an upload location.
func (s *uploadSession) withDigest() string {
	u, _ := url.Parse(s.location) // it came from location
	q := u.Query()
	q.Set("digest", s.desc.Digest.String())
	u.RawQuery = q.Encode()
	return u.String()
}

// send sends b in one PUT, or in chunks.
func (s *uploadSession) send(ctx context.Context, b oci.Blob, rep *reporter) error {
	chunk := s.c.opts.uploadChunk
	if chunk > 0 && s.minChunk > chunk {
		chunk = s.minChunk
	}
	if chunk > 0 && s.desc.Size > chunk {
		return s.sendChunks(ctx, b, chunk, rep)
	}
	resp, err := s.c.do(ctx, s.ep, &request{
		method: http.MethodPut,
		url:    s.withDigest(),
		header: http.Header{"Content-Type": {"application/octet-stream"}},
		body: func() (io.ReadCloser, error) {
			rc, err := b.Open()
			if err != nil {
				return nil, err
			}
			return &countingReader{ReadCloser: oci.Verify(rc, s.desc), rep: rep}, nil
		},
		size:   s.desc.Size,
		scopes: []string{pushScope(s.r)},
		ok:     []int{http.StatusCreated},
		once:   true, // a broken PUT may leave part of the body: pushBlob starts anew
	})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// sendChunks sends b in PATCH requests of chunk bytes, each retried on its own, where the
// registry says it stands, then commits with an empty PUT.
func (s *uploadSession) sendChunks(ctx context.Context, b oci.Blob, chunk int64, rep *reporter) error {
	rc, err := b.Open()
	if err != nil {
		return &permanentError{err}
	}
	defer rc.Close()
	content := oci.Verify(rc, s.desc)
	buf := make([]byte, chunk)
	var off int64
	for off < s.desc.Size {
		n, err := io.ReadFull(content, buf[:min(chunk, s.desc.Size-off)])
		if err != nil {
			return &permanentError{err}
		}
		if err := s.patchRetrying(ctx, buf[:n], off); err != nil {
			return err
		}
		off += int64(n)
		rep.update(off)
	}
	// Reaching EOF checks the digest of what was read.
	if _, err := content.Read(buf[:1]); err != io.EOF {
		if err == nil {
			err = fmt.Errorf("%w: blob %s: longer than its size", oci.ErrSizeMismatch, s.desc.Digest)
		}
		return &permanentError{err}
	}
	resp, err := s.c.do(ctx, s.ep, &request{
		method: http.MethodPut,
		url:    s.withDigest(),
		scopes: []string{pushScope(s.r)},
		ok:     []int{http.StatusCreated},
	})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// patchRetrying sends data, which starts at offset off of the blob; when a PATCH fails, it
// asks the registry how much it has and sends the rest of data again.
func (s *uploadSession) patchRetrying(ctx context.Context, data []byte, off int64) error {
	var skip int64
	for attempt := 1; ; attempt++ {
		err := s.patch(ctx, data[skip:], off+skip)
		if err == nil {
			return nil
		}
		if !retryableUpload(ctx, err) || attempt >= s.c.opts.retry.MaxAttempts {
			return err
		}
		if err := s.c.sleep(ctx, attempt, 0); err != nil {
			return err
		}
		have, serr := s.status(ctx)
		if serr != nil || have < off || have > off+int64(len(data)) {
			return err
		}
		if skip = have - off; skip == int64(len(data)) {
			return nil
		}
	}
}

// status asks the registry how many bytes the upload holds.
func (s *uploadSession) status(ctx context.Context) (int64, error) {
	resp, err := s.c.do(ctx, s.ep, &request{
		method: http.MethodGet,
		url:    s.location,
		scopes: []string{pushScope(s.r)},
		ok:     []int{http.StatusNoContent},
	})
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if loc, err := location(resp); err == nil {
		s.location = loc
	}
	if rng := resp.Header.Get("Range"); rng == "" || rng == "0-0" {
		// Distribution says "0-0" for an empty upload (and for one of 1 byte).
		return 0, nil
	}
	end, ok := uploadedEnd(resp)
	if !ok {
		return 0, fmt.Errorf("%w: upload status Range %q", ErrInvalidResponse, resp.Header.Get("Range"))
	}
	return end, nil
}

// patch sends data, which starts at offset off of the blob, once.
func (s *uploadSession) patch(ctx context.Context, data []byte, off int64) error {
	resp, err := s.c.do(ctx, s.ep, &request{
		method: http.MethodPatch,
		url:    s.location,
		header: http.Header{
			"Content-Type":  {"application/octet-stream"},
			"Content-Range": {fmt.Sprintf("%d-%d", off, off+int64(len(data))-1)},
		},
		body:   func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		size:   int64(len(data)),
		scopes: []string{pushScope(s.r)},
		ok:     []int{http.StatusAccepted, http.StatusNoContent},
		once:   true,
	})
	if err != nil {
		return err
	}
	resp.Body.Close()
	if s.location, err = location(resp); err != nil {
		return err
	}
	if end, ok := uploadedEnd(resp); ok && end != off+int64(len(data)) {
		return fmt.Errorf("%w: after a chunk ending at byte %d the registry has %d bytes", ErrInvalidResponse, off+int64(len(data)), end)
	}
	return nil
}

// uploadedEnd reads how many bytes an upload holds from the Range header ("0-N").
func uploadedEnd(resp *http.Response) (int64, bool) {
	_, last, ok := strings.Cut(resp.Header.Get("Range"), "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(last, 10, 64)
	if err != nil {
		return 0, false
	}
	return n + 1, true
}

// cancel abandons the session, as far as the registry lets it.
func (s *uploadSession) cancel(ctx context.Context) {
	resp, err := s.c.do(context.WithoutCancel(ctx), s.ep, &request{
		method: http.MethodDelete,
		url:    s.location,
		scopes: []string{pushScope(s.r)},
		ok:     []int{http.StatusNoContent, http.StatusOK, http.StatusAccepted, http.StatusNotFound},
	})
	if err == nil {
		resp.Body.Close()
	}
}

// countingReader reports the bytes read through it.
type countingReader struct {
	io.ReadCloser
	rep *reporter
	n   int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.n += int64(n)
	r.rep.update(r.n)
	return n, err
}
