package remote

import (
	"context"
	"errors"
	"fmt"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opendao/dao/registry/name"
	"github.com/opendao/dao/registry/oci"
)

// BlobStream reads a blob from an offset to its end straight from the registry, in one
// request, resuming with a Range request where a connection breaks or stalls. It reads
// exactly the bytes the descriptor's size says (a server that sends more or fewer is an
// oci.ErrSizeMismatch), but it does not verify the digest: that is its caller's work, which may
// not have the bytes before the offset (a partial ingest that containerd verifies). Unlike
// FetchBlob it keeps no spool and shares nothing, so each byte is read once.
//
// FetchBlob's download (download.go) is the other engine: spooled, shared between callers,
// in parallel ranges. Both already share the one speed watchdog (every body is watched in
// send), the retry policy and the endpoint order; what they still each have is the loop
// that reopens a range after a break and moves on to the next endpoint. The way to one
// engine: a ranged reader of [from, end) that owns that loop (this type, with an end), of
// which a download's chunk is one instance copied into the spool at its offset, and a
// stream the instance [off, size) read straight through. It is left for a change measured
// on its own with internal/bench/pull, since the stream is the pull's hot path.
type BlobStream struct {
	c    *Client
	ctx  context.Context
	repo name.Reference
	desc ocispec.Descriptor
	rep  *reporter
	// eps are the endpoints to fetch from, in order; ep is eps[next-1], the one in use.
	eps  []*endpoint
	next int
	ep   *endpoint
	errs []error // of the endpoints given up

	off int64 // the next byte to read
	rr  *rangeResponse
	// openedAt is off when rr was opened; resume decides what follows a broken answer.
	openedAt int64
	resume   resumer
	err      error // sticky
}

// openStream returns a stream of the blob desc of repo from byte off, from the first
// endpoint that answers. Progress is reported as "fetch" from off.
func (c *Client) openStream(ctx context.Context, repo name.Reference, desc ocispec.Descriptor, off int64) (*BlobStream, error) {
	s := &BlobStream{c: c, ctx: ctx, repo: repo, desc: desc, off: off, rep: c.reporter("fetch", repo, desc), eps: c.endpoints(repo.Registry, CapPull), resume: resumer{c: c}}
	if off >= desc.Size {
		return s, nil
	}
	if err := s.nextEndpoint(); err != nil {
		return nil, s.wrap(err)
	}
	return s, nil
}

// nextEndpoint opens the rest of the blob from the next endpoint that answers.
func (s *BlobStream) nextEndpoint() error {
	for s.next < len(s.eps) {
		ep := s.eps[s.next]
		s.next++
		rr, err := s.c.openRange(s.ctx, ep, s.repo, s.desc, s.off, s.desc.Size)
		if err != nil {
			if s.ctx.Err() != nil {
				return s.ctx.Err()
			}
			if permanent(s.ctx, err) {
				return err
			}
			s.errs = append(s.errs, err)
			continue
		}
		s.ep = ep
		s.resume.reset()
		s.attach(rr)
		return nil
	}
	return endpointsError(s.errs)
}

func (s *BlobStream) wrap(err error) error {
	return fmt.Errorf("registry: fetch blob %s from %s: %w", s.desc.Digest, s.repo.Name(), err)
}

// attach makes rr the answer being read.
func (s *BlobStream) attach(rr *rangeResponse) {
	s.rr, s.openedAt = rr, s.off
}

// detach closes the answer being read.
func (s *BlobStream) detach() {
	if s.rr == nil {
		return
	}
	s.rr.close()
	s.rr = nil
}

// Read reads the next bytes of the blob; it returns io.EOF after the last.
func (s *BlobStream) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	for {
		if s.off >= s.desc.Size {
			err := s.end()
			s.detach()
			if err != nil {
				s.err = s.wrap(err)
				return 0, s.err
			}
			s.err = io.EOF
			return 0, io.EOF
		}
		if len(p) == 0 {
			return 0, nil
		}
		if s.rr == nil {
			if err := s.reopen(); err != nil {
				s.err = s.wrap(err)
				return 0, s.err
			}
		}
		n, err := s.read(p[:min(int64(len(p)), s.desc.Size-s.off)])
		if n > 0 {
			s.off += int64(n)
			s.rep.update(s.off)
			if err != nil {
				if berr := s.broken(err); berr != nil {
					s.err = s.wrap(berr) // for the next Read
				}
			}
			return n, nil
		}
		if err == nil {
			continue
		}
		if err := s.broken(err); err != nil {
			s.err = s.wrap(err)
			return 0, s.err
		}
	}
}

// read reads from the answer, past the bytes it must skip.
func (s *BlobStream) read(p []byte) (int, error) {
	body := s.rr.resp.Body
	if s.rr.skip > 0 {
		n, err := io.CopyN(io.Discard, body, s.rr.skip)
		s.rr.skip -= n
		if err != nil {
			return 0, err
		}
	}
	n, err := body.Read(p)
	if err == io.EOF {
		if int64(n) < s.desc.Size-s.off {
			return n, errShortBody
		}
		err = nil
	}
	return n, err
}

// broken drops the answer after err, and returns err if resuming cannot help: err is
// permanent, or MaxAttempts answers in a row from every endpoint broke without a byte (or
// were too slow). An endpoint given up on is left for the next.
func (s *BlobStream) broken(err error) error {
	progress := s.off > s.openedAt
	s.detach()
	if permanent(s.ctx, err) {
		if s.ctx.Err() != nil {
			return s.ctx.Err()
		}
		return err
	}
	rerr := s.resume.broke(s.ctx, s.ep.host, s.off, progress, err)
	var gu *givenUp
	if errors.As(rerr, &gu) {
		s.errs = append(s.errs, gu.err)
		return s.nextEndpoint()
	}
	return rerr
}

// reopen asks the endpoint for the rest of the blob, or the next endpoints if it fails.
func (s *BlobStream) reopen() error {
	rr, err := s.c.openRange(s.ctx, s.ep, s.repo, s.desc, s.off, s.desc.Size)
	if err != nil {
		if s.ctx.Err() != nil {
			return s.ctx.Err()
		}
		if permanent(s.ctx, err) {
			return err
		}
		s.errs = append(s.errs, err)
		return s.nextEndpoint()
	}
	s.attach(rr)
	return nil
}

// end checks, at the blob's last byte, that an answer of no declared length ends there.
func (s *BlobStream) end() error {
	if s.rr == nil || s.rr.resp.ContentLength >= 0 {
		return nil
	}
	var one [1]byte
	if n, _ := io.ReadFull(s.rr.resp.Body, one[:]); n > 0 {
		return fmt.Errorf("%w: the registry sends more than the %d bytes of the descriptor", oci.ErrSizeMismatch, s.desc.Size)
	}
	return nil
}

// Close closes the answer being read.
func (s *BlobStream) Close() error {
	s.detach()
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
