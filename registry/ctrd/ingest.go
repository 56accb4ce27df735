package ctrd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/remote"
)

// ingestChunk is how many bytes go to containerd's content store in one write: each write is
// a round trip on the stream, so fewer, larger ones go faster.
const ingestChunk = 1 << 20

var ingestBuffers = sync.Pool{New: func() any { b := make([]byte, ingestChunk); return &b }}

// ingestRef is the content store's ingest key of a blob, as containerd's own pull names it,
// so that a partial ingest left by either is resumed by the other.
func ingestRef(desc ocispec.Descriptor) string {
	return "layer-" + desc.Digest.String()
}

// ingest is the fetch of one layer blob into containerd's content store.
type ingest struct {
	desc ocispec.Descriptor
	// tap receives the blob from its first byte for the unpacker; nil if no unpacking needs
	// it.
	tap *tap

	// started is closed once it is known whether tap is fed (streamed): it is not when the
	// store already has the blob or the fetch resumes a partial ingest, and the unpacker then
	// reads the blob from the store once done is closed.
	started  chan struct{}
	streamed bool
	// done is closed when the blob is committed (err nil) or the fetch failed.
	done chan struct{}
	err  error
}

func newIngest(desc ocispec.Descriptor, t *tap) *ingest {
	return &ingest{desc: desc, tap: t, started: make(chan struct{}), done: make(chan struct{})}
}

