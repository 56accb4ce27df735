package hub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/server"
	"github.com/opendao/dao/registry/server/storage"
)

// QuotaError is the refusal of a push that would take a project past its quota. It
// matches ErrQuotaExceeded; the registry answers it 403 DENIED with its message.
type QuotaError struct {
	// Project is the project pushed to.
	Project string
	// Quota is the project's quota in bytes.
	Quota int64
	// Used is what the project holds, with what pushes in progress were admitted for.
	Used int64
	// Adds is the size of the blob or manifest refused.
	Adds int64
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("project %s: quota of %s exceeded: %s used, this push adds %s",
		e.Project, FormatSize(e.Quota), FormatSize(e.Used), FormatSize(e.Adds))
}

// Unwrap makes errors.Is(err, ErrQuotaExceeded) true.
func (e *QuotaError) Unwrap() error { return ErrQuotaExceeded }

// FormatSize writes a size in bytes with a binary unit and at most one decimal: "512 B",
// "9.5 MiB", "10 GiB".
func FormatSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + units[i]
}

// ParseSize reads a size: a number of bytes, or a number with a unit of KiB, MiB, GiB,
// TiB (or KB, MB, GB, TB, which are read as the binary ones too, as Harbor does), with or
// without a space: "10GiB", "512 MiB", "1048576".
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"B", 1}} {
		if rest, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || v*float64(mult) > 1<<62 {
		return 0, fmt.Errorf("%w: size %q", ErrInvalidOption, s)
	}
	return int64(v * float64(mult)), nil
}

// reservationTTL is how long an admitted push counts against its project's quota before
// its content is linked (when its event arrives); a push whose verification fails after
// admission is forgotten after it.
const reservationTTL = 15 * time.Minute

// usage counts what each project holds: the distinct blobs and manifests linked into
// its repositories, each counted once. It learns of links from the server's events and
// keeps them in the database, so that blobs linked by no manifest are still counted
// after a restart; at start it checks each against the store, and adds what the
// manifests in the store refer to.
type usage struct {
	db    *bolt.DB
	store storage.Store
	now   func() time.Time

	mu       sync.Mutex
	projects map[string]*projectUsage
	pending  map[string]map[digest.Digest]reservation
	dirty    map[string]int64 // links changed and not yet written: key, size or -1 for gone
	// gone are the digests collections deleted (or unlinked) lately, by when: a push
	// event of one of them is checked against the store before it is counted, since it
	// may come late, from a push whose content a collection deleted after the push
	// stored it and before its event arrived.
	gone map[digest.Digest]time.Time

	kick          chan struct{}
	stop, stopped chan struct{}
}

type projectUsage struct {
	used int64
	refs map[digest.Digest]*content
}

// content is one blob or manifest of a project and the links that hold it there.
type content struct {
	size  int64
	links map[string]struct{} // kind + " " + repository
}

type reservation struct {
	size    int64
	expires time.Time
}

func newUsage(db *bolt.DB, store storage.Store, now func() time.Time) *usage {
	return &usage{db: db, store: store, now: now, projects: map[string]*projectUsage{}, pending: map[string]map[digest.Digest]reservation{},
		dirty: map[string]int64{}, gone: map[digest.Digest]time.Time{}, kick: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
}

func linkKey(repo, kind string, d digest.Digest) []byte {
	return []byte(repo + "\x00" + kind + "\x00" + d.String())
}

// add counts a link in projects, and reports whether it is new.
func addLink(projects map[string]*projectUsage, repo, kind string, d digest.Digest, size int64) bool {
	proj := projectOf(repo)
	pu := projects[proj]
	if pu == nil {
		pu = &projectUsage{refs: map[digest.Digest]*content{}}
		projects[proj] = pu
	}
	c := pu.refs[d]
	if c == nil {
		c = &content{size: size, links: map[string]struct{}{}}
		pu.refs[d] = c
		pu.used += size
	}
	l := kind + " " + repo
	if _, ok := c.links[l]; ok {
		return false
	}
	c.links[l] = struct{}{}
	return true
}

// removeLink uncounts a link, and the content with its last link.
func removeLink(projects map[string]*projectUsage, repo, kind string, d digest.Digest) {
	pu := projects[projectOf(repo)]
	if pu == nil {
		return
	}
	c := pu.refs[d]
	if c == nil {
		return
	}
	delete(c.links, kind+" "+repo)
	if len(c.links) == 0 {
		delete(pu.refs, d)
		pu.used -= c.size
	}
}

func (u *usage) used(project string) int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	if pu := u.projects[project]; pu != nil {
		return pu.used
	}
	return 0
}

