package storage

import (
	"context"
	_ "crypto/sha512" // digest.SHA512 needs it registered
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/internal/atomicfile"
)

// FS is a Store on a local file system, under one root directory; see the package
// documentation for its layout and guarantees. It is safe for simultaneous use by the
// goroutines of one process; two processes must not share a root.
type FS struct {
	root string
	now  func() time.Time

	mu      sync.Mutex
	uploads map[string]*sync.Mutex // one per upload session in use, serialising its calls

	cache *cache

	// blobLocks serialise, per blob (by its digest's first byte), what refreshes a blob's
	// reference time or stores it with DeleteBlob's compare-and-delete.
	blobLocks [256]sync.Mutex

	// repos is the sorted list of repositories once Repositories walked them (nil
	// before), kept up to date by the writes that create a repository: repositories are
	// never removed.
	reposMu sync.Mutex
	repos   []string
	walking int             // walks in progress before repos is kept
	noted   map[string]bool // repositories written during them
}

var (
	_ Store     = (*FS)(nil)
	_ Collector = (*FS)(nil)
)

// FSOption configures OpenFS.
type FSOption func(*FS) error

// WithClock makes the store read the time from now: the start of uploads and the
// reference times of blobs. The default is time.Now.
func WithClock(now func() time.Time) FSOption {
	return func(f *FS) error {
		if now == nil {
			return fmt.Errorf("%w: WithClock: nil clock", ErrInvalidOption)
		}
		f.now = now
		return nil
	}
}

// OpenFS opens, creating it if needed, the store under root. Upload sessions that an
// earlier process left are kept, to be resumed.
func OpenFS(root string, opts ...FSOption) (*FS, error) {
	if root == "" {
		return nil, fmt.Errorf("%w: OpenFS: empty root", ErrInvalidOption)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("registry storage: root %q: %w", root, err)
	}
	f := &FS{root: abs, now: time.Now, uploads: map[string]*sync.Mutex{}, cache: newCache()}
	for _, o := range opts {
		if err := o(f); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{"blobs", "uploads", "repos"} {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o755); err != nil {
			return nil, fmt.Errorf("registry storage: %w", err)
		}
	}
	return f, nil
}

// Root returns the directory the store is under.
func (f *FS) Root() string { return f.root }

// checkDigest refuses a digest that could not name a file of the store.
func checkDigest(dgst digest.Digest) error {
	if err := dgst.Validate(); err != nil {
		return fmt.Errorf("%w: %q: %v", ErrDigestInvalid, dgst, err)
	}
	switch dgst.Algorithm() {
	case digest.SHA256, digest.SHA512:
		return nil
	}
	return fmt.Errorf("%w: %q: unsupported algorithm", ErrDigestInvalid, dgst)
}

func (f *FS) blobPath(dgst digest.Digest) string {
	hex := dgst.Encoded()
	return filepath.Join(f.root, "blobs", dgst.Algorithm().String(), hex[:2], hex)
}

func (f *FS) repoPath(repo string, elem ...string) string {
	return filepath.Join(append([]string{f.root, "repos", filepath.FromSlash(repo)}, elem...)...)
}

func linkPath(f *FS, repo, kind string, dgst digest.Digest) string {
	return f.repoPath(repo, kind, dgst.Algorithm().String(), dgst.Encoded())
}

// touch records that the blob was referenced now, for a collector.
func (f *FS) touch(path string) error {
	now := f.now()
	return os.Chtimes(path, now, now)
}

// lockBlob takes the lock of blob dgst against DeleteBlob, and returns its unlock.
func (f *FS) lockBlob(dgst digest.Digest) func() {
	hex := dgst.Encoded()
	var b byte
	if len(hex) >= 2 {
		b = hexByte(hex[0])<<4 | hexByte(hex[1])
	}
	l := &f.blobLocks[b]
	l.Lock()
	return l.Unlock
}

func hexByte(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return 0
}

// touchBlob records that the stored blob dgst was referenced now; an error matching
// fs.ErrNotExist if it is not stored.
func (f *FS) touchBlob(dgst digest.Digest) error {
	defer f.lockBlob(dgst)()
	return f.touch(f.blobPath(dgst))
}

