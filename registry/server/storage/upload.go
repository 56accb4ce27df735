package storage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/opendao/dao/internal/atomicfile"
)

// uploadState is what state.json of an upload session holds.
type uploadState struct {
	Repository string    `json:"repository"`
	Started    time.Time `json:"started"`
	Size       int64     `json:"size"`
	// SHA256 is the marshalled state of the sha256 of the first Size bytes.
	SHA256 []byte `json:"sha256"`
}

// fsUpload is an upload session of FS.
type fsUpload struct {
	f   *FS
	id  string
	dir string
	mu  *sync.Mutex
	st  uploadState
}

var _ Upload = (*fsUpload)(nil)

func (f *FS) uploadLock(id string) *sync.Mutex {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.uploads[id]
	if !ok {
		m = &sync.Mutex{}
		f.uploads[id] = m
	}
	return m
}

func (f *FS) forgetUpload(id string) {
	f.mu.Lock()
	delete(f.uploads, id)
	f.mu.Unlock()
}

// NewUpload starts an upload session.
func (f *FS) NewUpload(ctx context.Context, repo string) (Upload, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("registry storage: %w", err)
	}
	id := hex.EncodeToString(b[:])
	dir := filepath.Join(f.root, "uploads", id)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("registry storage: %w", err)
	}
	st, err := sha256.New().(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("registry storage: %w", err)
	}
	u := &fsUpload{f: f, id: id, dir: dir, mu: f.uploadLock(id),
		st: uploadState{Repository: repo, Started: f.now().UTC(), SHA256: st}}
	if err := os.WriteFile(filepath.Join(dir, "data"), nil, 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("registry storage: %w", err)
	}
	if err := u.saveState(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return u, nil
}

// validID reports whether id could be one of ours: 32 lower-case hex digits.
func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for _, c := range id {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Upload opens an upload session of repo, repairing what a crash left: data past the
// recorded size is cut off.
func (f *FS) Upload(ctx context.Context, repo, id string) (Upload, error) {
	if !validID(id) {
		return nil, fmt.Errorf("%w: %q", ErrUploadUnknown, id)
	}
	u := &fsUpload{f: f, id: id, dir: filepath.Join(f.root, "uploads", id), mu: f.uploadLock(id)}
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.loadState(); err != nil {
		return nil, err
	}
	if u.st.Repository != repo {
		return nil, fmt.Errorf("%w: %q is not an upload of %s", ErrUploadUnknown, id, repo)
	}
	return u, nil
}

// loadState reads the session's state and trims its data to it.
func (u *fsUpload) loadState() error {
	data, err := os.ReadFile(filepath.Join(u.dir, "state.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %q", ErrUploadUnknown, u.id)
	}
	if err != nil {
		return fmt.Errorf("registry storage: %w", err)
	}
	var st uploadState
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("registry storage: upload %s state: %w", u.id, err)
	}
	fi, err := os.Stat(filepath.Join(u.dir, "data"))
	if errors.Is(err, fs.ErrNotExist) {
		// Committed (the data renamed into blobs/) but not yet removed: it is over.
		return fmt.Errorf("%w: %q", ErrUploadUnknown, u.id)
	}
	if err != nil {
		return fmt.Errorf("registry storage: %w", err)
	}
	switch {
	case fi.Size() > st.Size:
		if err := os.Truncate(filepath.Join(u.dir, "data"), st.Size); err != nil {
			return fmt.Errorf("registry storage: %w", err)
		}
	case fi.Size() < st.Size:
		return fmt.Errorf("registry storage: upload %s: data has %d bytes, its state says %d", u.id, fi.Size(), st.Size)
	}
	u.st = st
	return nil
}

func (u *fsUpload) saveState() error {
	data, err := json.Marshal(u.st)
	if err != nil {
		return fmt.Errorf("registry storage: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(u.dir, "state.json"), data, 0o644); err != nil {
		return fmt.Errorf("registry storage: %w", err)
	}
	return nil
}

func (u *fsUpload) ID() string { return u.id }

func (u *fsUpload) Size() int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.st.Size
}

func (u *fsUpload) StartedAt() time.Time { return u.st.Started }

// hasher returns the sha256 of the first st.Size bytes.
func (u *fsUpload) hasher() (hash.Hash, error) {
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(u.st.SHA256); err != nil {
		return nil, fmt.Errorf("registry storage: upload %s hash state: %w", u.id, err)
	}
	return h, nil
}

