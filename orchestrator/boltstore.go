package orchestrator

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
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
// It is safe for simultaneous use. Only one process may have the file open at a time.
type BoltStore struct {
	c  *core
	db *bolt.DB
	id string
}

var _ Store = (*BoltStore)(nil)

// boltFormat is the version of the layout in the file.
const boltFormat = "1"

var (
	bucketMeta     = []byte("meta")
	bucketServices = []byte("services")
	bucketTasks    = []byte("tasks")
	bucketNodes    = []byte("nodes")
	keyRevision    = []byte("revision")
	keyID          = []byte("id")
	keyFormat      = []byte("format")
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

// OpenBoltStore opens the store in the bbolt file at path, creating it if missing, and
// loads its content into memory. It fails if another process has the file open (after
// waiting a second), or if the file is not a store of this format.
func OpenBoltStore(path string, opts ...StoreOption) (*BoltStore, error) {
	o := defaultStoreOptions()
	if err := o.apply(opts); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        boltLockTimeout,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("orchestrator: open %s: another process has it open: %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("orchestrator: open %s: %w", path, err)
	}
	s := &BoltStore{db: db}
	if err := s.load(o); err != nil {
		db.Close()
		return nil, fmt.Errorf("orchestrator: open %s: %w", path, err)
	}
	s.c.persist = s.persist
	s.c.onClose = db.Close
	return s, nil
}

// load prepares the buckets and reads everything into a new core.
func (s *BoltStore) load(o storeOptions) error {
	var rev uint64
	err := s.db.Update(func(btx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketServices, bucketTasks, bucketNodes} {
			if _, err := btx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := btx.Bucket(bucketMeta)
		switch f := meta.Get(keyFormat); {
		case f == nil:
			if err := meta.Put(keyFormat, []byte(boltFormat)); err != nil {
				return err
			}
		case string(f) != boltFormat:
			return fmt.Errorf("format %q, want %q", f, boltFormat)
		}
		if id := meta.Get(keyID); id != nil {
			s.id = string(id)
		} else {
			s.id = newStoreID()
			if err := meta.Put(keyID, []byte(s.id)); err != nil {
				return err
			}
		}
		if v := meta.Get(keyRevision); v != nil {
			if len(v) != 8 {
				return fmt.Errorf("bad revision record of %d bytes", len(v))
			}
			rev = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.c = newCore(rev, o)
	st := &s.c.st
	return s.db.View(func(btx *bolt.Tx) error {
		err := btx.Bucket(bucketServices).ForEach(func(k, v []byte) error {
			svc, err := decode(v, k, "service", func(s *Service) string { return s.ID })
			if err == nil {
				st.services[svc.ID] = cloneService(svc)
			}
			return err
		})
		if err != nil {
			return err
		}
		err = btx.Bucket(bucketTasks).ForEach(func(k, v []byte) error {
			t, err := decode(v, k, "task", func(t *Task) string { return t.ID })
			if err != nil {
				return err
			}
			st.tasks.set(t.ID, nil, newTaskRec(t, st.tasks.sharedSpec(t), nil))
			return nil
		})
		if err != nil {
			return err
		}
		return btx.Bucket(bucketNodes).ForEach(func(k, v []byte) error {
			n, err := decode(v, k, "node", func(n *Node) string { return n.ID })
			if err == nil {
				st.nodes[n.ID] = cloneNode(n, nil)
			}
			return err
		})
	})
}

// ID implements Store: a random ID made when the file was created, kept in it.
func (s *BoltStore) ID() string { return s.id }

// decode reads one stored object and checks that it is stored under its ID.
func decode[T any](v, key []byte, what string, id func(*T) string) (*T, error) {
	var obj T
	if err := json.Unmarshal(v, &obj); err != nil {
		return nil, fmt.Errorf("%s %q: %w", what, key, err)
	}
	if id(&obj) != string(key) {
		return nil, fmt.Errorf("%s %q: stored under key %q", what, id(&obj), key)
	}
	return &obj, nil
}

// persist writes the changes of one transaction, and the new revision, in one bbolt
// transaction.
func (s *BoltStore) persist(_ context.Context, rev uint64, changes []change) error {
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
	err := s.db.Update(func(btx *bolt.Tx) error {
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
	if err != nil {
		return fmt.Errorf("orchestrator: write revision %d to bbolt: %w", rev, err)
	}
	return nil
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
func (s *BoltStore) Watch(ctx context.Context, fromRevision uint64, filters ...Filter) (<-chan Event, error) {
	return s.c.hub.watch(ctx, fromRevision, filters)
}

// Close implements Store: it also closes the file.
func (s *BoltStore) Close() error { return s.c.close() }
