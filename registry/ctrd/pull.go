package ctrd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	refname "github.com/opendao/dao/registry/name"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opendao/dao/registry/internal/operr"
	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/remote"
	"golang.org/x/sync/errgroup"
)

// Labels of the leases that Pull takes.
const (
	// labelPulling marks the lease of a pull in progress; its value is the image name.
	labelPulling = "dao.registry/pulling"
	// labelKept marks the lease that keeps what a failed pull committed, for the next pull
	// of the same image name (its value) to reuse.
	labelKept = "dao.registry/kept-for"
)

// cleanupTimeout bounds the clean-up after a failed or cancelled pull.
const cleanupTimeout = 30 * time.Second

// restartWait is how long a clean-up waits for a containerd that is restarting (its calls
// fail as unavailable) before it gives up and leaves the rest to the lease's expiry.
const restartWait = 10 * time.Second

// whileRestarting calls fn until it does not fail with containerd unavailable, as it does
// while containerd restarts, for at most restartWait or until ctx ends, and returns its
// last error: a pull that failed because containerd went away still cleans up when it
// comes back.
func whileRestarting(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(restartWait)
	wait := 50 * time.Millisecond
	for {
		err := fn()
		if err == nil || !errdefs.IsUnavailable(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		}
		wait = min(2*wait, time.Second)
	}
}

// Pull fetches the image or index ref names, from the registries of rc (their hosts,
// mirrors and credentials), into the content store of the containerd behind cc, unpacks it
// into a snapshotter (WithUnpack, WithoutUnpack), and creates (or updates) the image record,
// so that containers can start from it at once. ctx carries the containerd namespace
// (namespaces.WithNamespace) unless cc has a default one. It needs no transfer service, so
// it works against containerd 1.6 and later.
//
// Of an index, the image for the platform (WithPlatform, the host's by default) is
// pulled, and the record names the index, as containerd's own pull does. Layers are fetched
// in parallel (WithConcurrency), each in one stream straight into the content store,
// and hashed once, as they arrive; only a blob of the expected digest and size is committed.
// When the daemon runs on this host and the process is root, Pull writes a layer blob into
// containerd's local content store itself: into an unnamed file of the store's filesystem,
// hashed in this process, synced and named in the store (blobs/sha256/...) only once it is
// verified, then registered in the namespace through the content API as content the store
// already has (containerd's default "shared" policy). Otherwise, or if containerd does not
// see such a blob (an "isolated" policy, a daemon on another host), blobs go through the
// content API, which hashes them as it writes them. A partial ingest left by an earlier
// pull (Dao's or containerd's) is resumed with a Range request, and a broken connection is
// resumed too. Each layer is unpacked as its bytes arrive: decompressed (gzip, zstd or none)
// and hashed on one core, extracted on another, into the layer's own snapshot, from the
// bottom layer up, while the layer above is decompressed ahead. The extraction happens
// directly in the snapshotter's directories when the daemon runs on this host and the
// process is root (a bind or overlay mount), and through containerd's diff service, after
// the fetch, otherwise. A snapshot is committed only after the layer's blob is committed and
// its diff ID matches the config's. Layers already unpacked are not unpacked again, and
// blobs the store has are not fetched again.
//
// A pull that fails or is cancelled changes no image record, so a record never points to
// missing content; a blob that does not match its descriptor fails the pull with an error
// matching oci.ErrDigestMismatch and is not stored, and a snapshot extracted from it is removed.
// What the pull committed (verified blobs, unpacked layers) is kept under a lease for a while
// (WithKeep), and its partial ingests stay (the bytes of a blob written directly are
// moved into containerd's ingest), so that the next pull of the image reuses them: a pull
// cancelled mid-layer (Ctrl-C) writes every byte it had fetched of each unfinished layer into
// its ingest before it returns, and the next pull fetches only the rest of each, with a
// Range request from the ingest's offset, its commit verifying the digest over the whole.
//
// The fetch of each blob reports its progress through the client's WithProgress. Pull is
// safe for simultaneous use: pulls of the same image share what they can, one waiting for
// the other's ingest of a blob.
func Pull(ctx context.Context, cc *client.Client, rc *remote.Client, ref string, opts ...Option) (images.Image, error) {
	o := pullDefaults()
	if err := o.apply(opts); err != nil {
		return images.Image{}, err
	}
	if cc == nil {
		return images.Image{}, fmt.Errorf("%w: nil containerd client", ErrInvalidOption)
	}
	if rc == nil {
		return images.Image{}, fmt.Errorf("%w: nil registry client", ErrInvalidOption)
	}
	r, err := refname.ParseReference(ref)
	if err != nil {
		return images.Image{}, err
	}
	name := o.name
	if name == "" {
		name = r.String()
	}
	p := &puller{c: rc, cc: cc, cs: cc.ContentStore(), repo: r, name: name, opts: o}
	img, err := p.pull(ctx)
	if err != nil {
		return images.Image{}, operr.Errorf(err, "pull %s", r)
	}
	return img, nil
}

