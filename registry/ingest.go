package registry

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
// partial ingest for the next pull to resume.
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
		w, err := content.OpenWriter(wctx, p.cs, content.WithRef(ref), content.WithDescriptor(desc))
		if errdefs.IsAlreadyExists(err) {
			p.c.reporter("fetch", p.repo, desc).complete()
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
			w.Close()
			if attempt > 0 {
				return fmt.Errorf("%w: ingest %s holds %d bytes of %d", ErrSizeMismatch, ref, off, st.Total)
			}
			p.abortIngest(wctx, ref)
			continue
		}
		var t *tap
		if off == 0 && attempt == 0 && in.tap != nil {
			t = in.tap
			in.streamed = true
		}
		startedOnce()
		written, err := p.copyToStore(wctx, w, desc, off, t)
		if err == nil {
			return nil
		}
		if off+written == 0 {
			p.abortIngest(wctx, ref) // nothing to resume
		} else if errors.Is(err, ErrDigestMismatch) {
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
// commits it. containerd hashes what it is given as it writes it, and commits only the
// content of the expected digest and size, so the bytes are hashed once, in the same pass;
// t is finished when the last byte is in, but its bytes are verified only once the commit
// succeeds.
func (p *puller) copyToStore(ctx context.Context, w content.Writer, desc ocispec.Descriptor, off int64, t *tap) (written int64, err error) {
	closed := false
	defer func() {
		if !closed {
			w.Close() // leaves the partial ingest for the next pull to resume
		}
	}()
	s, err := p.c.openStream(ctx, p.repo, desc, off)
	if err != nil {
		return 0, err
	}
	defer s.Close()

	// The store's writes go on in their own goroutine, so that fetching, the tap and the
	// store all move at once.
	writes := make(chan *[]byte, 4)
	failed := make(chan struct{})
	wdone := make(chan error, 1)
	go func() {
		var werr error
		for b := range writes {
			if werr == nil {
				var n int
				n, werr = w.Write(*b)
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
		return written, ctx.Err()
	}
	if werr != nil {
		return written, fmt.Errorf("registry: write %s into the content store: %w", desc.Digest, werr)
	}
	if rerr != io.EOF {
		return written, rerr
	}
	if t != nil {
		t.finish(nil)
	}
	closed = true
	if err := w.Commit(ctx, desc.Size, desc.Digest); err != nil {
		if errdefs.IsAlreadyExists(err) {
			return written, nil
		}
		if errdefs.IsFailedPrecondition(err) || strings.Contains(err.Error(), "unexpected digest") {
			return written, fmt.Errorf("registry: fetch blob %s from %s: %w: %w", desc.Digest, p.repo.Name(), ErrDigestMismatch, err)
		}
		return written, fmt.Errorf("registry: commit blob %s: %w", desc.Digest, err)
	}
	s.rep.complete()
	return written, nil
}

// errStoreWrite stops a fetch whose content store write failed; the write's error is
// reported.
var errStoreWrite = errors.New("registry: content store write failed")

// abortIngest removes a partial ingest, even when ctx has ended. An ingest that cannot be
// removed is resumed by the next pull, whose commit containerd verifies.
func (p *puller) abortIngest(ctx context.Context, ref string) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_ = p.cs.Abort(actx, ref)
}
