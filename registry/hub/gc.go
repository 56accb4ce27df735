package hub

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/opendao/dao/registry/server/gc"
)

// GCConfig is the hub's online garbage collection (package gc): it removes the blobs
// that no manifest references and, with gc.WithDeleteUntagged, the untagged manifests,
// while pushes and pulls go on, and each project's quota usage follows what it removes.
type GCConfig struct {
	// Interval is the time between collections; none if 0 (Hub.CollectGarbage runs one
	// when asked either way).
	Interval time.Duration
	// Options are each collection's options: gc.WithGrace (one hour by default),
	// gc.WithUploadTTL, gc.WithDeleteUntagged, gc.WithClock. The hub adds its fence
	// (the one its registry server's manifest puts enter) and its gc.WithOnDelete after
	// them.
	Options []gc.Option
	// Report, if not nil, is called with each periodic collection's report and error;
	// by default they are logged with slog.
	Report func(gc.Report, error)
}

// gcStore returns the store as package gc needs it, or an error naming why not.
func (h *Hub) gcStore() (gc.Store, error) {
	st, ok := h.store.(gc.Store)
	if !ok {
		return nil, fmt.Errorf("%w: garbage collection: the store (%T) is no storage.Collector", ErrInvalidOption, h.store)
	}
	return st, nil
}

// gcOptions returns opts with the hub's fence and its accounting of deletions.
func (h *Hub) gcOptions(ctx context.Context, opts []gc.Option) []gc.Option {
	return append(append([]gc.Option(nil), opts...),
		gc.WithFence(h.fence),
		gc.WithOnDelete(func(d gc.Deletion) { h.usage.collected(ctx, d) }))
}

// CollectGarbage runs one garbage collection of the hub's store now, with opts (as
// GCConfig.Options; the hub adds its fence and its accounting), beside pushes and pulls,
// and returns what it did; each project's usage follows the deletions. It waits for a
// collection in progress (a periodic one) to end first. The store must be a
// storage.Collector (storage.FS is), or the error matches ErrInvalidOption.
func (h *Hub) CollectGarbage(ctx context.Context, opts ...gc.Option) (gc.Report, error) {
	st, err := h.gcStore()
	if err != nil {
		return gc.Report{}, err
	}
	select {
	case h.gcLock <- struct{}{}:
	case <-ctx.Done():
		return gc.Report{}, ctx.Err()
	}
	defer func() { <-h.gcLock }()
	h.usage.forgetGone()
	return gc.Collect(ctx, st, h.gcOptions(ctx, opts)...)
}

// startGC checks the GCConfig and, if it has an Interval, starts the goroutine that
// collects every Interval until Close.
func (h *Hub) startGC() error {
	g := h.cfg.GC
	if g.Interval < 0 {
		return fmt.Errorf("%w: Config.GC.Interval %v: negative", ErrInvalidOption, g.Interval)
	}
	if g.Interval == 0 {
		return nil
	}
	st, err := h.gcStore()
	if err != nil {
		return err
	}
	// gc.Run checks its options before it waits for the first tick, and returns at once
	// when its context is done: a done context makes it a check of the options.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := gc.Run(done, st, g.Interval, nil, h.gcOptions(done, g.Options)...); err != nil {
		return fmt.Errorf("%w: Config.GC: %v", ErrInvalidOption, err)
	}
	report := g.Report
	if report == nil {
		report = logGC
	}
	ctx, stop := context.WithCancel(context.Background())
	h.gcStop = stop
	h.gcDone = make(chan struct{})
	go func() {
		defer close(h.gcDone)
		t := time.NewTicker(g.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			rep, err := h.CollectGarbage(ctx, g.Options...)
			if ctx.Err() != nil {
				return
			}
			report(rep, err)
		}
	}()
	return nil
}

// stopGC stops the periodic collection, if any, and waits for it.
func (h *Hub) stopGC() {
	if h.gcStop != nil {
		h.gcStop()
		<-h.gcDone
	}
}

func logGC(rep gc.Report, err error) {
	if err != nil {
		slog.Warn("hub gc failed", "err", err)
		return
	}
	slog.Info("hub gc", "blobsDeleted", rep.BlobsDeleted, "bytesFreed", rep.BytesFreed,
		"untaggedDeleted", len(rep.UntaggedDeleted), "uploadsCancelled", rep.UploadsCancelled, "took", rep.Duration)
}

// collected uncounts what a collection deleted: for an untagged manifest, its link into
// its repository; for a blob, every link of it, in every project (a blob two projects
// hold is counted by both, and leaves both). A link is uncounted only if the store
// confirms it is gone, under the usage's lock: a push that links the content again
// meanwhile (a blob uploaded anew, the manifest put again) has either linked it before
// the check, and the link stays, or sends its event after, and is counted again.
func (u *usage) collected(ctx context.Context, d gc.Deletion) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.gone[d.Digest] = u.now()
	if d.Manifest {
		u.recheckLocked(ctx, d.Repository, "manifest", d.Digest)
		return
	}
	for _, pu := range u.projects {
		c := pu.refs[d.Digest]
		if c == nil {
			continue
		}
		for l := range c.links {
			kind, repo, _ := strings.Cut(l, " ")
			u.recheckLocked(ctx, repo, kind, d.Digest)
		}
	}
}

// goneTTL is how long a push event of content a collection deleted is checked against
// the store: longer than any push takes between storing its content and its event.
const goneTTL = reservationTTL

// forgetGone forgets the deletions older than goneTTL.
func (u *usage) forgetGone() {
	u.mu.Lock()
	defer u.mu.Unlock()
	now := u.now()
	for d, t := range u.gone {
		if now.Sub(t) > goneTTL {
			delete(u.gone, d)
		}
	}
}

// recheckLocked uncounts the link of d into repo as kind if the store has it no more.
func (u *usage) recheckLocked(ctx context.Context, repo, kind string, d digest.Digest) {
	size, err := u.linkedSize(ctx, repo, kind, d)
	if err != nil || size >= 0 {
		return // still there, or unknown: kept until a recount
	}
	removeLink(u.projects, repo, kind, d)
	u.dirty[string(linkKey(repo, kind, d))] = -1
	u.kickLocked()
}