// Append appends r at offset.
func (u *fsUpload) Append(ctx context.Context, offset int64, r io.Reader) (int64, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	// Another process's crash, or a Cancel or Commit of another handle: read afresh.
	if err := u.loadState(); err != nil {
		return 0, err
	}
	if offset != u.st.Size {
		return 0, fmt.Errorf("%w: chunk at %d, the upload has %d bytes", ErrRangeInvalid, offset, u.st.Size)
	}
	h, err := u.hasher()
	if err != nil {
		return 0, err
	}
	fh, err := os.OpenFile(filepath.Join(u.dir, "data"), os.O_WRONLY, 0)
	if err != nil {
		return 0, fmt.Errorf("registry storage: %w", err)
	}
	defer fh.Close()
	if _, err := fh.Seek(u.st.Size, io.SeekStart); err != nil {
		return 0, fmt.Errorf("registry storage: %w", err)
	}
	buf := make([]byte, 256<<10)
	var n, saved int64 // appended, and appended and recorded in the state
	// A checkpoint's sync runs beside the appends that follow it (at most one at a time),
	// so that the disk writes while the network reads; its state is recorded once it is
	// done, with the hash's state as it was when the sync started.
	var syncing chan error
	var syncAt int64
	var syncState []byte
	settle := func() error {
		if syncing == nil {
			return nil
		}
		err := <-syncing
		syncing = nil
		if err != nil {
			return fmt.Errorf("registry storage: %w", err)
		}
		if err := u.record(syncState, syncAt-saved); err != nil {
			return err
		}
		saved = syncAt
		return nil
	}
	var rerr error
	for {
		if err := ctx.Err(); err != nil {
			rerr = err
			break
		}
		m, err := r.Read(buf)
		if m > 0 {
			if _, werr := fh.Write(buf[:m]); werr != nil {
				if serr := settle(); serr != nil {
					return n, serr
				}
				// Keep what was written whole before this buffer.
				_ = fh.Truncate(u.st.Size + n - saved)
				rerr = fmt.Errorf("registry storage: %w", werr)
				break
			}
			h.Write(buf[:m])
			n += int64(m)
			if n-max(saved, syncAt) >= checkpointEvery {
				if err := settle(); err != nil {
					return n, err
				}
				st, err := h.(encoding.BinaryMarshaler).MarshalBinary()
				if err != nil {
					return n, fmt.Errorf("registry storage: %w", err)
				}
				syncing, syncAt, syncState = make(chan error, 1), n, st
				go func(c chan error) { c <- fh.Sync() }(syncing)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			rerr = err
			break
		}
	}
	if err := settle(); err != nil {
		return n, err
	}
	if n > saved {
		if err := u.checkpoint(fh, h, n-saved); err != nil {
			return n, err
		}
	}
	return n, rerr
}

// checkpointEvery is how much a long append writes between two records of the state, so
// that a server killed during a large streamed PATCH resumes near where it stopped.
const checkpointEvery = 16 << 20

// checkpoint makes the data durable, then records that the session has grew bytes more,
// with the hash's state.
func (u *fsUpload) checkpoint(fh *os.File, h hash.Hash, grew int64) error {
	if err := fh.Sync(); err != nil {
		return fmt.Errorf("registry storage: %w", err)
	}
	st, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return fmt.Errorf("registry storage: %w", err)
	}
	return u.record(st, grew)
}

// record records that the session has grew bytes more, synced, with the hash's state
// after them.
func (u *fsUpload) record(st []byte, grew int64) error {
	u.st.Size += grew
	u.st.SHA256 = st
	return u.saveState()
}

// Commit verifies the content and moves it into blobs/.
func (u *fsUpload) Commit(ctx context.Context, dgst digest.Digest) error {
	if err := checkDigest(dgst); err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.loadState(); err != nil {
		return err
	}
	data := filepath.Join(u.dir, "data")
	var got digest.Digest
	if dgst.Algorithm() == digest.SHA256 {
		h, err := u.hasher()
		if err != nil {
			return err
		}
		got = digest.NewDigest(digest.SHA256, h)
	} else {
		fh, err := os.Open(data)
		if err != nil {
			return fmt.Errorf("registry storage: %w", err)
		}
		got, err = dgst.Algorithm().FromReader(fh)
		fh.Close()
		if err != nil {
			return fmt.Errorf("registry storage: %w", err)
		}
	}
	if got != dgst {
		return fmt.Errorf("%w: the upload's %d bytes have digest %s, not %s", ErrDigestInvalid, u.st.Size, got, dgst)
	}
	bp := u.f.blobPath(dgst)
	if err := os.MkdirAll(filepath.Dir(bp), 0o755); err != nil {
		return fmt.Errorf("registry storage: %w", err)
	}
	unlock := u.f.lockBlob(dgst)
	defer unlock()
	// Stored already: touched, so that a collector sees it referenced now; else stored.
	if err := u.f.touch(bp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("registry storage: %w", err)
	} else if err != nil {
		if err := os.Rename(data, bp); err != nil {
			return fmt.Errorf("registry storage: %w", err)
		}
		if err := syncDir(filepath.Dir(bp)); err != nil {
			return fmt.Errorf("registry storage: %w", err)
		}
		if err := u.f.touch(bp); err != nil {
			return fmt.Errorf("registry storage: %w", err)
		}
	}
	if err := os.RemoveAll(u.dir); err != nil {
		return fmt.Errorf("registry storage: %w", err)
	}
	u.f.forgetUpload(u.id)
	return nil
}

// Cancel removes the session.
func (u *fsUpload) Cancel(ctx context.Context) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, err := os.Stat(filepath.Join(u.dir, "state.json")); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %q", ErrUploadUnknown, u.id)
	}
	if err := os.RemoveAll(u.dir); err != nil {
		return fmt.Errorf("registry storage: %w", err)
	}
	u.f.forgetUpload(u.id)
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// WalkUploads lists the upload sessions.
func (f *FS) WalkUploads(ctx context.Context, fn func(repo, id string, size int64, started time.Time) error) error {
	ids, err := listNames(filepath.Join(f.root, "uploads"))
	if err != nil {
		return err
	}
	for _, id := range ids {
		if !validID(id) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(f.root, "uploads", id, "state.json"))
		if err != nil {
			continue // ended meanwhile
		}
		var st uploadState
		if json.Unmarshal(data, &st) != nil {
			continue
		}
		if err := fn(st.Repository, id, st.Size, st.Started); err != nil {
			return err
		}
	}
	return nil
}
