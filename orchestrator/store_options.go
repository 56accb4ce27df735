package orchestrator

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"time"
)

// Defaults of the stores of this package.
const (
	// DefaultHistory is the number of events a store keeps for watches from a past
	// revision.
	DefaultHistory = 100_000
	// DefaultWatchBuffer is the number of events a watch may fall behind the writers before
	// it is ended with ErrSlowWatcher.
	DefaultWatchBuffer = 100_000
)

// StoreOption configures NewMemoryStore, OpenBoltStore and OpenEtcdStore. The options
// named WithEtcd are OpenEtcdStore's; the other stores ignore them.
type StoreOption func(*storeOptions) error

type storeOptions struct {
	history int
	buffer  int
	log     *slog.Logger

	// EtcdStore's; the other stores ignore them.
	etcdPrefix   string
	etcdOps      int
	etcdBytes    int
	etcdTimeout  time.Duration
	etcdCompact  time.Duration
	etcdEncoding EtcdEncoding
}

func defaultStoreOptions() storeOptions {
	return storeOptions{history: DefaultHistory, buffer: DefaultWatchBuffer, log: slog.Default(),
		etcdPrefix: DefaultEtcdPrefix, etcdOps: DefaultEtcdMaxTxnOps, etcdBytes: DefaultEtcdMaxRequestBytes,
		etcdTimeout: DefaultEtcdTimeout, etcdCompact: DefaultEtcdCompaction}
}

func (o *storeOptions) apply(opts []StoreOption) error {
	for _, opt := range opts {
		if opt == nil {
			return invalid("StoreOption", "nil option")
		}
		if err := opt(o); err != nil {
			return err
		}
	}
	return nil
}

// WithHistory sets how many of the latest events the store keeps, at least, so that a
// watch can start from a past revision; a watch from an older one fails with ErrCompacted.
// The default is DefaultHistory (100,000); the least is 1. The history holds references to
// the old versions of the objects it names, so it costs memory: about 64 bytes per event,
// plus the replaced object of each update or delete until the event leaves the history.
// It is kept in memory only: a store reopened from disk starts with none.
func WithHistory(events int) StoreOption {
	return func(o *storeOptions) error {
		if events < 1 {
			return invalid("WithHistory", "%d events: must be at least 1", events)
		}
		o.history = events
		return nil
	}
}

// WithWatchBuffer sets how far a watch may fall behind the writers: when more than this
// many events wait for a watch whose reader is not taking them (its channel is full), the
// watch ends with ErrSlowWatcher, and the events it held are released. A reader that keeps
// taking events is not ended, even behind a transaction larger than this. The default is
// DefaultWatchBuffer (100,000); the least is 1.
func WithWatchBuffer(events int) StoreOption {
	return func(o *storeOptions) error {
		if events < 1 {
			return invalid("WithWatchBuffer", "%d events: must be at least 1", events)
		}
		o.buffer = events
		return nil
	}
}

// WithStoreLogger sets the logger of what a store finds wrong with its file but gets past:
// the records of a BoltStore that do not decode, which it sets aside to open without them,
// and a damaged meta page it opens without. The default is slog.Default(), so that data
// set aside is not set aside silently; BoltStore.Quarantined lists the records too. The
// memory store logs nothing.
func WithStoreLogger(l *slog.Logger) StoreOption {
	return func(o *storeOptions) error {
		if l == nil {
			return invalid("WithStoreLogger", "nil logger")
		}
		o.log = l
		return nil
	}
}

// newStoreID returns a random store ID: 16 hex digits.
func newStoreID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