// wait waits until the blob is committed or failed.
func (in *ingest) wait(ctx context.Context) error {
	select {
	case <-in.done:
		return in.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runIngest fetches the blob into the store: from the first byte, or from where a partial
// ingest of an earlier fetch stopped (Dao's or containerd's, which names ingests alike). A
// blob whose content does not match is aborted, never committed; a partial ingest that turns
// out bad is fetched again from the first byte, once. A fetch that fails otherwise leaves its
// partial ingest for the next pull to resume. A blob fetched from its first byte goes
// straight into containerd's local store when the pull can write it (copyDirect), through
// the content API otherwise (copyToStore).
func (p *puller) runIngest(ctx context.Context, in *ingest) (err error) {
	startedOnce := sync.OnceFunc(func() { close(in.started) })
	defer func() {
		startedOnce()
		if in.tap != nil {
			if !in.streamed {
				in.tap.finish(errors.New("registry: blob not streamed"))
			} else if err != nil {
				in.tap.finish(err)
			}
			in.tap.release()
		}
		in.err = err
		close(in.done)
	}()
	desc := in.desc
	ref := ingestRef(desc)
	wctx, cancel := p.wctx(ctx)
	defer cancel()
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		w, err := content.OpenWriter(wctx, p.cs, content.WithRef(ref), content.WithDescriptor(desc))
		if errdefs.IsAlreadyExists(err) {
			p.c.ReportDone(p.repo.Name(), desc)
			return nil
		}
		if err != nil {
			return fmt.Errorf("registry: open ingest of %s: %w", desc.Digest, err)
		}
		st, err := w.Status()
		if err != nil {
			w.Close()
			return fmt.Errorf("registry: status of ingest %s: %w", ref, err)
		}
		off := st.Offset
		if off > desc.Size || (st.Total != 0 && st.Total != desc.Size) {
			// Not this blob's: start again.
			if attempt > 0 {
				w.Close()
				return fmt.Errorf("%w: ingest %s holds %d bytes of %d", oci.ErrSizeMismatch, ref, off, st.Total)
			}
			p.abortIngest(wctx, ref)
			w.Close()
			continue
		}
		var t *tap
		if off == 0 && attempt == 0 && in.tap != nil {
			t = in.tap
			in.streamed = true
		}
		startedOnce()
		var written int64
		if off == 0 && p.directStore() != nil {
			written, err = p.copyDirect(wctx, ctx, w, desc, t)
		} else {
			written, err = p.copyToStore(wctx, ctx, w, desc, off, t)
		}
		w.Close() // leaves a partial ingest for the next pull to resume
		if err == nil {
			return nil
		}
		if off+written == 0 {
			p.abortClosedIngest(wctx, ref) // nothing to resume
		} else if errors.Is(err, oci.ErrDigestMismatch) {
			// The failed commit closed containerd's writer already.
			p.abortIngest(wctx, ref)
			if off > 0 && attempt == 0 {
				// The part already there was bad: fetch it all again.
				continue
			}
		}
		return err
	}
}

// copyToStore fetches desc from byte off into w, appending it to t (if not nil) too, and
// commits it. The fetch ends with fctx; writes into w go on with ctx (the ingest's context
// of puller.wctx), so that what was read before fctx ended is in the ingest. containerd hashes what it is given as it writes it, and commits only the
// content of the expected digest and size, so the bytes are hashed once, in the same pass;
// t is finished when the last byte is in, but its bytes are verified only once the commit
// succeeds. The caller closes w.
func (p *puller) copyToStore(ctx, fctx context.Context, w content.Writer, desc ocispec.Descriptor, off int64, t *tap) (written int64, err error) {
	s, written, err := p.fetch(fctx, desc, off, w, t)
	if err != nil {
		return written, err
	}
	defer s.Close()
	if t != nil {
		t.finish(nil)
	}
	if err := commitWriter(ctx, w, desc); err != nil {
		return written, p.commitError(desc, err)
	}
	s.Done()
	return written, nil
}

// commitWriter commits the blob desc written into w; one committed meanwhile by another is
// no error.
func commitWriter(ctx context.Context, w content.Writer, desc ocispec.Descriptor) error {
	if err := w.Commit(ctx, desc.Size, desc.Digest); err != nil && !errdefs.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// commitError describes the failed commit of desc, as a digest mismatch when containerd
// found one.
func (p *puller) commitError(desc ocispec.Descriptor, err error) error {
	if errdefs.IsFailedPrecondition(err) || strings.Contains(err.Error(), "unexpected digest") {
		return fmt.Errorf("registry: fetch blob %s from %s: %w: %w", desc.Digest, p.repo.Name(), oci.ErrDigestMismatch, err)
	}
	return fmt.Errorf("registry: commit blob %s: %w", desc.Digest, err)
}

// fetch streams desc from byte off into sink, and appends it to t (if not nil) too. The
// sink's writes go on in their own goroutine, so that fetching, the tap and the sink all
// move at once. written counts the bytes the sink took: when ctx ends, fetch stops reading
// but waits for the sink to take what was read, so that an interrupted pull keeps it. It returns the stream, to be closed,
// once its last byte is in the sink.
func (p *puller) fetch(ctx context.Context, desc ocispec.Descriptor, off int64, sink io.Writer, t *tap) (_ *remote.BlobStream, written int64, err error) {
	s, err := p.c.StreamBlob(ctx, p.repo.Name(), desc, off)
	if err != nil {
		return nil, 0, err
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	writes := make(chan *[]byte, 4)
	failed := make(chan struct{})
	wdone := make(chan error, 1)
	go func() {
		var werr error
		for b := range writes {
			if werr == nil {
				var n int
				n, werr = sink.Write(*b)
				written += int64(n)
				if werr != nil {
					close(failed)
				}
			}
			ingestBuffers.Put(b)
		}
		wdone <- werr
	}()
	var rerr error
	for rerr == nil {
		if err := ctx.Err(); err != nil {
			rerr = err
			break
		}
		b := ingestBuffers.Get().(*[]byte)
		*b = (*b)[:cap(*b)]
		n, err := io.ReadFull(s, *b)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		if n > 0 && t != nil {
			if terr := t.write((*b)[:n]); terr != nil {
				err = terr
			}
		}
		if n == 0 {
			ingestBuffers.Put(b)
		} else {
			*b = (*b)[:n]
			select {
			case writes <- b:
			case <-failed:
				ingestBuffers.Put(b)
				err = errStoreWrite
			}
		}
		rerr = err
	}
	close(writes)
	werr := <-wdone
	if ctx.Err() != nil {
		return nil, written, ctx.Err()
	}
	if werr != nil {
		return nil, written, fmt.Errorf("registry: write %s into the content store: %w", desc.Digest, werr)
	}
	if rerr != io.EOF {
		return nil, written, rerr
	}
	return s, written, nil
}

// errStoreWrite stops a fetch whose content store write failed; the write's error is
// reported.
var errStoreWrite = errors.New("registry: content store write failed")

// abortIngest removes a partial ingest, even when ctx has ended. An ingest that cannot be
// removed is resumed by the next pull, whose commit containerd verifies. The caller's writer
// of the ingest must be open still (so that containerd's writer is not closing meanwhile:
// closing, it rewrites a file of the ingest, which would then be left behind) or closed by a
// commit; else see abortClosedIngest.
func (p *puller) abortIngest(ctx context.Context, ref string) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_ = whileRestarting(actx, func() error { return p.cs.Abort(actx, ref) })
}

// abortClosedIngest removes an empty ingest whose writer was just closed (or broke),
// without a race with containerd closing it: it opens the ingest again, which waits until
// containerd's writer is closed, and removes it while holding it. An ingest that another
// holds is left to them.
func (p *puller) abortClosedIngest(ctx context.Context, ref string) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	// Without a descriptor, containerd neither shares the content of a blob it has nor
	// answers that the blob exists: the ingest is locked.
	w, err := content.OpenWriter(actx, p.cs, content.WithRef(ref))
	if err != nil {
		return
	}
	_ = p.cs.Abort(actx, ref)
	w.Close()
}
