package gc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/errclass"
	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/server/storage"
)

// Store is what a collection needs: a registry's store that can list and delete its blobs
// and upload sessions. storage.FS is one.
type Store interface {
	storage.Store
	storage.Collector
}

// Errors of the package.
var (
	// ErrInvalidOption means an option was given a value it does not accept; the error
	// names it. Class dao.ErrInvalid.
	ErrInvalidOption = errclass.New(dao.ErrInvalid, "registry gc: invalid option")
)

// Report says what a collection did.
type Report struct {
	// Started is when the collection started; Before is the reference time before which
	// unreferenced content was deleted (Started minus the grace period, or earlier).
	Started, Before time.Time
	// Duration is how long it took.
	Duration time.Duration
	// Repositories and Manifests are how many were walked; Marked is the number of blobs
	// (manifests included) found referenced.
	Repositories, Manifests, Marked int
	// UntaggedDeleted lists the manifests unlinked as untagged, as "repo@digest".
	UntaggedDeleted []string
	// BlobsDeleted and BytesFreed count the blobs deleted; BlobsKept those that were not
	// referenced but younger than the grace period or referenced again during the sweep.
	BlobsDeleted, BlobsKept int
	BytesFreed              int64
	// UploadsCancelled is the number of upload sessions cancelled as expired.
	UploadsCancelled int
}

type options struct {
	grace          time.Duration
	uploadTTL      time.Duration
	deleteUntagged bool
	dryRun         bool
	fence          *Fence
	onDelete       func(Deletion)
	now            func() time.Time
}

// Option configures Collect and Run. Each rejects a value it does not take with an error
// matching ErrInvalidOption that names it.
type Option func(*options) error

// WithGrace sets how long unreferenced content is kept after it was last referenced: it
// must be longer than a client takes between uploading a blob and putting the manifest
// that references it. The default is one hour; d must be positive.
func WithGrace(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("%w: WithGrace: %v: must be positive", ErrInvalidOption, d)
		}
		o.grace = d
		return nil
	}
}

// WithUploadTTL sets how long an upload session may stay open before a collection
// cancels it. The default is 24 hours; d must be positive.
func WithUploadTTL(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("%w: WithUploadTTL: %v: must be positive", ErrInvalidOption, d)
		}
		o.uploadTTL = d
		return nil
	}
}

// WithDeleteUntagged sets whether a collection unlinks the manifests no tag names (and
// no kept index lists, and that are not referrers of a kept manifest) once they are older
// than the grace period. The default is false: a manifest is kept until it is deleted.
func WithDeleteUntagged(on bool) Option {
	return func(o *options) error {
		o.deleteUntagged = on
		return nil
	}
}

// WithDryRun makes a collection report what it would delete, deleting nothing. The
// default is false.
func WithDryRun(on bool) Option {
	return func(o *options) error {
		o.dryRun = on
		return nil
	}
}

// WithFence makes the collection coordinate with the manifest puts that enter f (a
// server given the same Fence); see the package documentation. The default is none: then
// the grace period must also be longer than any manifest put takes.
func WithFence(f *Fence) Option {
	return func(o *options) error {
		if f == nil {
			return fmt.Errorf("%w: WithFence: nil fence", ErrInvalidOption)
		}
		o.fence = f
		return nil
	}
}

// Deletion is one thing a collection deleted: a manifest unlinked from Repository as
// untagged (Manifest true), or a blob deleted from the store (Repository "": a blob is
// stored once, whatever repositories link it; their links dangle from then on).
type Deletion struct {
	// Repository is the repository a manifest was unlinked from; "" for a blob.
	Repository string
	// Digest is the manifest's or the blob's digest.
	Digest digest.Digest
	// Manifest reports whether a manifest was unlinked rather than a blob deleted.
	Manifest bool
	// Size is the blob's size; 0 for a manifest.
	Size int64
}

// WithOnDelete makes the collection call fn after each deletion, on its own goroutine
// and before it goes on, so that a caller that keeps accounts of the store (a quota's
// usage) follows them; for an untagged manifest it is called while the repository's
// manifest puts are held back (see WithFence). fn must be quick and must not start a
// collection. It is not called in a dry run. The default calls nothing.
func WithOnDelete(fn func(Deletion)) Option {
	return func(o *options) error {
		if fn == nil {
			return fmt.Errorf("%w: WithOnDelete: nil function", ErrInvalidOption)
		}
		o.onDelete = fn
		return nil
	}
}

