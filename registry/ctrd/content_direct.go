package ctrd

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opendao/dao/registry/oci"
)

// directRefPrefix names the ingests through which Pull makes containerd's metadata aware of a
// blob it wrote directly into the local store.
const directRefPrefix = "dao-direct-"

// directStore returns the local content store to write blobs into directly, or nil to write
// them through containerd's content API.
func (p *puller) directStore() *localStore {
	if p.localOff.Load() {
		return nil
	}
	return p.local
}

// copyDirect fetches desc, from its first byte, straight into containerd's local content
// store (and into t, if not nil), hashing it in this process, then links the verified blob
// into the store and registers it in the namespace (register). w is the open, empty ingest
// of desc under ingestRef, which the caller closes: holding it keeps other pulls of the blob
// waiting, as a fetch through the API does. A fetch that fails after some bytes moves them
// into that ingest (keepPartial), so that the next pull, Dao's or containerd's, resumes it;
// written counts them. A blob that does not match desc is never named in the store. Where
// the store cannot be written after all, the blob goes through w and the pull writes no
// more blobs directly. The fetch ends with fctx, the rest with ctx, as in copyToStore.
func (p *puller) copyDirect(ctx, fctx context.Context, w content.Writer, desc ocispec.Descriptor, t *tap) (written int64, err error) {
	b, err := p.local.create(desc)
	if err != nil {
		p.localOff.Store(true)
		return p.copyToStore(ctx, fctx, w, desc, 0, t)
	}
	defer b.close()
	// The unpacker reads the blob from its file rather than from a copy of its own.
	var sink io.Writer = b
	ft := t
	if t != nil {
		if f, err := b.dup(); err == nil && t.attach(f) {
			sink, ft = &tapSink{b: b, t: t}, nil
		}
	}
	s, _, err := p.fetch(fctx, desc, 0, sink, ft)
	if err == nil {
		defer s.Close()
		if err = b.verify(); err != nil {
			err = fmt.Errorf("registry: fetch blob %s from %s: %w", desc.Digest, p.repo.Name(), err)
		}
	}
	if err != nil {
		if errors.Is(err, oci.ErrDigestMismatch) || b.n == 0 {
			return 0, err
		}
		w.Close() // for keepPartial to open the ingest again
		return p.keepPartial(ctx, desc, b), err
	}
	if t != nil {
		t.finish(nil)
	}
	if err := b.link(); err != nil {
		p.localOff.Store(true)
		if err := p.commitThrough(ctx, w, desc, b); err != nil {
			return 0, err
		}
	} else if err := p.register(ctx, w, desc, b); err != nil {
		return 0, err
	}
	s.Done()
	return 0, nil
}

// register makes containerd's metadata aware of the blob b linked into the local store: an
// ingest opened with the blob's descriptor finds it in the store and is committed into the
// namespace without a byte written ("shared" content, containerd's default policy), and
// the pull's lease, which names the blob already, keeps it from then on. If containerd does
// not see the blob (its sharing policy is "isolated", its collector removed the blob in the
// meantime, or the daemon is not on this host after all), the blob goes through w, the
// ingest of desc, instead, and the pull writes no more blobs directly; else w is closed and
// its ingest, empty, removed in the background (puller.cleanup).
func (p *puller) register(ctx context.Context, w content.Writer, desc ocispec.Descriptor, b *localBlob) error {
	// A verified blob is registered even if the pull has just failed, for the next pull to
	// find it: it takes a few requests.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	shared, err := p.commitShared(rctx, desc)
	if hook := p.opts.directHook; hook != nil {
		hook(desc.Digest, shared)
	}
	if err != nil {
		return err
	}
	if shared {
		// The empty ingest goes in the background, once containerd has closed w: the blob
		// is there meanwhile.
		w.Close()
		p.cleanup.Go(func() { p.abortClosedIngest(ctx, ingestRef(desc)) })
		return nil
	}
	p.localOff.Store(true)
	return p.commitThrough(ctx, w, desc, b)
}

// commitThrough writes the blob b into w, containerd's ingest of desc, and commits it.
func (p *puller) commitThrough(ctx context.Context, w content.Writer, desc ocispec.Descriptor, b *localBlob) error {
	if _, err := copyBuffered(w, b.reader(desc.Size)); err != nil {
		return fmt.Errorf("registry: write %s into the content store: %w", desc.Digest, err)
	}
	if err := commitWriter(ctx, w, desc); err != nil {
		return p.commitError(desc, err)
	}
	return nil
}

// commitShared commits desc into the namespace if containerd's store has its blob: it
// reports whether it did.
func (p *puller) commitShared(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	ref := directRefPrefix + desc.Digest.String()
	w, err := content.OpenWriter(ctx, p.cs, content.WithRef(ref), content.WithDescriptor(desc))
	if errdefs.IsAlreadyExists(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("registry: open ingest of %s: %w", desc.Digest, err)
	}
	st, err := w.Status()
	if err != nil || st.Offset != desc.Size {
		p.abortIngest(ctx, ref)
		w.Close()
		if err != nil {
			return false, fmt.Errorf("registry: status of ingest %s: %w", ref, err)
		}
		return false, nil
	}
	if err := commitWriter(ctx, w, desc); err != nil {
		p.abortIngest(ctx, ref)
		return false, p.commitError(desc, err)
	}
	return true, nil
}

// keepPartial writes the bytes of b, a blob whose fetch failed, into containerd's ingest of
// desc, even when ctx has ended, and returns how many it wrote: the next pull then resumes
// from there.
func (p *puller) keepPartial(ctx context.Context, desc ocispec.Descriptor, b *localBlob) int64 {
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	w, err := content.OpenWriter(kctx, p.cs, content.WithRef(ingestRef(desc)), content.WithDescriptor(desc))
	if err != nil {
		return 0
	}
	defer w.Close()
	st, err := w.Status()
	if err != nil || st.Offset != 0 {
		return st.Offset
	}
	n, _ := copyBuffered(w, b.reader(b.n))
	return n
}

// copyBuffered copies r into w in writes of ingestChunk bytes, each a round trip to
// containerd.
func copyBuffered(w io.Writer, r io.Reader) (int64, error) {
	buf := ingestBuffers.Get().(*[]byte)
	defer ingestBuffers.Put(buf)
	return io.CopyBuffer(w, r, (*buf)[:cap(*buf)])
}

// tapSink writes into a blob file that a tap is attached to, and tells the tap.
type tapSink struct {
	b *localBlob
	t *tap
}

func (s *tapSink) Write(p []byte) (int, error) {
	n, err := s.b.Write(p)
	s.t.advance(int64(n))
	return n, err
}