// puller is one Pull.
type puller struct {
	c    *remote.Client
	cc   *client.Client
	cs   content.Store
	repo refname.Reference
	name string
	opts options

	// base is the caller's context, without the pull's lease.
	base context.Context
	// lease is the lease the pull holds, "" if the caller's context brought one.
	lease     string
	taps      []*tap
	tapMemory int64
	// local is containerd's content store, written directly if not nil (copyDirect);
	// localOff turns that off for the rest of the pull.
	local    *localStore
	localOff atomic.Bool
	// cleanup runs clean-ups that need not delay the pull; layers waits for them.
	cleanup sync.WaitGroup
}

// wctx returns a context for content writers that carries the caller's context, without
// the pull's lease: a partial ingest is then not removed with the lease of a failed pull but
// stays (containerd keeps it a day) for the next pull to resume. The blobs themselves are
// added to the lease before they are written. The context outlives ctx by up to
// cleanupTimeout, so that a fetch interrupted by ctx still writes what it read into its
// ingest, and the next pull resumes from the last byte fetched rather than from the last
// write that happened to be done; it ends when the returned function is called.
func (p *puller) wctx(ctx context.Context) (context.Context, context.CancelFunc) {
	base := p.base
	if p.lease == "" {
		base = ctx
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(base))
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(cleanupTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-wctx.Done():
		}
	})
	return wctx, func() {
		stop()
		cancel()
	}
}

func (p *puller) pull(ctx context.Context) (images.Image, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p.base = ctx

	root, err := p.c.Manifest(ctx, p.repo.String())
	if err != nil {
		return images.Image{}, err
	}
	docs := []*oci.Manifest{root} // written from the last
	m := root
	if root.Index != nil {
		d, err := oci.SelectPlatform(*root.Index, p.opts.platform)
		if err != nil {
			return images.Image{}, err
		}
		if m, err = p.c.FetchManifest(ctx, p.repo.Name(), d); err != nil {
			return images.Image{}, err
		}
		docs = append(docs, m)
	}
	if m.Image == nil {
		return images.Image{}, fmt.Errorf("%w: %s is not an image manifest", oci.ErrInvalidImage, m.Descriptor.Digest)
	}
	im := m.Image
	if !images.IsConfigType(im.Config.MediaType) {
		return images.Image{}, fmt.Errorf("%w: manifest %s has a config of media type %q, not an image config (%s or %s): an artifact, which containerd cannot run (PullLayout, Copy, FetchManifest and FetchBlob read artifacts)",
			oci.ErrNotImage, m.Descriptor.Digest, im.Config.MediaType, ocispec.MediaTypeImageConfig, images.MediaTypeDockerSchema2Config)
	}

	lctx, err := p.takeLease(ctx)
	if err != nil {
		return images.Image{}, err
	}
	ok := false
	defer func() { p.dropLease(ok) }()
	defer p.closeTaps()

	blobs := append([]ocispec.Descriptor{im.Config}, im.Layers...)
	for _, d := range docs {
		blobs = append(blobs, d.Descriptor)
	}
	for _, d := range blobs {
		if err := p.leaseResource(lctx, leases.Resource{ID: d.Digest.String(), Type: "content"}); err != nil {
			return images.Image{}, err
		}
	}

	config, err := p.config(lctx, im.Config)
	if err != nil {
		return images.Image{}, err
	}
	var u *unpacker
	if p.opts.unpack {
		// The platform of an index's image was checked when it was chosen.
		if root.Index == nil && config.OS != "" {
			if err := checkPlatform(config, p.opts.platform); err != nil {
				return images.Image{}, err
			}
		}
		if u, err = p.newUnpacker(lctx, config, im); err != nil {
			return images.Image{}, err
		}
	}
	switch p.opts.content {
	case contentAuto:
		p.local = findLocalStore(ctx, p.cc)
	case contentAPI:
	default:
		p.local = openLocalStore(p.opts.content)
	}
	if err := p.layers(lctx, im.Layers, u); err != nil {
		return images.Image{}, err
	}
	if u != nil {
		if err := u.labelConfig(lctx, im.Config); err != nil {
			return images.Image{}, err
		}
	}
	for _, d := range slices.Backward(docs) {
		if err := importBlob(lctx, p.cs, oci.BytesOf(d.Descriptor, d.Raw)); err != nil {
			return images.Image{}, err
		}
	}

	rec := images.Image{Name: p.name, Target: root.Descriptor, Labels: p.opts.labels}
	store := p.cc.ImageService()
	img, err := store.Create(lctx, rec)
	if errdefs.IsAlreadyExists(err) {
		img, err = store.Update(lctx, rec)
	}
	if err != nil {
		return images.Image{}, fmt.Errorf("image record %s: %w", p.name, err)
	}
	ok = true
	return img, nil
}