// holds reports whether project holds the content of digest d.
func (u *usage) holds(project, d string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	pu := u.projects[project]
	return pu != nil && pu.refs[digest.Digest(d)] != nil
}

// committed returns what project holds and what pushes admitted for it reserve.
func (u *usage) committed(project string) int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	var n int64
	if pu := u.projects[project]; pu != nil {
		n = pu.used
	}
	now := u.now()
	for _, r := range u.pending[project] {
		if !now.After(r.expires) {
			n += r.size
		}
	}
	return n
}

// linked records a link the server made.
func (u *usage) linked(repo, kind string, d digest.Digest, size int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	count := true
	if _, ok := u.gone[d]; ok {
		n, err := u.linkedSize(context.Background(), repo, kind, d)
		count = err != nil || n >= 0 // not if collected since it was pushed
	}
	if count && addLink(u.projects, repo, kind, d, size) {
		u.dirty[string(linkKey(repo, kind, d))] = size
		u.kickLocked()
	}
	if m := u.pending[projectOf(repo)]; m != nil {
		delete(m, d)
	}
}

// unlinked records a link the server removed.
func (u *usage) unlinked(repo, kind string, d digest.Digest) {
	u.mu.Lock()
	defer u.mu.Unlock()
	removeLink(u.projects, repo, kind, d)
	u.dirty[string(linkKey(repo, kind, d))] = -1
	u.kickLocked()
}

func (u *usage) kickLocked() {
	select {
	case u.kick <- struct{}{}:
	default:
	}
}

// writeLinks writes the links changed since it last ran to the database, in one
// transaction, off the requests' path: a push does not wait for an fsync of hub.db. A
// crash may lose the last changes; recount at start restores the links that the store's
// manifests refer to, so only blobs that no manifest refers to may go uncounted.
func (u *usage) writeLinks() {
	defer close(u.stopped)
	for {
		select {
		case <-u.kick:
		case <-u.stop:
			u.flush()
			return
		}
		u.flush()
	}
}