// StatBlob returns the size of a stored blob.
func (f *FS) StatBlob(ctx context.Context, dgst digest.Digest) (int64, error) {
	if err := checkDigest(dgst); err != nil {
		return 0, err
	}
	fi, err := os.Stat(f.blobPath(dgst))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("%w: %s", ErrBlobUnknown, dgst)
	}
	if err != nil {
		return 0, fmt.Errorf("registry storage: %w", err)
	}
	return fi.Size(), nil
}

// OpenBlob opens a stored blob.
func (f *FS) OpenBlob(ctx context.Context, dgst digest.Digest) (io.ReadSeekCloser, int64, error) {
	if err := checkDigest(dgst); err != nil {
		return nil, 0, err
	}
	fh, err := os.Open(f.blobPath(dgst))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("%w: %s", ErrBlobUnknown, dgst)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("registry storage: %w", err)
	}
	fi, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, 0, fmt.Errorf("registry storage: %w", err)
	}
	return fh, fi.Size(), nil
}

// writeBlob stores data as the blob dgst, which it is, unless it is stored already; either
// way the blob counts as referenced now.
func (f *FS) writeBlob(dgst digest.Digest, data []byte) error {
	defer f.lockBlob(dgst)()
	p := f.blobPath(dgst)
	if err := f.touch(p); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return err // stored already (or an error): a collector sees it referenced now
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(p, data, 0o644); err != nil {
		return err
	}
	return f.touch(p) // by the store's clock
}

// LinkBlob links a stored blob into repo.
func (f *FS) LinkBlob(ctx context.Context, repo string, dgst digest.Digest) error {
	if err := checkDigest(dgst); err != nil {
		return err
	}
	if err := f.touchBlob(dgst); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrBlobUnknown, dgst)
	} else if err != nil {
		return fmt.Errorf("registry storage: %w", err)
	}
	lp := linkPath(f, repo, "_blobs", dgst)
	if err := os.MkdirAll(filepath.Dir(lp), 0o755); err != nil {
		return fmt.Errorf("registry storage: %w", err)
	}
	if err := atomicfile.WriteFile(lp, nil, 0o644); err != nil {
		return fmt.Errorf("registry storage: %w", err)
	}
	f.noteRepo(repo)
	return nil
}

// BlobLinked reports whether the blob is stored and linked into repo.
func (f *FS) BlobLinked(ctx context.Context, repo string, dgst digest.Digest) (bool, error) {
	if err := checkDigest(dgst); err != nil {
		return false, err
	}
	if _, err := os.Stat(linkPath(f, repo, "_blobs", dgst)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("registry storage: %w", err)
	}
	if err := f.touchBlob(dgst); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("registry storage: %w", err)
	}
	return true, nil
}

// UnlinkBlob removes a blob's link from repo; the content stays for a collector.
func (f *FS) UnlinkBlob(ctx context.Context, repo string, dgst digest.Digest) error {
	if err := checkDigest(dgst); err != nil {
		return err
	}
	err := os.Remove(linkPath(f, repo, "_blobs", dgst))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrBlobUnknown, dgst)
	}
	if err != nil {
		return fmt.Errorf("registry storage: %w", err)
	}
	return nil
}

// manifestLink is the content of a manifest's link file.
type manifestLink struct {
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
	Subject   digest.Digest `json:"subject,omitempty"`
}