// config returns the image config's bytes, from the store if it has them, else from the
// registry, and stores them.
func (p *puller) config(ctx context.Context, desc ocispec.Descriptor) (*ocispec.Image, error) {
	if desc.Size > oci.MaxDocumentSize {
		return nil, fmt.Errorf("%w: %w: config %s: %d bytes is more than the %d allowed", oci.ErrInvalidImage, oci.ErrTooLarge, desc.Digest, desc.Size, oci.MaxDocumentSize)
	}
	data, err := content.ReadBlob(ctx, p.cs, desc)
	if err != nil || desc.Digest.Algorithm().FromBytes(data) != desc.Digest {
		rb := &registryBlob{c: p.c, ctx: ctx, repo: p.repo.Name(), desc: desc}
		if data, err = oci.ReadAll(rb, oci.MaxDocumentSize); err != nil {
			return nil, blobError("fetch", desc, err)
		}
		if err := importBlob(ctx, p.cs, oci.BytesOf(desc, data)); err != nil {
			return nil, err
		}
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("%w: config %s: %v", oci.ErrInvalidImage, desc.Digest, err)
	}
	return &cfg, nil
}

// layers fetches every layer blob into the store, up to the concurrency at once and started
// in order, while u (if not nil) unpacks them from the bottom up.
func (p *puller) layers(ctx context.Context, layers []ocispec.Descriptor, u *unpacker) error {
	g, gctx := errgroup.WithContext(ctx)
	ingests := make(map[digest.Digest]*ingest)
	var order []*ingest
	for i, d := range layers {
		in := ingests[d.Digest]
		if in == nil {
			var t *tap
			if refs := u.readers(layers, d.Digest); refs > 0 {
				t = p.newTap(d.Size, refs+1)
			}
			in = newIngest(d, t)
			ingests[d.Digest] = in
			order = append(order, in)
		}
		if u != nil {
			u.ingests[i] = in
		}
	}
	if u != nil {
		g.Go(func() error { return u.run(gctx) })
	}
	g.Go(func() error {
		sem := make(chan struct{}, p.opts.concurrency)
		for _, in := range order {
			select {
			case sem <- struct{}{}:
			case <-gctx.Done():
				return gctx.Err()
			}
			g.Go(func() error {
				defer func() { <-sem }()
				return p.runIngest(gctx, in)
			})
		}
		return nil
	})
	err := g.Wait()
	p.cleanup.Wait()
	return err
}

// Taps of up to tapMemoryMax bytes are held in memory, up to tapMemory for one pull; the
// others in unlinked files of the client's spool directory.
const (
	tapMemoryMax = 32 << 20
	tapMemory    = 256 << 20
)

// newTap returns a tap for a blob of size bytes with refs references.
func (p *puller) newTap(size int64, refs int) *tap {
	inMemory := size <= tapMemoryMax && p.tapMemory+size <= tapMemory
	t := newTap(p.c.SpoolDir(), size, refs, inMemory)
	if inMemory {
		p.tapMemory += size
	}
	p.taps = append(p.taps, t)
	return t
}

