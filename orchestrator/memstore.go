package orchestrator

import "context"

// MemoryStore is a Store that keeps everything in memory: the default, for a control plane
// in one process, and for tests. Its data is lost when the program ends; OpenBoltStore
// gives a store that survives.
//
// Reads are served from maps and indexes (tasks by service and by node) in memory,
// without I/O. Writes take turns; a transaction holds the store for its duration, so
// readers wait for it, and it for them. A task takes about 500 bytes, itself, its
// indexes and its share of the history included, when the tasks of a service share
// their spec (BenchmarkMemoryStoreMillionTasks measures it); creating or updating one in
// a batch takes a couple of microseconds.
//
// It is safe for simultaneous use. The zero value is not usable: call NewMemoryStore.
type MemoryStore struct {
	c  *core
	id string
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store at revision 0.
func NewMemoryStore(opts ...StoreOption) (*MemoryStore, error) {
	o := defaultStoreOptions()
	if err := o.apply(opts); err != nil {
		return nil, err
	}
	return &MemoryStore{c: newCore(0, o), id: newStoreID()}, nil
}

// ID implements Store: a random ID, new for each MemoryStore.
func (s *MemoryStore) ID() string { return s.id }

// View implements Store.
func (s *MemoryStore) View(ctx context.Context, fn func(tx ReadTx) error) error {
	return s.c.view(ctx, fn)
}

// Update implements Store.
func (s *MemoryStore) Update(ctx context.Context, cause string, fn func(tx Tx) error) error {
	return s.c.update(ctx, cause, fn)
}

// Watch implements Store.
func (s *MemoryStore) Watch(ctx context.Context, fromRevision uint64, filters ...WatchFilter) (<-chan Event, error) {
	return s.c.hub.watch(ctx, fromRevision, filters)
}

// Close implements Store. The data is dropped with the store.
func (s *MemoryStore) Close() error { return s.c.close() }
