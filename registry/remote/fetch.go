package remote

import (
	"context"
	_ "crypto/sha512" // registers sha384 and sha512 digests
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opendao/dao/registry/name"
	"github.com/opendao/dao/registry/oci"
)

// FetchBlob returns a reader of the blob desc describes, from repo ("127.0.0.1:5000/app",
// or "busybox" for docker.io/library/busybox), fetched from the first mirror or the
// registry that has it.
//
// The content is verified as it is read: the reader returns io.EOF only after exactly
// desc.Size bytes whose digest is desc.Digest; otherwise its last Read fails with an error
// matching oci.ErrDigestMismatch (and oci.ErrSizeMismatch for a wrong length), so bad content is
// never returned as good. A caller that stores what it reads must discard it on error.
//
// A broken connection is resumed with a Range request where it broke; a large blob is
// fetched as parallel ranges (WithRangeDownload) into a spool (WithSpoolDir) from which the
// reader reads what has been verified so far; concurrent FetchBlob calls for the same blob
// of the same repository share one download. FetchBlob returns once a server has answered,
// so an unknown blob or a refusal is its error, not the reader's. Reads fail once ctx ends.
// The caller must close the reader.
func (c *Client) FetchBlob(ctx context.Context, repo string, desc ocispec.Descriptor) (io.ReadCloser, error) {
	r, err := name.ParseRepository(repo)
	if err != nil {
		return nil, err
	}
	if err := checkDescriptor(desc); err != nil {
		return nil, err
	}
	d, err := c.joinDownload(ctx, r, desc)
	if err != nil {
		return nil, err
	}
	br := &blobReader{d: d, ctx: ctx}
	br.stop = context.AfterFunc(ctx, func() { br.Close() })
	for {
		d.mu.Lock()
		started, done, readable, err, changed := d.started, d.done, d.readable, d.err, d.changed
		d.mu.Unlock()
		if done && err != nil && readable == 0 {
			br.Close()
			return nil, err
		}
		if started {
			return br, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			br.Close()
			return nil, fmt.Errorf("registry: fetch blob %s from %s: %w", desc.Digest, r.Name(), ctx.Err())
		}
	}
}

// checkDescriptor refuses a descriptor whose digest is malformed or of an unknown
// algorithm, or whose size is negative.
func checkDescriptor(desc ocispec.Descriptor) error {
	if err := desc.Digest.Validate(); err != nil {
		return fmt.Errorf("%w: descriptor digest %q: %v", oci.ErrInvalidImage, desc.Digest, err)
	}
	if desc.Size < 0 {
		return fmt.Errorf("%w: descriptor of %s has negative size %d", oci.ErrInvalidImage, desc.Digest, desc.Size)
	}
	return nil
}

// blobReader reads a download's verified bytes.
type blobReader struct {
	d      *download
	ctx    context.Context
	off    int64
	stop   func() bool
	once   sync.Once
	closed atomic.Bool
}

func (r *blobReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	d := r.d
	for {
		if r.closed.Load() {
			return 0, errors.New("registry: read of a closed blob reader")
		}
		d.mu.Lock()
		readable, done, err, changed := d.readable, d.done, d.err, d.changed
		d.mu.Unlock()
		if r.off < readable {
			n := int(min(int64(len(p)), readable-r.off))
			n, rerr := d.spool.ReadAt(p[:n], r.off)
			r.off += int64(n)
			if rerr != nil && rerr != io.EOF {
				return n, fmt.Errorf("registry: read blob %s: %w", d.desc.Digest, rerr)
			}
			return n, nil
		}
		if done {
			if err != nil {
				return 0, err
			}
			return 0, io.EOF
		}
		select {
		case <-changed:
		case <-r.ctx.Done():
			return 0, fmt.Errorf("registry: fetch blob %s: %w", d.desc.Digest, r.ctx.Err())
		}
	}
}

// Close gives the download back; the last reader's Close stops an unfinished one.
func (r *blobReader) Close() error {
	r.once.Do(func() {
		r.closed.Store(true)
		if r.stop != nil {
			r.stop()
		}
		r.d.release()
	})
	return nil
}

// StatBlob asks repo whether it has the blob of digest dgst and returns its descriptor (the
// size the registry gives, media type application/octet-stream). It fails with an error
// matching ErrBlobUnknown if the registry lacks it.
func (c *Client) StatBlob(ctx context.Context, repo string, dgst digest.Digest) (ocispec.Descriptor, error) {
	r, err := name.ParseRepository(repo)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if err := dgst.Validate(); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%w: digest %q: %v", oci.ErrInvalidImage, dgst, err)
	}
	var errs []error
	for _, ep := range c.endpoints(r.Registry, CapPull) {
		desc, err := c.statBlob(ctx, ep, r, dgst)
		if err == nil {
			return desc, nil
		}
		if ctx.Err() != nil {
			return ocispec.Descriptor{}, err
		}
		errs = append(errs, err)
	}
	return ocispec.Descriptor{}, fmt.Errorf("registry: stat blob %s in %s: %w", dgst, r.Name(), endpointsError(errs))
}

func (c *Client) statBlob(ctx context.Context, ep *endpoint, r name.Reference, dgst digest.Digest) (ocispec.Descriptor, error) {
	resp, err := c.do(ctx, ep, &request{
		method: http.MethodHead,
		url:    ep.url(r.Repository+"/blobs/"+dgst.String(), nil),
		scopes: []string{pullScope(r)},
		ok:     []int{http.StatusOK},
	})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	resp.Body.Close()
	size, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
	if err != nil || size < 0 {
		return ocispec.Descriptor{}, fmt.Errorf("%w: HEAD of blob %s answered no Content-Length", ErrInvalidResponse, dgst)
	}
	return ocispec.Descriptor{MediaType: "application/octet-stream", Digest: dgst, Size: size}, nil
}