func (p *puller) closeTaps() {
	for _, t := range p.taps {
		t.close()
	}
}

// takeLease returns ctx under a new lease of the pull, unless ctx brings one.
func (p *puller) takeLease(ctx context.Context) (context.Context, error) {
	if _, ok := leases.FromContext(ctx); ok {
		return ctx, nil
	}
	expire := p.opts.keep
	if expire == 0 {
		expire = 24 * time.Hour
	}
	l, err := p.cc.LeasesService().Create(ctx, leases.WithRandomID(), leases.WithExpiration(expire),
		leases.WithLabel(labelPulling, p.name))
	if err != nil {
		return nil, fmt.Errorf("create lease: %w", err)
	}
	p.lease = l.ID
	return leases.WithLease(ctx, l.ID), nil
}

// leaseResource adds r to the pull's lease, before r exists: a blob or snapshot that is
// already there then stays until the image record refers to it.
func (p *puller) leaseResource(ctx context.Context, r leases.Resource) error {
	id, ok := leases.FromContext(ctx)
	if !ok || id == "" {
		return nil
	}
	if err := p.cc.LeasesService().AddResource(ctx, leases.Lease{ID: id}, r); err != nil {
		return fmt.Errorf("add %s %s to lease: %w", r.Type, r.ID, err)
	}
	return nil
}

// dropLease ends the pull's lease. After a success it also ends the leases that kept what
// failed pulls of the same name committed; after a failure it moves what the pull committed
// to such a lease, kept as WithKeep says. Errors are ignored: a lease left behind expires
// by itself, and containerd's collector then takes what only it kept.
func (p *puller) dropLease(ok bool) {
	if p.lease == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(p.base), cleanupTimeout)
	defer cancel()
	ls := p.cc.LeasesService()
	if ok {
		if all, err := ls.List(ctx); err == nil {
			for _, l := range all {
				if l.Labels[labelKept] == p.name {
					_ = ls.Delete(ctx, l)
				}
			}
		}
	} else if p.opts.keep > 0 {
		_ = whileRestarting(ctx, func() error { return p.keep(ctx, leases.Lease{ID: p.lease}) })
	}
	_ = whileRestarting(ctx, func() error { return ls.Delete(ctx, leases.Lease{ID: p.lease}) })
}

// keep moves the resources of lease to a new lease that expires after WithKeep.
func (p *puller) keep(ctx context.Context, lease leases.Lease) error {
	ls := p.cc.LeasesService()
	res, err := ls.ListResources(ctx, lease)
	if err != nil || len(res) == 0 {
		return err
	}
	kept, err := ls.Create(ctx, leases.WithRandomID(), leases.WithExpiration(p.opts.keep), leases.WithLabel(labelKept, p.name))
	if err != nil {
		return err
	}
	for _, r := range res {
		if strings.HasPrefix(r.Type, "snapshots/") && strings.HasPrefix(r.ID, snapshots.UnpackKeyPrefix) {
			continue // an extraction snapshot that could not be removed: not worth keeping
		}
		if err := ls.AddResource(ctx, kept, r); err != nil {
			return err
		}
	}
	return nil
}

// checkPlatform fails if the image config is not for the platform.
func checkPlatform(cfg *ocispec.Image, want ocispec.Platform) error {
	got := platforms.Normalize(cfg.Platform)
	if !platforms.Only(want).Match(got) {
		return fmt.Errorf("%w: the image is for %s, not %s", oci.ErrNoPlatform, platforms.Format(got), platforms.Format(want))
	}
	return nil
}

// chainIDs returns the chain IDs of diffIDs.
func chainIDs(diffIDs []digest.Digest) []digest.Digest {
	return identity.ChainIDs(slices.Clone(diffIDs))
}

// registryBlob is a blob of a registry as an oci.Blob. It lives only during the call that
// made it, whose context it carries.
type registryBlob struct {
	c    *remote.Client
	ctx  context.Context
	repo string
	desc ocispec.Descriptor
}

func (b *registryBlob) Descriptor() ocispec.Descriptor { return b.desc }

func (b *registryBlob) Open() (io.ReadCloser, error) { return b.c.FetchBlob(b.ctx, b.repo, b.desc) }