// PutManifest stores and links a manifest.
func (f *FS) PutManifest(ctx context.Context, repo string, m Manifest) error {
	dgst := m.Descriptor.Digest
	if err := checkDigest(dgst); err != nil {
		return err
	}
	if m.Subject != "" {
		if err := checkDigest(m.Subject); err != nil {
			return err
		}
	}
	if err := f.writeBlob(dgst, m.Raw); err != nil {
		return fmt.Errorf("registry storage: %w", err)
	}
	if m.Subject != "" {
		entry, err := json.Marshal(m.Referrer)
		if err != nil {
			return fmt.Errorf("registry storage: %w", err)
		}
		rp := f.referrerPath(repo, m.Subject, dgst)
		if err := os.MkdirAll(filepath.Dir(rp), 0o755); err != nil {
			return fmt.Errorf("registry storage: %w", err)
		}
		if err := atomicfile.WriteFile(rp, entry, 0o644); err != nil {
			return fmt.Errorf("registry storage: %w", err)
		}
	}
	link, err := json.Marshal(manifestLink{MediaType: m.Descriptor.MediaType, Size: int64(len(m.Raw)), Subject: m.Subject})
	if err != nil {
		return fmt.Errorf("registry storage: %w", err)
	}
	lp := linkPath(f, repo, "_manifests", dgst)
	if err := os.MkdirAll(filepath.Dir(lp), 0o755); err != nil {
		return fmt.Errorf("registry storage: %w", err)
	}
	if err := atomicfile.WriteFile(lp, link, 0o644); err != nil {
		f.cache.dropLink(repo, dgst)
		return fmt.Errorf("registry storage: %w", err)
	}
	f.cache.setLink(repo, dgst, manifestLink{MediaType: m.Descriptor.MediaType, Size: int64(len(m.Raw)), Subject: m.Subject}, 0)
	f.noteRepo(repo)
	return nil
}

func (f *FS) referrerPath(repo string, subject, dgst digest.Digest) string {
	return f.repoPath(repo, "_referrers", subject.Algorithm().String(), subject.Encoded(),
		dgst.Algorithm().String()+"-"+dgst.Encoded())
}

func (f *FS) readLink(repo string, dgst digest.Digest) (manifestLink, error) {
	var l manifestLink
	if err := checkDigest(dgst); err != nil {
		return l, err
	}
	if l, ok := f.cache.link(repo, dgst); ok {
		return l, nil
	}
	gen := f.cache.generation()
	data, err := os.ReadFile(linkPath(f, repo, "_manifests", dgst))
	if errors.Is(err, fs.ErrNotExist) {
		return l, fmt.Errorf("%w: %s", ErrManifestUnknown, dgst)
	}
	if err != nil {
		return l, fmt.Errorf("registry storage: %w", err)
	}
	if err := json.Unmarshal(data, &l); err != nil {
		return l, fmt.Errorf("registry storage: manifest link %s: %w", dgst, err)
	}
	f.cache.setLink(repo, dgst, l, gen)
	return l, nil
}

// Manifest reads a manifest of repo.
func (f *FS) Manifest(ctx context.Context, repo string, dgst digest.Digest) (Manifest, error) {
	l, err := f.readLink(repo, dgst)
	if err != nil {
		return Manifest{}, err
	}
	raw, ok := f.cache.manifest(dgst)
	if !ok {
		raw, err = os.ReadFile(f.blobPath(dgst))
		if errors.Is(err, fs.ErrNotExist) {
			return Manifest{}, fmt.Errorf("%w: %s: content missing", ErrManifestUnknown, dgst)
		}
		if err != nil {
			return Manifest{}, fmt.Errorf("registry storage: %w", err)
		}
		if dgst.Algorithm().FromBytes(raw) != dgst {
			return Manifest{}, fmt.Errorf("registry storage: manifest %s: stored content does not match its digest", dgst)
		}
		f.cache.setManifest(dgst, raw)
	}
	return Manifest{
		Descriptor: ocispec.Descriptor{MediaType: l.MediaType, Digest: dgst, Size: int64(len(raw))},
		Raw:        raw,
		Subject:    l.Subject,
	}, nil
}

// ManifestLinked reports whether the manifest is linked into repo.
func (f *FS) ManifestLinked(ctx context.Context, repo string, dgst digest.Digest) (bool, error) {
	if _, err := f.readLink(repo, dgst); err != nil {
		if errors.Is(err, ErrManifestUnknown) {
			return false, nil
		}
		return false, err
	}
	if err := f.touchBlob(dgst); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("registry storage: %w", err)
	}
	return true, nil
}

