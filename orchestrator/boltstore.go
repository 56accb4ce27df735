package orchestrator

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// BoltStore is a Store that keeps its data in a bbolt file, so that it survives a restart
// of the program, on one machine. It serves every read from a full copy of the data in
// memory, as MemoryStore does, and writes each transaction to the file as one bbolt
// commit (synced to disk once per transaction, not per object) before making it visible:
// a transaction that Update reports committed is on disk. Readers wait for that write,
// as they wait for the transaction, so batch writes: a transaction of 10,000 tasks costs
// about as much per task as the memory store's, plus the encoding (JSON) and the bbolt
// writes, while a transaction of one task costs a disk sync (a fraction of a millisecond
// on an SSD).
//
// The store's revision is kept in the file too, so revisions keep going up across
// restarts. The event history is not: a reopened store starts with an empty history, and
// a watch from a revision it has not written since fails with ErrCompacted.
//
// Objects are stored as JSON, one bbolt key per object, in the buckets "services",
// "tasks" and "nodes"; the bucket "meta" holds the revision and the format version.
// Opening reads them all.
//
// # Damage
//
// OpenBoltStore checks the whole file before bbolt maps it (bbolt trusts its file, and a
// damaged one can crash the process in ways no recover catches): both meta pages and
// their checksums, the file's size against the pages they count, and every page the data
// reaches (its type, bounds, references and key order), about as long as reading the
// file. A file that fails the check is not opened, with an error wrapping ErrCorrupt that
// names the file and the damage; one that is empty, or cut short, is never taken for a new
// store. A damaged newest meta page is not an error: bbolt then opens the file at the
// transaction before, which is what a crash in the middle of a commit leaves.
//
// A record that does not decode (not JSON, not of its bucket's type, or not stored under
// its object's ID) does not stop the store from opening: it is moved, unchanged, to the
// bucket "quarantine" (under the name of its bucket, then its key), reported through the
// logger (WithStoreLogger) and by Quarantined, and the store opens without it. (To an
// orchestrator, the tasks of a service set aside look like those of a removed service.)
// A record that decodes is loaded as it is, whatever its spec: the store does not
// validate specs (see Tx); a service that is not valid is reported through the logger.
//
// A write that fails leaves the file and the store as they were before it, and the store
// takes more writes. If bbolt reports a failure but its file moved on anyway (a sync
// that failed after the commit was written), or bbolt panics on damage it meets, the file
// and the store's memory may disagree: every later Update fails, with that first error,
// until the store is closed and opened again, from the file.
//
// It is safe for simultaneous use. Only one process may have the file open at a time.
type BoltStore struct {
	c    *core
	db   *bolt.DB
	id   string
	path string
	log  *slog.Logger
	// file is the file bbolt opened, kept to let go of it if bbolt cannot, and
	// pageSize the size of its pages.
	file     *os.File
	pageSize int64
	// txid is bbolt's ID of the last transaction the store wrote or read at opening, to
	// tell whether a write that failed reached the file.
	txid uint64
	// afterCommit, when set (by tests), is called after each bbolt commit of persist, and
	// its error taken for the commit's: a commit that failed after it reached the file.
	afterCommit func() error
	// broken, once set, fails every write: the file and memory may disagree.
	broken error
	// quarantined lists the records set aside, at this opening or an earlier one.
	quarantined []*RecordError
}

var _ Store = (*BoltStore)(nil)

// RecordError is a record of a BoltStore's file that does not decode as an object of its
// bucket: its bytes are not JSON, or not of the object's type, or its ID is not its key.
// errors.Is(err, ErrCorrupt) holds for it. Such records are set aside when the store
// opens (see BoltStore).
type RecordError struct {
	// File is the store's file.
	File string
	// Bucket is where the record was: "services", "tasks" or "nodes".
	Bucket string
	// Key is the record's key in Bucket: the ID of the object it was.
	Key string
	// Err says what is wrong with it.
	Err error
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("orchestrator: %s: record %s/%q: %v", e.File, e.Bucket, e.Key, e.Err)
}