// WithClock makes the collection read the time from now; it must be the store's clock.
// The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return fmt.Errorf("%w: WithClock: nil clock", ErrInvalidOption)
		}
		o.now = now
		return nil
	}
}

func newOptions(opts []Option) (options, error) {
	o := options{grace: time.Hour, uploadTTL: 24 * time.Hour, now: time.Now}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// fenceMargin is subtracted from the start of the oldest put in progress, for file systems
// whose times are coarser than the clock's.
const fenceMargin = 2 * time.Second

// Collect runs one collection over st, beside whatever else uses it; see the package
// documentation. It returns what it did, also when it fails midway (a canceled ctx).
func Collect(ctx context.Context, st Store, opts ...Option) (Report, error) {
	o, err := newOptions(opts)
	if err != nil {
		return Report{}, err
	}
	c := &collection{st: st, o: o}
	err = c.run(ctx)
	c.rep.Duration = o.now().Sub(c.rep.Started)
	return c.rep, err
}

type collection struct {
	st  Store
	o   options
	rep Report
}

func (c *collection) run(ctx context.Context) error {
	c.rep.Started = c.o.now()
	before := c.rep.Started.Add(-c.o.grace)
	if c.o.fence != nil {
		if t, ok := c.o.fence.Oldest(); ok && t.Add(-fenceMargin).Before(before) {
			before = t.Add(-fenceMargin)
		}
	}
	c.rep.Before = before

	repos, err := c.st.Repositories(ctx)
	if err != nil {
		return fmt.Errorf("registry gc: repositories: %w", err)
	}
	c.rep.Repositories = len(repos)
	if c.o.deleteUntagged {
		for _, repo := range repos {
			if err := c.untagged(ctx, repo, before); err != nil {
				return err
			}
		}
	}

	marked := map[digest.Digest]bool{}
	for _, repo := range repos {
		if err := c.mark(ctx, repo, marked); err != nil {
			return err
		}
	}
	c.rep.Marked = len(marked)

	type candidate struct {
		dgst digest.Digest
		size int64
	}
	var sweep []candidate
	err = c.st.WalkBlobs(ctx, func(d digest.Digest, size int64, referenced time.Time) error {
		if marked[d] {
			return nil
		}
		if !referenced.Before(before) {
			c.rep.BlobsKept++
			return nil
		}
		sweep = append(sweep, candidate{d, size})
		return nil
	})
	if err != nil {
		return fmt.Errorf("registry gc: walking blobs: %w", err)
	}
	for _, b := range sweep {
		if c.o.dryRun {
			c.rep.BlobsDeleted++
			c.rep.BytesFreed += b.size
			continue
		}
		ok, err := c.st.DeleteBlob(ctx, b.dgst, before)
		if err != nil {
			return fmt.Errorf("registry gc: deleting %s: %w", b.dgst, err)
		}
		if ok {
			c.rep.BlobsDeleted++
			c.rep.BytesFreed += b.size
			if c.o.onDelete != nil {
				c.o.onDelete(Deletion{Digest: b.dgst, Size: b.size})
			}
		} else {
			c.rep.BlobsKept++
		}
	}

	expired := c.rep.Started.Add(-c.o.uploadTTL)
	type session struct{ repo, id string }
	var stale []session
	err = c.st.WalkUploads(ctx, func(repo, id string, _ int64, started time.Time) error {
		if started.Before(expired) {
			stale = append(stale, session{repo, id})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("registry gc: walking uploads: %w", err)
	}
	for _, s := range stale {
		if c.o.dryRun {
			c.rep.UploadsCancelled++
			continue
		}
		up, err := c.st.Upload(ctx, s.repo, s.id)
		if errors.Is(err, storage.ErrUploadUnknown) {
			continue // ended meanwhile
		}
		if err != nil {
			return fmt.Errorf("registry gc: upload %s: %w", s.id, err)
		}
		if err := up.Cancel(ctx); err != nil && !errors.Is(err, storage.ErrUploadUnknown) {
			return fmt.Errorf("registry gc: cancelling upload %s: %w", s.id, err)
		}
		c.rep.UploadsCancelled++
	}
	return nil
}

// mark adds to marked every manifest linked into repo and what it references.
func (c *collection) mark(ctx context.Context, repo string, marked map[digest.Digest]bool) error {
	ms, err := c.st.Manifests(ctx, repo)
	if err != nil {
		return fmt.Errorf("registry gc: manifests of %s: %w", repo, err)
	}
	c.rep.Manifests += len(ms)
	for _, d := range ms {
		// Marked before it is read: a manifest unlinked meanwhile is kept this time.
		marked[d] = true
		refs, _, err := c.references(ctx, repo, d)
		if err != nil {
			return err
		}
		for _, r := range refs {
			marked[r] = true
		}
	}
	return nil
}

// references returns what manifest d of repo references (its config and layers, or its
// manifests) and its subject; nothing for a manifest unlinked meanwhile.
func (c *collection) references(ctx context.Context, repo string, d digest.Digest) ([]digest.Digest, digest.Digest, error) {
	m, err := c.st.Manifest(ctx, repo, d)
	if errors.Is(err, storage.ErrManifestUnknown) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("registry gc: manifest %s@%s: %w", repo, d, err)
	}
	dm, err := oci.DecodeManifest(m.Descriptor.MediaType, m.Raw)
	if err != nil {
		// Stored, so it was checked once; keep what cannot be read rather than guess.
		return nil, m.Subject, nil
	}
	var refs []digest.Digest
	switch {
	case dm.Image != nil:
		refs = append(refs, dm.Image.Config.Digest)
		for _, l := range dm.Image.Layers {
			refs = append(refs, l.Digest)
		}
	case dm.Index != nil:
		for _, child := range dm.Index.Manifests {
			refs = append(refs, child.Digest)
		}
	}
	return refs, m.Subject, nil
}

// untagged unlinks repo's manifests that are untagged, unreferenced and old, holding the
// repository's manifest puts back meanwhile.
func (c *collection) untagged(ctx context.Context, repo string, before time.Time) error {
	if c.o.fence != nil {
		release := c.o.fence.exclude(repo)
		defer release()
	}
	ms, err := c.st.Manifests(ctx, repo)
	if err != nil {
		return fmt.Errorf("registry gc: manifests of %s: %w", repo, err)
	}
	if len(ms) == 0 {
		return nil
	}
	keep := map[digest.Digest]bool{}
	tags, err := c.st.Tags(ctx, repo)
	if err != nil && !errors.Is(err, storage.ErrNameUnknown) {
		return fmt.Errorf("registry gc: tags of %s: %w", repo, err)
	}
	for _, t := range tags {
		d, err := c.st.ResolveTag(ctx, repo, t)
		if err == nil {
			keep[d] = true
		} else if !errors.Is(err, storage.ErrManifestUnknown) {
			return fmt.Errorf("registry gc: tag %s:%s: %w", repo, t, err)
		}
	}
	children := map[digest.Digest][]digest.Digest{}
	subjects := map[digest.Digest]digest.Digest{}
	for _, d := range ms {
		refs, subj, err := c.references(ctx, repo, d)
		if err != nil {
			return err
		}
		children[d] = refs
		if subj != "" {
			subjects[d] = subj
		}
		t, err := c.st.BlobReferenced(ctx, d)
		if err != nil || !t.Before(before) {
			keep[d] = true // recent, or its content is missing: not this collection's to judge
		}
	}
	// Keep what a kept index lists and the referrers of kept manifests, to a fixed point.
	for changed := true; changed; {
		changed = false
		for _, d := range ms {
			if keep[d] {
				for _, ch := range children[d] {
					if _, linked := children[ch]; linked && !keep[ch] {
						keep[ch], changed = true, true
					}
				}
			} else if s, ok := subjects[d]; ok && keep[s] {
				keep[d], changed = true, true
			}
		}
	}
	for _, d := range ms {
		if keep[d] {
			continue
		}
		if !c.o.dryRun {
			if err := c.st.DeleteManifest(ctx, repo, d); err != nil && !errors.Is(err, storage.ErrManifestUnknown) {
				return fmt.Errorf("registry gc: deleting %s@%s: %w", repo, d, err)
			}
			if c.o.onDelete != nil {
				c.o.onDelete(Deletion{Repository: repo, Digest: d, Manifest: true})
			}
		}
		c.rep.UntaggedDeleted = append(c.rep.UntaggedDeleted, repo+"@"+d.String())
	}
	return nil
}