// DeleteManifest unlinks a manifest, its tags and its referrer entry.
func (f *FS) DeleteManifest(ctx context.Context, repo string, dgst digest.Digest) error {
	l, err := f.readLink(repo, dgst)
	if err != nil {
		return err
	}
	tags, err := f.Tags(ctx, repo)
	if err != nil && !errors.Is(err, ErrNameUnknown) {
		return err
	}
	for _, t := range tags {
		if d, err := f.ResolveTag(ctx, repo, t); err == nil && d == dgst {
			if err := f.Untag(ctx, repo, t); err != nil && !errors.Is(err, ErrManifestUnknown) {
				return err
			}
		}
	}
	if l.Subject != "" {
		if err := os.Remove(f.referrerPath(repo, l.Subject, dgst)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("registry storage: %w", err)
		}
	}
	err = os.Remove(linkPath(f, repo, "_manifests", dgst))
	f.cache.dropLink(repo, dgst)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %s", ErrManifestUnknown, dgst)
		}
		return fmt.Errorf("registry storage: %w", err)
	}
	return nil
}

// Manifests lists the manifests linked into repo.
func (f *FS) Manifests(ctx context.Context, repo string) ([]digest.Digest, error) {
	var out []digest.Digest
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		names, err := listNames(f.repoPath(repo, "_manifests", alg.String()))
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			out = append(out, digest.NewDigestFromEncoded(alg, n))
		}
	}
	return out, nil
}

// listNames lists the names in dir that are not temporary files, sorted; none if dir does
// not exist.
func listNames(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registry storage: %w", err)
	}
	var out []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Tag points a tag at a manifest.
func (f *FS) Tag(ctx context.Context, repo, tag string, dgst digest.Digest) error {
	if err := checkDigest(dgst); err != nil {
		return err
	}
	p := f.repoPath(repo, "_tags", tag)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("registry storage: %w", err)
	}
	if err := atomicfile.WriteFile(p, []byte(dgst.String()), 0o644); err != nil {
		f.cache.dropTag(repo, tag)
		return fmt.Errorf("registry storage: %w", err)
	}
	f.cache.setTag(repo, tag, dgst, 0)
	f.noteRepo(repo)
	return nil
}

// ResolveTag returns the digest a tag names.
func (f *FS) ResolveTag(ctx context.Context, repo, tag string) (digest.Digest, error) {
	if d, ok := f.cache.tag(repo, tag); ok {
		return d, nil
	}
	gen := f.cache.generation()
	data, err := os.ReadFile(f.repoPath(repo, "_tags", tag))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w: tag %q", ErrManifestUnknown, tag)
	}
	if err != nil {
		return "", fmt.Errorf("registry storage: %w", err)
	}
	d, err := digest.Parse(string(data))
	if err != nil {
		return "", fmt.Errorf("registry storage: tag %q: %w", tag, err)
	}
	f.cache.setTag(repo, tag, d, gen)
	return d, nil
}

// Untag removes a tag.
func (f *FS) Untag(ctx context.Context, repo, tag string) error {
	err := os.Remove(f.repoPath(repo, "_tags", tag))
	f.cache.dropTag(repo, tag)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: tag %q", ErrManifestUnknown, tag)
	}
	if err != nil {
		return fmt.Errorf("registry storage: %w", err)
	}
	return nil
}

// Tags lists the tags of repo.
func (f *FS) Tags(ctx context.Context, repo string) ([]string, error) {
	if _, err := os.Stat(f.repoPath(repo)); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNameUnknown, repo)
	}
	return listNames(f.repoPath(repo, "_tags"))
}