func (u *usage) flush() {
	u.mu.Lock()
	dirty := u.dirty
	u.dirty = map[string]int64{}
	u.mu.Unlock()
	if len(dirty) == 0 {
		return
	}
	_ = u.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketLinks)
		if err != nil {
			return err
		}
		for k, size := range dirty {
			if size < 0 {
				err = b.Delete([]byte(k))
			} else {
				err = b.Put([]byte(k), []byte(strconv.FormatInt(size, 10)))
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// start starts the writer of links; close stops it once it has written what is left.
func (u *usage) start() { go u.writeLinks() }

func (u *usage) close() {
	close(u.stop)
	<-u.stopped
}

// admit reserves size bytes of project's quota for d, unless the project holds d already
// or a push of it was admitted: then it adds nothing.
func (u *usage) admit(project string, quota int64, d digest.Digest, size int64) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	pu := u.projects[project]
	if pu != nil && pu.refs[d] != nil {
		return nil
	}
	now := u.now()
	res := u.pending[project]
	if res == nil {
		res = map[digest.Digest]reservation{}
		u.pending[project] = res
	}
	var reserved int64
	for k, r := range res {
		if now.After(r.expires) {
			delete(res, k)
			continue
		}
		reserved += r.size
	}
	if _, ok := res[d]; ok {
		return nil
	}
	var used int64
	if pu != nil {
		used = pu.used
	}
	if quota > 0 && used+reserved+size > quota {
		return &QuotaError{Project: project, Quota: quota, Used: used + reserved, Adds: size}
	}
	res[d] = reservation{size: size, expires: now.Add(reservationTTL)}
	return nil
}

// recount counts every project's usage again: the links the database remembers that the
// store still has, and every manifest in the store with the blobs it refers to that are
// linked.
func (u *usage) recount(ctx context.Context) error {
	projects := map[string]*projectUsage{}
	type link struct {
		repo, kind string
		d          digest.Digest
	}
	var known, stale []link
	err := u.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLinks)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			parts := bytes.SplitN(k, []byte{0}, 3)
			if len(parts) == 3 {
				known = append(known, link{string(parts[0]), string(parts[1]), digest.Digest(parts[2])})
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("hub: read usage: %w", err)
	}
	for _, l := range known {
		size, err := u.linkedSize(ctx, l.repo, l.kind, l.d)
		if err != nil {
			return err
		}
		if size < 0 {
			stale = append(stale, l)
			continue
		}
		addLink(projects, l.repo, l.kind, l.d, size)
	}
	repos, err := u.store.Repositories(ctx)
	if err != nil {
		return fmt.Errorf("hub: count usage: %w", err)
	}
	var found []link
	var sizes []int64
	add := func(repo, kind string, d digest.Digest, size int64) {
		if addLink(projects, repo, kind, d, size) {
			found = append(found, link{repo, kind, d})
			sizes = append(sizes, size)
		}
	}
	for _, repo := range repos {
		ds, err := u.store.Manifests(ctx, repo)
		if err != nil && !errors.Is(err, storage.ErrNameUnknown) {
			return fmt.Errorf("hub: count usage of %s: %w", repo, err)
		}
		for _, d := range ds {
			m, err := u.store.Manifest(ctx, repo, d)
			if err != nil {
				continue // deleted meanwhile
			}
			add(repo, "manifest", d, m.Descriptor.Size)
			dm, err := oci.DecodeManifest(m.Descriptor.MediaType, m.Raw)
			if err != nil || dm.Image == nil {
				continue
			}
			for _, b := range append([]ocispec.Descriptor{dm.Image.Config}, dm.Image.Layers...) {
				size, err := u.linkedSize(ctx, repo, "blob", b.Digest)
				if err != nil {
					return err
				}
				if size >= 0 {
					add(repo, "blob", b.Digest, size)
				}
			}
		}
	}
	err = u.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketLinks)
		if err != nil {
			return err
		}
		for _, l := range stale {
			if err := b.Delete(linkKey(l.repo, l.kind, l.d)); err != nil {
				return err
			}
		}
		for i, l := range found {
			if err := b.Put(linkKey(l.repo, l.kind, l.d), []byte(strconv.FormatInt(sizes[i], 10))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("hub: save usage: %w", err)
	}
	u.mu.Lock()
	u.projects = projects
	u.mu.Unlock()
	return nil
}

// linkedSize returns the size of d if it is linked into repo as kind, -1 if not.
func (u *usage) linkedSize(ctx context.Context, repo, kind string, d digest.Digest) (int64, error) {
	if d.Validate() != nil {
		return -1, nil
	}
	if kind == "manifest" {
		m, err := u.store.Manifest(ctx, repo, d)
		if err != nil {
			if errors.Is(err, storage.ErrManifestUnknown) || errors.Is(err, storage.ErrNameUnknown) {
				return -1, nil
			}
			return 0, fmt.Errorf("hub: count usage: %w", err)
		}
		return m.Descriptor.Size, nil
	}
	ok, err := u.store.BlobLinked(ctx, repo, d)
	if err != nil {
		return 0, fmt.Errorf("hub: count usage: %w", err)
	}
	if !ok {
		return -1, nil
	}
	size, err := u.store.StatBlob(ctx, d)
	if err != nil {
		if errors.Is(err, storage.ErrBlobUnknown) {
			return -1, nil
		}
		return 0, fmt.Errorf("hub: count usage: %w", err)
	}
	return size, nil
}

// admit is the hub's server.Quota.
func (h *Hub) admit(r *http.Request, u server.Usage) error {
	proj := projectOf(u.Repository)
	p, ok := h.state().Projects[proj]
	if !ok {
		return denied("project %s does not exist", proj)
	}
	return h.usage.admit(proj, p.Quota, u.Digest, u.Size)
}