// Unwrap returns ErrCorrupt and Err.
func (e *RecordError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// boltFormat is the version of the layout in the file.
const boltFormat = "1"

var (
	bucketMeta       = []byte("meta")
	bucketServices   = []byte("services")
	bucketTasks      = []byte("tasks")
	bucketNodes      = []byte("nodes")
	bucketQuarantine = []byte("quarantine")
	keyRevision      = []byte("revision")
	keyID            = []byte("id")
	keyFormat        = []byte("format")
)

func bucketOf(t ObjectType) []byte {
	switch t {
	case ServiceObject:
		return bucketServices
	case TaskObject:
		return bucketTasks
	}
	return bucketNodes
}

// boltLockTimeout is how long OpenBoltStore waits for another process to let go of the
// file.
const boltLockTimeout = time.Second

// boltCloseTimeout is how long Close waits for bbolt to close a file it failed on (it may
// never: a panic can leave its locks held) before it closes the file itself.
const boltCloseTimeout = time.Second

// boltOptions are the options of every bbolt open of the store's file for writing.
func boltOptions() *bolt.Options {
	return &bolt.Options{
		Timeout:        boltLockTimeout,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	}
}

// OpenBoltStore opens the store in the bbolt file at path, creating it if missing, and
// loads its content into memory. It fails if another process has the file open (after
// waiting a second), if the file is not a store of this format, and, with an error
// wrapping ErrCorrupt, if the file is damaged (see BoltStore). A new file appears at path
// only once it is a complete, empty store, so a crash while creating one leaves no file
// to be mistaken for one.
func OpenBoltStore(path string, opts ...StoreOption) (*BoltStore, error) {
	o := defaultStoreOptions()
	if err := o.apply(opts); err != nil {
		return nil, err
	}
	s := &BoltStore{path: path, log: o.log}
	if err := s.open(o); err != nil {
		return nil, fmt.Errorf("orchestrator: open %s: %w", path, err)
	}
	s.c.persist = s.persist
	s.c.onClose = s.closeBolt
	return s, nil
}

func (s *BoltStore) open(o storeOptions) error {
	m, err := prepareBoltFile(s.path, s.log)
	if err != nil {
		return err
	}
	s.pageSize = int64(m.pageSize)
	opts := boltOptions()
	opts.OpenFile = func(name string, flag int, perm fs.FileMode) (*os.File, error) {
		// The file was made by prepareBoltFile; if it is gone since, do not make an
		// empty one.
		f, err := os.OpenFile(name, flag&^os.O_CREATE, perm)
		s.file = f
		return f, err
	}
	err = guard(func() error {
		var err error
		s.db, err = bolt.Open(s.path, 0o600, opts)
		return err
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return fmt.Errorf("another process has it open: %w", err)
	}
	if err != nil {
		if s.file != nil {
			s.file.Close() // bbolt closes it, unless it panicked
		}
		return err
	}
	if err := s.load(o); err != nil {
		return joinErrors(err, s.closeBolt())
	}
	return nil
}

// prepareBoltFile makes sure there is a sound store file at path: it creates one if there
// is none, and checks an existing one, holding bbolt's lock for reading so that no writer
// changes it meanwhile. It returns the meta page bbolt will read.
func prepareBoltFile(path string, log *slog.Logger) (boltMeta, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := createBoltFile(path); err != nil {
			return boltMeta{}, err
		}
		f, err = os.Open(path)
	}
	if err != nil {
		return boltMeta{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return boltMeta{}, err
	}
	if !fi.Mode().IsRegular() {
		return boltMeta{}, fmt.Errorf("not a regular file (mode %s)", fi.Mode())
	}
	if fi.Size() == 0 {
		return boltMeta{}, fmt.Errorf("%w: the file is empty (0 bytes); a store's file never is, even a new one: remove it to start an empty store", ErrCorrupt)
	}
	// bbolt maps the meta pages as soon as it opens the file, even to read it: check them
	// first.
	if _, err := checkBoltMetas(f, fi.Size()); err != nil {
		return boltMeta{}, err
	}
	var lock *bolt.DB
	err = guard(func() error {
		var err error
		lock, err = bolt.Open(path, 0, &bolt.Options{ReadOnly: true, Timeout: boltLockTimeout})
		return err
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return boltMeta{}, fmt.Errorf("another process has it open: %w", err)
	}
	if err != nil {
		return boltMeta{}, err
	}
	defer lock.Close()
	if fi, err = f.Stat(); err != nil {
		return boltMeta{}, err
	}
	m, err := checkBoltFile(f, fi.Size())
	if err != nil {
		return m, err
	}
	if m.otherErr != nil {
		log.Warn("orchestrator: a meta page of the store's file is damaged; bbolt uses the other one (a crash in the middle of a commit leaves this)",
			"file", path, "damaged", m.other, "err", m.otherErr, "using", 1-m.other, "txid", m.txid)
	}
	return m, nil
}

// createBoltFile makes a new, empty store at path: under another name first, then linked
// to path once complete, so that path never names a half-made file. If another process
// made path meanwhile, it leaves that one.
func createBoltFile(path string) error {
	tmp := path + ".new-" + newStoreID()
	defer os.Remove(tmp)
	db, err := bolt.Open(tmp, 0o600, boltOptions())
	if err != nil {
		return err
	}
	if err := joinErrors(db.Update(initLayout), db.Close()); err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		// A file system without hard links: rename, unless path appeared.
		if _, serr := os.Lstat(path); serr == nil {
			return nil
		}
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	// Make the new name durable; a file system that cannot sync a directory still has it.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// initLayout makes the buckets, the format and the ID that are missing.
func initLayout(btx *bolt.Tx) error {
	for _, name := range [][]byte{bucketMeta, bucketServices, bucketTasks, bucketNodes} {
		if _, err := btx.CreateBucketIfNotExists(name); err != nil {
			if errors.Is(err, bolterrors.ErrIncompatibleValue) {
				return fmt.Errorf("%w: %q is a value, not a bucket", ErrCorrupt, name)
			}
			return err
		}
	}
	meta := btx.Bucket(bucketMeta)
	if err := checkFormat(meta); err != nil {
		return err
	}
	if meta.Get(keyFormat) == nil {
		if err := meta.Put(keyFormat, []byte(boltFormat)); err != nil {
			return err
		}
	}
	if meta.Get(keyID) == nil {
		return meta.Put(keyID, []byte(newStoreID()))
	}
	return nil
}

func checkFormat(meta *bolt.Bucket) error {
	if f := meta.Get(keyFormat); f != nil && string(f) != boltFormat {
		return fmt.Errorf("format %q, want %q", f, boltFormat)
	}
	return nil
}

// badRecord is a record that does not decode.
type badRecord struct {
	bucket []byte
	key    []byte
	value  []byte // nil for a bucket where a record should be
	err    error
}

// invalidService is a service that decodes, but is not valid.
type invalidService struct {
	id  string
	err error
}

// load prepares the buckets and reads everything into a new core. Records that do not
// decode are set aside.
func (s *BoltStore) load(o storeOptions) error {
	var complete bool
	err := guard(func() error {
		return s.db.View(func(btx *bolt.Tx) error {
			meta := btx.Bucket(bucketMeta)
			complete = meta != nil && btx.Bucket(bucketServices) != nil && btx.Bucket(bucketTasks) != nil &&
				btx.Bucket(bucketNodes) != nil && meta.Get(keyFormat) != nil && meta.Get(keyID) != nil
			if meta != nil {
				return checkFormat(meta)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	if !complete {
		// A file of an older version, or one bbolt made without us.
		err := guard(func() error { return s.db.Update(initLayout) })
		if err != nil {
			return err
		}
	}

	var (
		rev, maxRev uint64
		bad         []badRecord
		invalid     []invalidService // loaded as they are
		st          = newState(0)
	)
	err = guard(func() error {
		return s.db.View(func(btx *bolt.Tx) error {
			meta := btx.Bucket(bucketMeta)
			s.id = string(meta.Get(keyID))
			if v := meta.Get(keyRevision); v != nil {
				if len(v) != 8 {
					return fmt.Errorf("%w: meta/revision is %d bytes, want 8: the store's revision is unknown", ErrCorrupt, len(v))
				}
				rev = binary.BigEndian.Uint64(v)
			}
			note := func(b, k, v []byte, err error) {
				bad = append(bad, badRecord{bucket: b, key: bytes.Clone(k), value: bytes.Clone(v), err: err})
			}
			err := eachRecord(btx, bucketServices, note, func(k, v []byte) error {
				svc, err := decode(v, k, func(s *Service) string { return s.ID })
				if err != nil {
					return err
				}
				if verr := svc.Validate(); verr != nil {
					invalid = append(invalid, invalidService{svc.ID, verr})
				}
				maxRev = max(maxRev, svc.Revision)
				st.services[svc.ID] = cloneService(svc)
				return nil
			})
			if err != nil {
				return err
			}
			err = eachRecord(btx, bucketTasks, note, func(k, v []byte) error {
				t, err := decode(v, k, func(t *Task) string { return t.ID })
				if err == nil {
					maxRev = max(maxRev, t.Revision)
					st.tasks.set(t.ID, nil, newTaskRec(t, st.tasks.sharedSpec(t), nil))
				}
				return err
			})
			if err != nil {
				return err
			}
			err = eachRecord(btx, bucketNodes, note, func(k, v []byte) error {
				n, err := decode(v, k, func(n *Node) string { return n.ID })
				if err == nil {
					maxRev = max(maxRev, n.Revision)
					st.nodes[n.ID] = cloneNode(n, nil)
				}
				return err
			})
			if err != nil {
				return err
			}
			s.quarantined = readQuarantine(btx, s.path)
			return nil
		})
	})
	if err != nil {
		return err
	}
	if n := len(s.quarantined); n > 0 {
		s.log.Warn("orchestrator: the store's file holds records set aside at an earlier opening, in its bucket quarantine",
			"file", s.path, "records", n)
	}
	if len(bad) > 0 {
		s.setAside(bad)
	}
	for _, r := range invalid {
		s.log.Warn("orchestrator: a service of the store's file is not valid; it is loaded as it is",
			"file", s.path, "service", r.id, "err", r.err)
	}
	err = guard(func() error {
		return s.db.View(func(btx *bolt.Tx) error {
			s.txid = uint64(btx.ID())
			return nil
		})
	})
	if err != nil {
		return err
	}
	if maxRev > rev {
		// Revisions must not go down: go on from the newest object's.
		s.log.Warn("orchestrator: the store's revision is behind its newest object's; going on from the object's",
			"file", s.path, "revision", rev, "object_revision", maxRev)
		rev = maxRev
	}
	st.rev = rev
	s.c = newCore(rev, o)
	s.c.st = st
	return nil
}

// eachRecord calls fn with each record of a bucket, and note with each one fn fails on
// and each bucket in it (where a record should be).
func eachRecord(btx *bolt.Tx, name []byte, note func(b, k, v []byte, err error), fn func(k, v []byte) error) error {
	return btx.Bucket(name).ForEach(func(k, v []byte) error {
		if v == nil {
			note(name, k, nil, errors.New("a bucket, not a record"))
			return nil
		}
		if err := fn(k, v); err != nil {
			note(name, k, v, err)
		}
		return nil
	})
}

// readQuarantine lists the records in the bucket quarantine, with what is wrong with them.
func readQuarantine(btx *bolt.Tx, path string) []*RecordError {
	q := btx.Bucket(bucketQuarantine)
	if q == nil {
		return nil
	}
	var list []*RecordError
	q.ForEachBucket(func(name []byte) error {
		return q.Bucket(name).ForEach(func(k, v []byte) error {
			list = append(list, &RecordError{File: path, Bucket: string(name), Key: string(k), Err: recordErr(name, k, v)})
			return nil
		})
	})
	return list
}

// recordErr says again what is wrong with a record of bucket b set aside.
func recordErr(b, k, v []byte) error {
	var err error
	switch {
	case v == nil:
		err = errors.New("a bucket, not a record")
	case bytes.Equal(b, bucketServices):
		_, err = decode(v, k, func(s *Service) string { return s.ID })
	case bytes.Equal(b, bucketTasks):
		_, err = decode(v, k, func(t *Task) string { return t.ID })
	case bytes.Equal(b, bucketNodes):
		_, err = decode(v, k, func(n *Node) string { return n.ID })
	}
	if err == nil {
		err = errors.New("set aside by an earlier opening")
	}
	return err
}

// setAside moves records that do not decode to the bucket quarantine, and reports them.
// If it cannot, it leaves them where they are: the store opens without them either way.
func (s *BoltStore) setAside(bad []badRecord) {
	moved := make([]string, len(bad))
	err := guard(func() error {
		return s.db.Update(func(btx *bolt.Tx) error {
			q, err := btx.CreateBucketIfNotExists(bucketQuarantine)
			if err != nil {
				return err
			}
			for i, r := range bad {
				src := btx.Bucket(r.bucket)
				dst, err := q.CreateBucketIfNotExists(r.bucket)
				if err != nil {
					return err
				}
				key := r.key
				for n := 2; hasKey(dst, key); n++ {
					key = fmt.Appendf(bytes.Clone(r.key), "~%d", n)
				}
				switch {
				case r.value != nil:
					if err := dst.Put(key, r.value); err != nil {
						return err
					}
					if err := src.Delete(r.key); err != nil {
						return err
					}
				case bytes.Equal(key, r.key):
					// A bucket where a record should be: moved whole, under its key.
					if err := btx.MoveBucket(r.key, src, dst); err != nil {
						return err
					}
				default:
					continue // a bucket that cannot keep its key: left in place
				}
				moved[i] = fmt.Sprintf("quarantine/%s/%s", r.bucket, key)
			}
			return nil
		})
	})
	if err != nil {
		s.log.Warn("orchestrator: cannot move records that do not decode to the bucket quarantine; they stay where they are, and the store opens without them",
			"file", s.path, "err", err)
		clear(moved)
	}
	for i, r := range bad {
		re := &RecordError{File: s.path, Bucket: string(r.bucket), Key: string(r.key), Err: r.err}
		s.quarantined = append(s.quarantined, re)
		where := moved[i]
		if where == "" {
			where = "left in place"
		}
		s.log.Warn("orchestrator: a record of the store's file does not decode: the store opens without it",
			"file", s.path, "bucket", string(r.bucket), "key", string(r.key), "err", r.err, "to", where)
	}
	slices.SortFunc(s.quarantined, func(a, b *RecordError) int {
		return cmp.Or(cmp.Compare(a.Bucket, b.Bucket), cmp.Compare(a.Key, b.Key))
	})
}

// hasKey reports whether b has a record or a bucket under key.
func hasKey(b *bolt.Bucket, key []byte) bool {
	k, _ := b.Cursor().Seek(key)
	return bytes.Equal(k, key)
}

// Quarantined returns the records of the file that do not decode, found at this opening
// or an earlier one, sorted by bucket and key; the store holds none of them. Those found
// at an earlier opening, and those found now unless the file could not be written, are
// in the bucket "quarantine" of the file, unchanged, under their bucket's name and their
// key (followed by "~2", "~3" and so on if the key was set aside before).
func (s *BoltStore) Quarantined() []*RecordError {
	list := make([]*RecordError, len(s.quarantined))
	for i, r := range s.quarantined {
		c := *r
		list[i] = &c
	}
	return list
}

// ID implements Store: a random ID made when the file was created, kept in it.
func (s *BoltStore) ID() string { return s.id }

// decode reads one stored object and checks that it is stored under its ID.
func decode[T any](v, key []byte, id func(*T) string) (*T, error) {
	var obj T
	if err := json.Unmarshal(v, &obj); err != nil {
		return nil, err
	}
	if got := id(&obj); got != string(key) {
		return nil, fmt.Errorf("it is the object %q, not %q", got, key)
	}
	return &obj, nil
}

// persist writes the changes of one transaction, and the new revision, in one bbolt
// transaction.
func (s *BoltStore) persist(_ context.Context, rev uint64, changes []change) error {
	if s.broken != nil {
		return s.broken
	}
	vals := make([][]byte, len(changes))
	for i := range changes {
		if changes[i].cur == nil {
			continue
		}
		var obj any = changes[i].cur
		if r, ok := obj.(*taskRec); ok {
			t := r.shallow()
			obj = &t
		}
		b, err := json.Marshal(obj)
		if err != nil {
			return fmt.Errorf("orchestrator: encode %s %s: %w", changes[i].typ, changes[i].id, err)
		}
		vals[i] = b
	}
	var revBytes [8]byte
	binary.BigEndian.PutUint64(revBytes[:], rev)
	var txid uint64
	err := guard(func() error {
		// bbolt panics beginning a write if both meta pages are damaged, and keeps its
		// writer's lock then: find out first (two small reads, from the page cache).
		if err := s.checkMetas(); err != nil {
			return err
		}
		return s.db.Update(func(btx *bolt.Tx) error {
			txid = uint64(btx.ID())
			for i := range changes {
				ch := &changes[i]
				if ch.kind() == 0 {
					continue
				}
				b := btx.Bucket(bucketOf(ch.typ))
				var err error
				if vals[i] == nil {
					err = b.Delete([]byte(ch.id))
				} else {
					err = b.Put([]byte(ch.id), vals[i])
				}
				if err != nil {
					return err
				}
			}
			return btx.Bucket(bucketMeta).Put(keyRevision, revBytes[:])
		})
	})
	if err == nil && s.afterCommit != nil {
		err = s.afterCommit()
	}
	if err != nil {
		err = fmt.Errorf("orchestrator: write revision %d to %s: %w", rev, s.path, err)
		s.checkFailedWrite(err)
		return err
	}
	s.txid = txid
	return nil
}

// checkMetas returns an error wrapping ErrCorrupt if neither meta page of the open file
// is valid.
func (s *BoltStore) checkMetas() error {
	_, err0 := readBoltMeta(s.file, 0)
	_, err1 := readBoltMeta(s.file, s.pageSize)
	if err0 != nil && err1 != nil {
		return fmt.Errorf("%w: both meta pages were damaged while the store had the file open: %w", ErrCorrupt,
			joinErrors(fmt.Errorf("page 0: %w", err0), fmt.Errorf("page 1: %w", err1)))
	}
	return nil
}

// checkFailedWrite decides, after a write failed with err, whether the store may take
// more: it may if bbolt rolled the write back; it may not if bbolt panicked, or if its
// file moved on although the write failed (the memory, rolled back, would disagree).
func (s *BoltStore) checkFailedWrite(err error) {
	if errors.Is(err, ErrCorrupt) {
		s.broken = fmt.Errorf("orchestrator: %s takes no more writes after bbolt failed on it; close and reopen the store: %w", s.path, err)
		return
	}
	var txid uint64
	verr := guard(func() error {
		return s.db.View(func(btx *bolt.Tx) error {
			txid = uint64(btx.ID())
			return nil
		})
	})
	switch {
	case verr != nil:
		s.broken = fmt.Errorf("orchestrator: %s takes no more writes: after a failed write (%w), bbolt cannot read it: %w", s.path, err, verr)
	case txid != s.txid:
		s.broken = fmt.Errorf("orchestrator: %s takes no more writes: a write failed after it reached the file (bbolt's transaction %d, the store's %d), so the file may hold it or not; close and reopen the store to read what it holds: %w",
			s.path, txid, s.txid, err)
	}
}

// closeBolt closes the bbolt file. If the store broke, bbolt may never finish closing (a
// panic can leave its locks held): after boltCloseTimeout, the file is closed under it.
// Its memory mapping, and with it the lock on the file, then stay until the process ends.
func (s *BoltStore) closeBolt() error {
	if s.broken == nil {
		return guard(s.db.Close)
	}
	done := make(chan error, 1)
	go func() { done <- guard(s.db.Close) }()
	select {
	case err := <-done:
		return err
	case <-time.After(boltCloseTimeout):
		err := s.file.Close()
		return fmt.Errorf("orchestrator: close %s: bbolt did not let go of it after it failed; its lock on the file may stay until the process ends: %w", s.path, joinErrors(err, s.broken))
	}
}

// guard runs fn, a call into bbolt, and returns an error wrapping ErrCorrupt if it
// panics or faults on the file's memory mapping (bbolt panics on some of the damage it
// meets; a fault is a panic only where debug.SetPanicOnFault asks for it, in this
// goroutine).
func guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if re, ok := r.(runtime.Error); ok {
				err = fmt.Errorf("%w: bbolt failed reading the file: %v", ErrCorrupt, re)
			} else {
				err = fmt.Errorf("%w: bbolt failed on the file's content: %v", ErrCorrupt, r)
			}
		}
	}()
	return fn()
}

// View implements Store.
func (s *BoltStore) View(ctx context.Context, fn func(tx ReadTx) error) error {
	return s.c.view(ctx, fn)
}

// Update implements Store. It returns once the transaction is on disk.
func (s *BoltStore) Update(ctx context.Context, cause string, fn func(tx Tx) error) error {
	return s.c.update(ctx, cause, fn)
}

// Watch implements Store.
func (s *BoltStore) Watch(ctx context.Context, fromRevision uint64, filters ...WatchFilter) (<-chan Event, error) {
	return s.c.hub.watch(ctx, fromRevision, filters)
}

// Close implements Store: it also closes the file.
func (s *BoltStore) Close() error { return s.c.close() }