// Referrers lists the referrer entries of subject in repo.
func (f *FS) Referrers(ctx context.Context, repo string, subject digest.Digest) ([]ocispec.Descriptor, error) {
	if err := checkDigest(subject); err != nil {
		return nil, err
	}
	dir := f.repoPath(repo, "_referrers", subject.Algorithm().String(), subject.Encoded())
	names, err := listNames(dir)
	if err != nil {
		return nil, err
	}
	out := []ocispec.Descriptor{}
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(dir, n))
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("registry storage: %w", err)
		}
		var d ocispec.Descriptor
		if err := json.Unmarshal(data, &d); err != nil {
			return nil, fmt.Errorf("registry storage: referrer %s: %w", n, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// noteRepo adds repo to the list of repositories, if it is kept.
func (f *FS) noteRepo(repo string) {
	f.reposMu.Lock()
	defer f.reposMu.Unlock()
	if f.repos == nil {
		if f.walking > 0 {
			f.noted[repo] = true
		}
		return
	}
	if i, found := slices.BinarySearch(f.repos, repo); !found {
		f.repos = slices.Insert(f.repos, i, repo)
	}
}

// Repositories lists the repositories: the directories under repos/ that hold links. The
// first call walks them; later ones read the list the writes keep.
func (f *FS) Repositories(ctx context.Context) ([]string, error) {
	f.reposMu.Lock()
	if f.repos != nil {
		out := slices.Clone(f.repos)
		f.reposMu.Unlock()
		return out, nil
	}
	if f.walking == 0 {
		f.noted = map[string]bool{}
	}
	f.walking++
	f.reposMu.Unlock()
	out, err := f.walkRepositories(ctx)
	f.reposMu.Lock()
	defer f.reposMu.Unlock()
	f.walking--
	if err != nil {
		return nil, err
	}
	if f.repos == nil {
		// What was written during the walk, which it may have missed.
		for r := range f.noted {
			if i, found := slices.BinarySearch(out, r); !found {
				out = slices.Insert(out, i, r)
			}
		}
		f.repos = slices.Clone(out)
		f.noted = nil
	}
	return out, nil
}

// walkRepositories walks repos/ for the repositories.
func (f *FS) walkRepositories(ctx context.Context) ([]string, error) {
	base := filepath.Join(f.root, "repos")
	var out []string
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.IsDir() || p == base {
			return nil
		}
		name := d.Name()
		if strings.HasPrefix(name, "_") {
			return filepath.SkipDir
		}
		for _, sub := range []string{"_manifests", "_blobs", "_tags"} {
			if _, err := os.Stat(filepath.Join(p, sub)); err == nil {
				rel, _ := filepath.Rel(base, p)
				out = append(out, filepath.ToSlash(rel))
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("registry storage: %w", err)
	}
	slices.Sort(out)
	return out, nil
}

// WalkBlobs lists every stored blob.
func (f *FS) WalkBlobs(ctx context.Context, fn func(digest.Digest, int64, time.Time) error) error {
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		dir := filepath.Join(f.root, "blobs", alg.String())
		prefixes, err := listNames(dir)
		if err != nil {
			return err
		}
		for _, pre := range prefixes {
			ents, err := os.ReadDir(filepath.Join(dir, pre))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("registry storage: %w", err)
			}
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), ".") {
					continue
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				fi, err := e.Info()
				if err != nil {
					continue // deleted meanwhile
				}
				d := digest.NewDigestFromEncoded(alg, e.Name())
				if d.Validate() != nil {
					continue
				}
				if err := fn(d, fi.Size(), fi.ModTime()); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// BlobReferenced returns when the blob was last referenced.
func (f *FS) BlobReferenced(ctx context.Context, dgst digest.Digest) (time.Time, error) {
	if err := checkDigest(dgst); err != nil {
		return time.Time{}, err
	}
	fi, err := os.Stat(f.blobPath(dgst))
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, fmt.Errorf("%w: %s", ErrBlobUnknown, dgst)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("registry storage: %w", err)
	}
	return fi.ModTime(), nil
}

// DeleteBlob deletes a blob not referenced since before. What references a blob takes
// the same lock, so that a reference either comes first (and the blob stays) or finds the
// blob gone.
func (f *FS) DeleteBlob(ctx context.Context, dgst digest.Digest, before time.Time) (bool, error) {
	if err := checkDigest(dgst); err != nil {
		return false, err
	}
	defer f.lockBlob(dgst)()
	p := f.blobPath(dgst)
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("registry storage: %w", err)
	}
	if !fi.ModTime().Before(before) {
		return false, nil
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("registry storage: %w", err)
	}
	f.cache.dropManifest(dgst)
	return true, nil
}
