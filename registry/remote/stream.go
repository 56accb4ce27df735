package remote

import (
	"context"
	"errors"
	"fmt"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opendao/dao/registry/name"
)

// BlobStream reads a blob from an offset to its end straight from the registry, in one
// request, resuming with a Range request where a connection breaks or stalls. It reads
// exactly the bytes the descriptor's size says (a server that sends more or fewer is an
// oci.ErrSizeMismatch), but it does not verify the digest: that is its caller's work, which may
// not have the bytes before the offset (a partial ingest that containerd verifies). Unlike
// FetchBlob it keeps no spool and shares nothing, so each byte is read once. It is the fetch
// engine's range [off, size) (ranges.go) read straight through.
type BlobStream struct {
	src *source
	r   *rangeReader
	rep *reporter
	err error // sticky, wrapped
}

// openStream returns a stream of the blob desc of repo from byte off, from the first
// endpoint that answers. Progress is reported as "fetch" from off.
func (c *Client) openStream(ctx context.Context, repo name.Reference, desc ocispec.Descriptor, off int64) (*BlobStream, error) {
	src := c.newSource(ctx, repo, desc)
	s := &BlobStream{src: src, r: src.reader(off, desc.Size), rep: c.reporter("fetch", repo, desc)}
	if off < desc.Size {
		if err := s.r.open(); err != nil {
			src.close()
			return nil, s.wrap(err)
		}
	}
	return s, nil
}

func (s *BlobStream) wrap(err error) error {
	return fmt.Errorf("registry: fetch blob %s from %s: %w", s.src.desc.Digest, s.src.repo.Name(), err)
}

// Read reads the next bytes of the blob; it returns io.EOF after the last.
func (s *BlobStream) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.r.Read(p)
	if n > 0 {
		s.rep.update(s.r.off)
	}
	if err != nil {
		s.err = err
		if err != io.EOF {
			s.err = s.wrap(err)
		}
	}
	return n, s.err
}

// Close closes the answer being read.
func (s *BlobStream) Close() error {
	s.r.close()
	s.src.close()
	if s.err == nil {
		s.err = errors.New("registry: read of a closed blob stream")
	}
	return nil
}

// StreamBlob returns a reader of the blob desc of repo from byte off to its end, for a
// caller that verifies the digest itself, such as one that writes the blob into a store
// which verifies it as it commits it (containerd's content store). It reads straight from
// the registry, in one request, resuming with a Range request where a connection breaks or
// stalls and going on to the next mirror as FetchBlob does; it reads exactly desc.Size bytes
// (a registry that sends more or fewer fails it with oci.ErrSizeMismatch) but does not
// verify the digest, and it keeps no spool and shares nothing, so each byte is read once.
// Its progress is reported through WithProgress as "fetch" from off; the caller reports the
// blob complete with BlobStream.Done once it has verified it.
func (c *Client) StreamBlob(ctx context.Context, repo string, desc ocispec.Descriptor, off int64) (*BlobStream, error) {
	r, err := name.ParseRepository(repo)
	if err != nil {
		return nil, err
	}
	if err := checkDescriptor(desc); err != nil {
		return nil, err
	}
	if off < 0 || off > desc.Size {
		return nil, fmt.Errorf("%w: offset %d of a blob of %d bytes", ErrInvalidOption, off, desc.Size)
	}
	return c.openStream(ctx, r, desc, off)
}

// Done reports through the client's WithProgress that the blob is complete.
func (s *BlobStream) Done() { s.rep.complete() }

// ReportDone reports through WithProgress that the blob desc of repo is complete without
// being fetched: for a caller that found it already where it was going.
func (c *Client) ReportDone(repo string, desc ocispec.Descriptor) {
	r, err := name.ParseRepository(repo)
	if err != nil {
		return
	}
	c.reporter("fetch", r, desc).complete()
}

// SpoolDir returns the directory where the client spools blobs (WithSpoolDir), for callers
// that spool what they fetch through it alike.
func (c *Client) SpoolDir() string { return c.opts.spoolDir }
