package orchestrator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// EtcdStore is a Store kept in etcd, so that several control-plane replicas on different
// machines share it and it survives the loss of any one of them. etcd is the consensus;
// Dao adds none of its own.
//
// # Layout
//
// Under a prefix (WithEtcdPrefix, "/dao/" by default), each object is one key holding it
// in CBOR (or JSON: WithEtcdEncoding): prefix+"s/"+ID for services, "t/" for tasks, "n/"
// for nodes. prefix+"meta/store" names the store (its ID), and prefix+"meta/rev" holds,
// in JSON, the store's revision and the cause of the transaction that set it, the fence
// it was written under and the replica that wrote it; prefix+"meta/compact" takes turns
// of compaction, and keys under prefix+"meta/reading/" hold it off the revision a replica
// reads the whole store at (WithEtcdCompaction). Other keys under the prefix are left
// alone.
//
// # History
//
// The replicas compact etcd's history every 5 minutes to the revision of the round before
// (WithEtcdCompaction), as kube-apiserver does, so that etcd does not fill its quota with
// old versions. Compaction is of the whole etcd cluster: where other programs share it,
// turn it off and let etcd compact (--auto-compaction-retention).
//
// # Revisions and transactions
//
// The store's revision is its own, not etcd's: it counts the store's transactions from 0,
// one by one, as the other stores' revisions do, whatever else the etcd cluster holds.
// Each Update is one etcd transaction that writes the objects and the revision key, on
// the condition that neither the revision key nor any of the objects it writes changed
// since the state fn read (compares on their mod revisions). So transactions of all the
// replicas are serialized through the revision key: one that loses the race to another
// replica is tried again at the next revision, without calling fn again, as long as the
// objects it writes are as fn read them; otherwise Update fails with ErrConflict, as a
// stale write does in every store.
//
// # Reads
//
// Every replica keeps a full copy of the store in memory, as MemoryStore does, kept up to
// date by an etcd watch; View and Watch read that copy, at memory speed. A replica's own
// writes are in it when Update returns; other replicas' writes reach it within the watch's
// delay (a millisecond or so on a LAN). Update first waits until the copy has every write
// etcd had committed when it was called (Sync), so that fn decides from the latest
// state, and a replica that cannot reach a quorum of etcd fails at once rather than
// deciding from an old one.
//
// # The size of a transaction
//
// etcd bounds a request, by default to 128 operations and 1.5 MiB (--max-txn-ops,
// --max-request-bytes). A transaction of the store must still commit whole or not at
// all, so the store does not split one: an Update that writes more objects than TxnLimit,
// or more bytes than fit in a request, fails with ErrTxnTooLarge and writes nothing.
// Writers that make big changes (the orchestrator's reconciler, scheduler and status
// writer) write them in transactions of at most TxnLimit objects, each of which leaves a
// state the loops accept (a service with some of its tasks created, a batch of tasks
// placed). WithEtcdTxnLimit says what the cluster allows when its limits were raised.
//
// A full transaction is about 100 KB, and etcd keeps its log in memory for
// --snapshot-count entries (100,000 by default in etcd 3.4 and 3.5): under a control plane
// that writes hundreds of thousands of tasks, that is gigabytes of memory per member (a
// million-task run took a member past 14 GB). Run such a cluster with a lower count:
// --snapshot-count=5000 held the same run's member under 3 GB.
//
// # Fencing
//
// Fenced returns a view of the store whose every Update also requires conditions of the
// caller's (etcd compares) in the same etcd transaction: a leader's loops write through a
// view fenced on their leadership, so that a deposed leader that wakes up (SIGSTOP, a
// long pause, a partition) cannot write anything (ErrFenced). See Elect.
//
// # Faults
//
// OpenEtcdStore retries an etcd it cannot reach until its context is done. When etcd is
// lost later, Update fails with an error wrapping ErrUnavailable (a commit whose answer
// was lost may have been applied; the store's copy shows it once it is back), View and
// Watch go on from the copy, and the watch goes on once etcd is back. When etcd compacted
// revisions the watch had not read, the store reads everything again, and every Watch
// ends with ErrSlowWatcher so that its reader lists again. A value under the prefix that
// does not decode is logged (WithStoreLogger) and left out of the copy.
type EtcdStore struct {
	cli    *clientv3.Client
	prefix string
	c      *core
	id     string
	log    *slog.Logger
	opts   storeOptions

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	compactDone chan struct{} // closed when compactLoop ends; nil without compaction
	compacted   atomic.Int64  // the etcd revision compactLoop last compacted to

	// Guarded by c.mu.
	modRev map[objectKey]int64 // the etcd mod revision of each object's key, as the copy has it
	revMod int64               // that of the revision key
	// applied is the etcd revision the copy is known to be at: it holds every event of
	// the prefix up to it.
	applied int64
	// progress is closed, and replaced, when applied moves.
	progress chan struct{}
	warned   map[string]bool // foreign or undecodable keys already logged
	// writer names this process's transactions (etcdRevision.Writer), and pending is the
	// one it is committing: when the watch brings it before Update applied it, the watch
	// applies these changes rather than decoding what they encoded.
	writer  string
	pending *pendingTxn

	// loadPage is how many keys load reads a request (1,000), and onLoadPage, when set,
	// is called after each (tests).
	loadPage   int64
	onLoadPage func()

	// hold, when set, stops the watch until it is closed (tests: HoldEtcdWatch).
	holdMu      sync.Mutex
	hold        chan struct{}
	watchCancel context.CancelFunc
}

// Defaults of EtcdStore.
const (
	// DefaultEtcdPrefix is the key prefix of an EtcdStore.
	DefaultEtcdPrefix = "/dao/"
	// DefaultEtcdMaxTxnOps and DefaultEtcdMaxRequestBytes are etcd's own defaults of
	// --max-txn-ops and --max-request-bytes.
	DefaultEtcdMaxTxnOps       = 128
	DefaultEtcdMaxRequestBytes = 1536 * 1024
	// DefaultEtcdTimeout bounds each request of an EtcdStore to etcd.
	DefaultEtcdTimeout = 5 * time.Second
	// DefaultEtcdCompaction is how often the replicas of an EtcdStore compact etcd's
	// history, as kube-apiserver does (--etcd-compaction-interval).
	DefaultEtcdCompaction = 5 * time.Minute
)

// etcdFormat is the layout version in meta/store.
const etcdFormat = 1

type etcdStoreMeta struct {
	ID     string `json:"id"`
	Format int    `json:"format"`
}

type etcdRevision struct {
	Revision uint64 `json:"revision"`
	Cause    string `json:"cause,omitempty"`
	// Fence names the fence the transaction was written under (FencedStore.Name): the
	// leadership whose loops wrote it.
	Fence string `json:"fence,omitempty"`
	// Writer names the store (the process's EtcdStore) that wrote it.
	Writer string `json:"writer,omitempty"`
}

// pendingTxn is a transaction an Update is committing.
type pendingTxn struct {
	rev     uint64
	cause   string
	changes []change
}

// WithEtcdPrefix sets the key prefix of an EtcdStore, which must end with "/"; stores
// with different prefixes share an etcd cluster without seeing each other. The default
// is DefaultEtcdPrefix.
func WithEtcdPrefix(prefix string) StoreOption {
	return func(o *storeOptions) error {
		if !strings.HasSuffix(prefix, "/") || len(prefix) < 2 {
			return invalid("WithEtcdPrefix", "%q: must end with \"/\" and name something", prefix)
		}
		o.etcdPrefix = prefix
		return nil
	}
}

// WithEtcdTxnLimit tells an EtcdStore the limits of its etcd cluster: the most operations
// in one transaction (--max-txn-ops) and the most bytes in one request
// (--max-request-bytes). The defaults are etcd's, DefaultEtcdMaxTxnOps and
// DefaultEtcdMaxRequestBytes.
func WithEtcdTxnLimit(ops, bytes int) StoreOption {
	return func(o *storeOptions) error {
		if ops < 8 || bytes < 64<<10 {
			return invalid("WithEtcdTxnLimit", "%d operations, %d bytes: need at least 8 and 64 KiB", ops, bytes)
		}
		o.etcdOps, o.etcdBytes = ops, bytes
		return nil
	}
}

// WithEtcdTimeout bounds each request of an EtcdStore to etcd (a commit, a read). The
// default is DefaultEtcdTimeout.
func WithEtcdTimeout(d time.Duration) StoreOption {
	return func(o *storeOptions) error {
		if d <= 0 {
			return invalid("WithEtcdTimeout", "%v: must be positive", d)
		}
		o.etcdTimeout = d
		return nil
	}
}

// WithEtcdCompaction sets how often the store compacts etcd's history: each interval, one
// of the replicas (whichever wins a compare-and-swap of the key prefix+"meta/compact")
// compacts etcd to the revision of the round before, so that the history of the last
// interval is kept and no older one. Without compaction etcd keeps every version of every
// key until its space quota is full and then refuses writes (NOSPACE). The default is
// DefaultEtcdCompaction; 0 turns it off, for a cluster that compacts itself
// (etcd --auto-compaction-retention) or that other programs share and compact. A replica
// that reads the whole store (at its start, or when its watch fell behind the compaction)
// holds the replicas' compaction off the revision it reads until it is done, under a key
// prefix+"meta/reading/"+ID with a lease of 30 seconds, so however long a read takes no
// compaction fails it. A compaction by anything else (etcdctl, etcd's own) does not know
// these keys.
func WithEtcdCompaction(interval time.Duration) StoreOption {
	return func(o *storeOptions) error {
		if interval < 0 || interval > 0 && interval < time.Second {
			return invalid("WithEtcdCompaction", "%v: must be 0 (off) or at least a second", interval)
		}
		o.etcdCompact = interval
		return nil
	}
}

// OpenEtcdStore opens the store under the prefix of the etcd cluster that cli talks to,
// and creates it when there is none. cli is the caller's: it is not closed by Close. Build
// it with the cluster's endpoints, TLS and credentials, as for any etcd client:
//
//	cli, err := clientv3.New(clientv3.Config{
//		Endpoints:   []string{"https://10.0.0.1:2379", "https://10.0.0.2:2379", "https://10.0.0.3:2379"},
//		TLS:         tlsConfig, // from the cluster's CA and a client certificate
//		Username:    "dao", Password: password,
//		DialTimeout: 5 * time.Second,
//	})
//
// OpenEtcdStore reads the whole store into memory, retrying while etcd cannot be reached
// until ctx is done; then it fails with an error wrapping ErrUnavailable that says what
// the last try met.
func OpenEtcdStore(ctx context.Context, cli *clientv3.Client, opts ...StoreOption) (*EtcdStore, error) {
	if cli == nil {
		return nil, invalid("OpenEtcdStore", "nil etcd client")
	}
	o := defaultStoreOptions()
	if err := o.apply(opts); err != nil {
		return nil, err
	}
	s := &EtcdStore{cli: cli, prefix: o.etcdPrefix, log: o.log, opts: o, done: make(chan struct{}),
		progress: make(chan struct{}), warned: map[string]bool{}, writer: newStoreID()}
	backoff := 100 * time.Millisecond
	for {
		l, err := s.load(ctx)
		if err == nil {
			s.id = l.id
			s.c = newCore(l.st.rev, o)
			s.c.st = l.st
			s.modRev, s.revMod, s.applied = l.modRev, l.revMod, l.etcdRev
			break
		}
		if errors.Is(err, ErrCorrupt) || errors.Is(err, rpctypes.ErrPermissionDenied) ||
			errors.Is(err, rpctypes.ErrAuthFailed) || errors.Is(err, rpctypes.ErrUserEmpty) {
			return nil, err
		}
		s.log.Warn("orchestrator: etcd store: cannot read the store yet; retrying", "prefix", s.prefix, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("orchestrator: open the etcd store at %s (%s): %w: %v (last try: %v)",
				strings.Join(cli.Endpoints(), ","), s.prefix, ErrUnavailable, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.c.onClose = func() error {
		s.cancel()
		<-s.done
		if s.compactDone != nil {
			<-s.compactDone
		}
		return nil
	}
	go s.follow()
	if o.etcdCompact > 0 {
		s.compactDone = make(chan struct{})
		go s.compactLoop(o.etcdCompact)
	}
	return s, nil
}

func (s *EtcdStore) compactKey() string { return s.prefix + "meta/compact" }

// readingPrefix is that of the keys by which a replica reading the whole store at an etcd
// revision (load) holds compaction off it: each is put with a lease, at the revision the
// replica reads, and deleted when it is done.
func (s *EtcdStore) readingPrefix() string { return s.prefix + "meta/reading/" }

// readingLeaseTTL is the lease of a reading key, in seconds: a replica that dies while it
// reads holds compaction off for this long.
const readingLeaseTTL = 30

// holdHistory keeps the replicas' compaction (compactLoop) from passing the etcd revision
// it returns until release is called (or, should this process die, its lease ends): a
// read of the whole store at that revision can then take as long as it needs, where a
// compaction past it would fail the read and make it start over, again and again when
// one read takes longer than the compaction interval.
func (s *EtcdStore) holdHistory(ctx context.Context) (rev int64, release func(), err error) {
	rctx, cancel := context.WithTimeout(ctx, s.opts.etcdTimeout)
	defer cancel()
	lease, err := s.cli.Grant(rctx, readingLeaseTTL)
	if err != nil {
		return 0, nil, err
	}
	revoke := func() {
		rctx, cancel := context.WithTimeout(context.Background(), s.opts.etcdTimeout)
		defer cancel()
		if _, err := s.cli.Revoke(rctx, lease.ID); err != nil {
			s.log.Debug("orchestrator: etcd store: revoke the lease of a read", "prefix", s.prefix, "err", err)
		}
	}
	resp, err := s.cli.Put(rctx, s.readingPrefix()+s.writer, "", clientv3.WithLease(lease.ID))
	if err != nil {
		revoke()
		return 0, nil, err
	}
	kctx, stop := context.WithCancel(context.Background())
	if ch, err := s.cli.KeepAlive(kctx, lease.ID); err == nil {
		go func() {
			for range ch {
			}
		}()
	}
	return resp.Header.Revision, func() { stop(); revoke() }, nil
}

// compactLoop compacts etcd's history every interval until the store is closed (see
// WithEtcdCompaction). The replicas take turns through the version of the compact key: a
// replica whose compare-and-swap of it wins a round compacts to the etcd revision of the
// round before it, whoever won that one; one that loses learns the version and waits.
func (s *EtcdStore) compactLoop(interval time.Duration) {
	defer close(s.compactDone)
	var version, prev int64
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.opts.etcdTimeout)
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.Version(s.compactKey()), "=", version)).
			Then(clientv3.OpPut(s.compactKey(), ""), clientv3.OpGet(s.readingPrefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly())).
			Else(clientv3.OpGet(s.compactKey())).
			Commit()
		if err != nil {
			cancel()
			s.log.Debug("orchestrator: etcd store: compaction round", "prefix", s.prefix, "err", err)
			continue
		}
		if !resp.Succeeded {
			// Another replica won the round; the next one this replica wins compacts to
			// here.
			version, prev = 0, resp.Header.Revision
			if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
				version = kvs[0].Version
			}
			cancel()
			continue
		}
		version++
		// Never past a revision a replica is reading the whole store at (holdHistory).
		to := prev
		for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
			to = min(to, kv.ModRevision)
		}
		if to > s.compacted.Load() {
			if _, err := s.cli.Compact(ctx, to); err != nil && !errors.Is(err, rpctypes.ErrCompacted) {
				s.log.Warn("orchestrator: etcd store: compact etcd's history", "prefix", s.prefix, "revision", to, "err", err)
			} else {
				s.compacted.Store(to)
			}
		}
		prev = resp.Header.Revision
		cancel()
	}
}

// Compacted returns the etcd revision the store last compacted etcd's history to (see
// WithEtcdCompaction), or 0.
func (s *EtcdStore) Compacted() int64 { return s.compacted.Load() }

func (s *EtcdStore) key(typ ObjectType, id string) string {
	switch typ {
	case ServiceObject:
		return s.prefix + "s/" + id
	case TaskObject:
		return s.prefix + "t/" + id
	default:
		return s.prefix + "n/" + id
	}
}

func (s *EtcdStore) revKey() string   { return s.prefix + "meta/rev" }
func (s *EtcdStore) storeKey() string { return s.prefix + "meta/store" }

// parseKey returns the object a key holds, if it holds one.
func (s *EtcdStore) parseKey(k []byte) (ObjectType, string, bool) {
	rest, ok := strings.CutPrefix(string(k), s.prefix)
	if !ok || len(rest) < 3 || rest[1] != '/' {
		return 0, "", false
	}
	id := rest[2:]
	switch rest[0] {
	case 's':
		return ServiceObject, id, true
	case 't':
		return TaskObject, id, true
	case 'n':
		return NodeObject, id, true
	}
	return 0, "", false
}

// loaded is the store as load read it.
type loaded struct {
	id      string
	st      state
	modRev  map[objectKey]int64
	revMod  int64
	etcdRev int64
}

// load reads the whole store at one etcd revision, page by page, creating it first when
// there is none.
func (s *EtcdStore) load(ctx context.Context) (*loaded, error) {
	page := s.loadPage
	if page == 0 {
		page = 1000
	}
	for range 2 {
		rev, release, err := s.holdHistory(ctx)
		if err != nil {
			return nil, err
		}
		defer release()
		l := &loaded{st: newState(0), modRev: map[objectKey]int64{}, etcdRev: rev}
		var meta *etcdStoreMeta
		var maxRev uint64
		end := clientv3.GetPrefixRangeEnd(s.prefix)
		from := s.prefix
		for {
			rctx, cancel := context.WithTimeout(ctx, s.opts.etcdTimeout)
			resp, err := s.cli.Get(rctx, from, clientv3.WithRange(end), clientv3.WithLimit(page), clientv3.WithRev(l.etcdRev))
			cancel()
			if err != nil {
				return nil, err
			}
			if s.onLoadPage != nil {
				s.onLoadPage()
			}
			for _, kv := range resp.Kvs {
				switch string(kv.Key) {
				case s.storeKey():
					var m etcdStoreMeta
					if err := json.Unmarshal(kv.Value, &m); err != nil || m.ID == "" {
						return nil, fmt.Errorf("%w: etcd key %s: not a store's name: %q", ErrCorrupt, kv.Key, truncate(kv.Value))
					}
					if m.Format != etcdFormat {
						return nil, fmt.Errorf("%w: etcd key %s: layout version %d, this program knows %d", ErrCorrupt, kv.Key, m.Format, etcdFormat)
					}
					meta = &m
					continue
				case s.revKey():
					var r etcdRevision
					if err := json.Unmarshal(kv.Value, &r); err != nil {
						return nil, fmt.Errorf("%w: etcd key %s: not a revision: %q", ErrCorrupt, kv.Key, truncate(kv.Value))
					}
					l.st.rev, l.revMod = r.Revision, kv.ModRevision
					continue
				}
				typ, id, ok := s.parseKey(kv.Key)
				if !ok {
					continue
				}
				obj, err := s.decodeObject(&l.st, typ, id, kv.Value, nil)
				if err != nil {
					s.warnKey(string(kv.Key), "orchestrator: etcd store: a value under the store's prefix does not decode; it is left out", err)
					continue
				}
				l.modRev[objectKey{typ, id}] = kv.ModRevision
				switch o := obj.(type) {
				case *Service:
					maxRev = max(maxRev, o.Revision)
					l.st.services[id] = o
				case *taskRec:
					maxRev = max(maxRev, o.Revision)
					l.st.tasks.set(id, nil, o)
				case *Node:
					maxRev = max(maxRev, o.Revision)
					l.st.nodes[id] = o
				}
			}
			if !resp.More || len(resp.Kvs) == 0 {
				break
			}
			from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		}
		if meta != nil {
			if maxRev > l.st.rev {
				return nil, fmt.Errorf("%w: etcd key %s says revision %d, but an object has revision %d",
					ErrCorrupt, s.revKey(), l.st.rev, maxRev)
			}
			l.id = meta.ID
			return l, nil
		}
		if len(l.modRev) > 0 {
			return nil, fmt.Errorf("%w: objects under %s but no %s", ErrCorrupt, s.prefix, s.storeKey())
		}
		// A new store: name it, at revision 0, unless another replica just did.
		b, _ := json.Marshal(etcdStoreMeta{ID: newStoreID(), Format: etcdFormat})
		r, _ := json.Marshal(etcdRevision{Revision: 0, Cause: "store created"})
		rctx, cancel := context.WithTimeout(ctx, s.opts.etcdTimeout)
		_, err = s.cli.Txn(rctx).
			If(clientv3.Compare(clientv3.CreateRevision(s.storeKey()), "=", 0)).
			Then(clientv3.OpPut(s.storeKey(), string(b)), clientv3.OpPut(s.revKey(), string(r))).
			Commit()
		cancel()
		if err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("orchestrator: etcd store %s: created, but not found after", s.prefix)
}

func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}

// decodeObject decodes a stored value into the object the state would keep, sharing
// what it can with the state (and prev, the object it replaces).
func (s *EtcdStore) decodeObject(st *state, typ ObjectType, id string, v []byte, prev any) (any, error) {
	switch typ {
	case ServiceObject:
		var o Service
		if err := unmarshalValue(v, &o); err != nil {
			return nil, err
		}
		if o.ID != id {
			return nil, fmt.Errorf("it is the service %q", o.ID)
		}
		return cloneService(&o), nil
	case TaskObject:
		var t Task
		if err := unmarshalValue(v, &t); err != nil {
			return nil, err
		}
		if t.ID != id {
			return nil, fmt.Errorf("it is the task %q", t.ID)
		}
		if !t.DesiredState.Valid() || !t.Status.State.Valid() {
			return nil, fmt.Errorf("task states %d and %d: not states", int(t.DesiredState), int(t.Status.State))
		}
		var addrs []string
		if p, ok := prev.(*taskRec); ok {
			addrs = p.Status.Addresses
			if equalContainerSpec(&t.Spec, p.Spec) {
				return newTaskRec(&t, p.Spec, addrs), nil
			}
		}
		return newTaskRec(&t, st.tasks.sharedSpec(&t), addrs), nil
	default:
		var n Node
		if err := unmarshalValue(v, &n); err != nil {
			return nil, err
		}
		if n.ID != id {
			return nil, fmt.Errorf("it is the node %q", n.ID)
		}
		p, _ := prev.(*Node)
		return cloneNode(&n, p), nil
	}
}

func encodeObject(e EtcdEncoding, obj any) ([]byte, error) {
	if r, ok := obj.(*taskRec); ok {
		t := r.shallow()
		return marshalValue(e, &t)
	}
	return marshalValue(e, obj)
}

// warnKey logs a problem with a key once.
func (s *EtcdStore) warnKey(key, msg string, err error) {
	if s.warned[key] {
		return
	}
	if len(s.warned) < 10_000 {
		s.warned[key] = true
	}
	s.log.Warn(msg, "key", key, "err", err)
}

// follow keeps the copy up to date from an etcd watch until the store is closed.
func (s *EtcdStore) follow() {
	defer close(s.done)
	backoff := 50 * time.Millisecond
	for s.ctx.Err() == nil {
		s.holdMu.Lock()
		hold := s.hold
		s.holdMu.Unlock()
		if hold != nil {
			select {
			case <-hold:
			case <-s.ctx.Done():
				return
			}
		}
		s.c.mu.RLock()
		from := s.applied + 1
		s.c.mu.RUnlock()
		err := s.watch(from)
		if s.ctx.Err() != nil {
			return
		}
		if errors.Is(err, rpctypes.ErrCompacted) || errors.Is(err, errResync) {
			s.log.Warn("orchestrator: etcd store: the watch missed revisions; reading the whole store again", "prefix", s.prefix, "err", err)
			if err := s.reload(); err != nil {
				s.log.Warn("orchestrator: etcd store: read the store again", "prefix", s.prefix, "err", err)
			} else {
				backoff = 50 * time.Millisecond
				continue
			}
		} else if err != nil {
			s.log.Debug("orchestrator: etcd store: watch ended; watching again", "prefix", s.prefix, "err", err)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

var errResync = errors.New("the store's revisions have a gap")

// watch applies the events of the prefix from etcd revision from until the watch ends.
func (s *EtcdStore) watch(from int64) error {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(s.ctx))
	defer cancel()
	s.holdMu.Lock()
	if s.hold != nil {
		s.holdMu.Unlock()
		return nil
	}
	s.watchCancel = cancel
	s.holdMu.Unlock()
	wch := s.cli.Watch(ctx, s.prefix, clientv3.WithPrefix(), clientv3.WithRev(from), clientv3.WithProgressNotify())
	for resp := range wch {
		if resp.CompactRevision != 0 {
			return fmt.Errorf("%w: etcd compacted to %d", rpctypes.ErrCompacted, resp.CompactRevision)
		}
		if err := resp.Err(); err != nil {
			return err
		}
		evs := resp.Events
		for len(evs) > 0 {
			n := 1
			for n < len(evs) && evs[n].Kv.ModRevision == evs[0].Kv.ModRevision {
				n++
			}
			if err := s.applyGroup(evs[0].Kv.ModRevision, evs[:n]); err != nil {
				return err
			}
			evs = evs[n:]
		}
		if resp.IsProgressNotify() {
			s.advance(resp.Header.Revision)
		}
	}
	return s.ctx.Err()
}

// advance notes that the copy holds every event up to etcd revision rev.
func (s *EtcdStore) advance(rev int64) {
	s.c.mu.Lock()
	s.advanceLocked(rev)
	s.c.mu.Unlock()
}

func (s *EtcdStore) advanceLocked(rev int64) {
	if rev > s.applied {
		s.applied = rev
		close(s.progress)
		s.progress = make(chan struct{})
	}
}

// applyGroup applies the events of one etcd revision: a transaction of a store (of this
// process, already applied, or of another replica), or a foreign write, which changes
// nothing but what the compares must expect.
func (s *EtcdStore) applyGroup(etcdRev int64, evs []*clientv3.Event) error {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	defer s.advanceLocked(etcdRev)
	var rev *etcdRevision
	for _, ev := range evs {
		if string(ev.Kv.Key) == s.revKey() && ev.Type == mvccpb.PUT {
			var r etcdRevision
			if err := json.Unmarshal(ev.Kv.Value, &r); err != nil {
				s.warnKey(s.revKey(), "orchestrator: etcd store: the revision key does not decode", err)
				return errResync
			}
			rev = &r
			s.revMod = max(s.revMod, etcdRev)
		}
	}
	for _, ev := range evs {
		typ, id, ok := s.parseKey(ev.Kv.Key)
		if !ok {
			continue
		}
		k := objectKey{typ, id}
		if cur, ok := s.modRev[k]; ok && cur > etcdRev {
			continue
		}
		if ev.Type == mvccpb.DELETE {
			delete(s.modRev, k)
		} else {
			s.modRev[k] = etcdRev
		}
	}
	switch {
	case rev == nil:
		for _, ev := range evs {
			if _, _, ok := s.parseKey(ev.Kv.Key); !ok {
				continue // the election's keys, and others that hold no object
			}
			s.warnKey(string(ev.Kv.Key), "orchestrator: etcd store: a write under the store's prefix that no store made (no revision with it); the store's copy keeps what it had", nil)
		}
		return nil
	case rev.Revision <= s.c.st.rev:
		return nil // this process's own transaction, applied by Update
	case rev.Revision != s.c.st.rev+1:
		return fmt.Errorf("%w: at revision %d, etcd revision %d brings %d", errResync, s.c.st.rev, etcdRev, rev.Revision)
	case rev.Writer == s.writer && s.pending != nil && s.pending.rev == rev.Revision:
		// This process's transaction, whose Update has not applied it yet: its changes
		// are what it wrote.
		p := s.pending
		s.pending = nil
		s.c.applyLocked(p.rev, p.cause, p.changes)
		return nil
	}
	changes := make([]change, 0, len(evs))
	for _, ev := range evs {
		typ, id, ok := s.parseKey(ev.Kv.Key)
		if !ok {
			continue
		}
		prev := s.c.st.current(typ, id)
		if ev.Type == mvccpb.DELETE {
			if prev != nil {
				changes = append(changes, change{typ: typ, id: id, prev: prev})
			}
			continue
		}
		obj, err := s.decodeObject(&s.c.st, typ, id, ev.Kv.Value, prev)
		if err != nil {
			s.warnKey(string(ev.Kv.Key), "orchestrator: etcd store: a value under the store's prefix does not decode; it is left out", err)
			continue
		}
		changes = append(changes, change{typ: typ, id: id, prev: prev, cur: obj})
	}
	stamp(changes, rev.Revision)
	s.c.applyLocked(rev.Revision, rev.Cause, changes)
	return nil
}

// reload reads the whole store again after the watch missed revisions, and ends every
// watch, whose readers must list again.
func (s *EtcdStore) reload() error {
	l, err := s.load(s.ctx)
	if err != nil {
		return err
	}
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if l.st.rev < s.c.st.rev {
		return fmt.Errorf("%w: etcd holds revision %d, behind the %d this store read", ErrCorrupt, l.st.rev, s.c.st.rev)
	}
	s.c.st = l.st
	s.modRev, s.revMod = l.modRev, l.revMod
	s.advanceLocked(l.etcdRev)
	s.c.hub.reset(l.st.rev, fmt.Errorf("%w: etcd compacted revisions the store had not read; list again", ErrSlowWatcher))
	return nil
}

// Sync waits until the store's copy holds every write etcd had committed when Sync was
// called (a quorum read of the revision key), so that a View after it sees them. It
// fails with an error wrapping ErrUnavailable when etcd does not answer.
func (s *EtcdStore) Sync(ctx context.Context) error {
	if s.c.closed.Load() {
		return ErrClosed
	}
	rctx, cancel := context.WithTimeout(ctx, s.opts.etcdTimeout)
	resp, err := s.cli.Get(rctx, s.revKey())
	cancel()
	if err != nil {
		return s.unavailable("read the revision", err)
	}
	return s.waitApplied(ctx, resp.Header.Revision)
}

// waitApplied waits until the copy holds every event up to etcd revision rev.
func (s *EtcdStore) waitApplied(ctx context.Context, rev int64) error {
	deadline := time.NewTimer(s.opts.etcdTimeout)
	defer deadline.Stop()
	for {
		s.c.mu.RLock()
		ok, progress := s.applied >= rev, s.progress
		s.c.mu.RUnlock()
		if ok {
			return nil
		}
		// The watch tells of the revisions past the last event only when asked.
		rctx, cancel := context.WithTimeout(ctx, s.opts.etcdTimeout)
		_ = s.cli.RequestProgress(rctx)
		cancel()
		select {
		case <-progress:
		case <-time.After(20 * time.Millisecond):
		case <-deadline.C:
			return fmt.Errorf("orchestrator: etcd store: the watch did not reach etcd revision %d within %v: %w",
				rev, s.opts.etcdTimeout, ErrUnavailable)
		case <-ctx.Done():
			return ctx.Err()
		case <-s.ctx.Done():
			return ErrClosed
		}
	}
}

func (s *EtcdStore) unavailable(what string, err error) error {
	return fmt.Errorf("%w: etcd: %s: %v", ErrUnavailable, what, err)
}

// TxnLimit returns the most objects one Update may write (see the type's doc).
func (s *EtcdStore) TxnLimit() int { return s.txnLimit(0) }

func (s *EtcdStore) txnLimit(fences int) int { return s.opts.etcdOps - 1 - fences }

// View implements Store: it reads the store's copy in memory (see the type's doc).
func (s *EtcdStore) View(ctx context.Context, fn func(tx ReadTx) error) error {
	return s.c.view(ctx, fn)
}

// Update implements Store (see the type's doc for how it commits).
func (s *EtcdStore) Update(ctx context.Context, cause string, fn func(tx Tx) error) error {
	return s.update(ctx, cause, fn, nil, "")
}

// Watch implements Store.
func (s *EtcdStore) Watch(ctx context.Context, fromRevision uint64, filters ...WatchFilter) (<-chan Event, error) {
	return s.c.hub.watch(ctx, fromRevision, filters)
}

// ID implements Store.
func (s *EtcdStore) ID() string { return s.id }

// Close implements Store: it ends the watches and the store's etcd watch. It does not
// close the etcd client.
func (s *EtcdStore) Close() error { return s.c.close() }

// Fenced returns a view of the store, named name, whose every Update also requires
// fences, etcd compares, to hold, in the same etcd transaction; when one does not, the Update fails
// with ErrFenced and writes nothing. Each fence takes one of the transaction's
// operations (see TxnLimit). The view's Close does nothing: close the store.
func (s *EtcdStore) Fenced(name string, fences ...clientv3.Cmp) *FencedStore {
	return &FencedStore{s: s, name: name, fences: fences}
}

// FencedStore is a view of an EtcdStore whose writes are fenced; see EtcdStore.Fenced.
// The revision key of each of its transactions names the fence (etcdctl get
// PREFIX/meta/rev --rev N shows who wrote revision N).
type FencedStore struct {
	s      *EtcdStore
	name   string
	fences []clientv3.Cmp
}

// View implements Store.
func (f *FencedStore) View(ctx context.Context, fn func(tx ReadTx) error) error {
	return f.s.View(ctx, fn)
}

// Update implements Store, with the view's fences.
func (f *FencedStore) Update(ctx context.Context, cause string, fn func(tx Tx) error) error {
	return f.s.update(ctx, cause, fn, f.fences, f.name)
}

// Watch implements Store.
func (f *FencedStore) Watch(ctx context.Context, fromRevision uint64, filters ...WatchFilter) (<-chan Event, error) {
	return f.s.Watch(ctx, fromRevision, filters...)
}

// ID implements Store.
func (f *FencedStore) ID() string { return f.s.ID() }

// Close does nothing: the store is closed by its owner.
func (f *FencedStore) Close() error { return nil }

// TxnLimit returns the most objects one Update of the view may write.
func (f *FencedStore) TxnLimit() int { return f.s.txnLimit(len(f.fences)) }

func (s *EtcdStore) update(ctx context.Context, cause string, fn func(tx Tx) error, fences []clientv3.Cmp, fence string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case s.c.wsem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.c.wsem }()
	if s.c.closed.Load() {
		return ErrClosed
	}
	if err := s.Sync(ctx); err != nil {
		return err
	}
	changes, callers, err := s.c.prepare(ctx, fn)
	if err != nil || len(changes) == 0 {
		return err
	}
	defer func() {
		s.c.mu.Lock()
		s.pending = nil
		s.c.mu.Unlock()
	}()
	if limit := s.txnLimit(len(fences)); len(changes) > limit {
		return fmt.Errorf("%w: the transaction writes %d objects; etcd takes %d in one (see EtcdStore.TxnLimit)",
			ErrTxnTooLarge, len(changes), limit)
	}
	for attempt := 1; ; attempt++ {
		rev, cmps, err := s.compares(changes)
		if err != nil {
			return err
		}
		cmps = append(cmps, fences...)
		stamp(changes, rev)
		ops, size, err := s.ops(changes, etcdRevision{Revision: rev, Cause: cause, Fence: fence, Writer: s.writer})
		if err != nil {
			return err
		}
		if size > s.opts.etcdBytes-4096 {
			return fmt.Errorf("%w: the transaction's %d objects encode to %d bytes; etcd takes %d in one request",
				ErrTxnTooLarge, len(changes), size, s.opts.etcdBytes)
		}
		s.c.mu.Lock()
		s.pending = &pendingTxn{rev: rev, cause: cause, changes: changes}
		s.c.mu.Unlock()
		// The commit is not interrupted by ctx (see Store.Update); the store's timeout
		// bounds it.
		cctx, cancel := context.WithTimeout(context.Background(), s.opts.etcdTimeout)
		resp, err := s.cli.Txn(cctx).If(cmps...).Then(ops...).Commit()
		cancel()
		if err != nil {
			if errors.Is(err, rpctypes.ErrTooManyOps) || errors.Is(err, rpctypes.ErrRequestTooLarge) {
				return fmt.Errorf("%w: %v (the etcd cluster's limits are below those the store was given; see WithEtcdTxnLimit)", ErrTxnTooLarge, err)
			}
			return s.unavailable(fmt.Sprintf("commit revision %d (it may have been applied)", rev), err)
		}
		if resp.Succeeded {
			s.c.mu.Lock()
			s.pending = nil
			if s.c.st.rev < rev {
				s.c.applyLocked(rev, cause, changes)
				for i := range changes {
					k := objectKey{changes[i].typ, changes[i].id}
					if changes[i].cur == nil {
						delete(s.modRev, k)
					} else {
						s.modRev[k] = resp.Header.Revision
					}
				}
				s.revMod = resp.Header.Revision
			}
			// The copy holds every transaction of the store up to this one (the revision
			// key's compare said so), and what else etcd's watch has for the prefix before
			// it can only be foreign writes: the next Sync need not wait for the echo of
			// this commit.
			s.advanceLocked(resp.Header.Revision)
			s.c.mu.Unlock()
			for _, p := range callers {
				*p = rev
			}
			return nil
		}
		if len(fences) > 0 {
			cctx, cancel := context.WithTimeout(context.Background(), s.opts.etcdTimeout)
			fr, err := s.cli.Txn(cctx).If(fences...).Commit()
			cancel()
			if err != nil {
				return s.unavailable("check the fence", err)
			}
			if !fr.Succeeded {
				return fmt.Errorf("%w: revision %d (%s) not written", ErrFenced, rev, cause)
			}
		}
		if attempt == 10 {
			return fmt.Errorf("%w: the store's revision kept moving under %d tries", ErrConflict, attempt)
		}
		// Another replica wrote first: catch up, and try again at the next revision if
		// what this transaction writes is still as fn read it.
		if err := s.waitApplied(ctx, resp.Header.Revision); err != nil {
			return err
		}
	}
}

// compares returns the revision the changes would be written at, and the compares that
// make the write conditional on the copy's state: the revision key, and each object
// written, as the copy has them. It fails with ErrConflict when an object changed since
// fn read it.
func (s *EtcdStore) compares(changes []change) (uint64, []clientv3.Cmp, error) {
	s.c.mu.RLock()
	defer s.c.mu.RUnlock()
	cmps := make([]clientv3.Cmp, 0, len(changes)+2)
	cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.revKey()), "=", s.revMod))
	for i := range changes {
		ch := &changes[i]
		if s.c.st.current(ch.typ, ch.id) != ch.prev {
			return 0, nil, fmt.Errorf("%s %s changed since the transaction read it (another replica wrote it): %w",
				ch.typ, ch.id, ErrConflict)
		}
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.key(ch.typ, ch.id)), "=", s.modRev[objectKey{ch.typ, ch.id}]))
	}
	return s.c.st.rev + 1, cmps, nil
}

// ops returns the writes of changes at rev, and their size in a request.
func (s *EtcdStore) ops(changes []change, rev etcdRevision) ([]clientv3.Op, int, error) {
	ops := make([]clientv3.Op, 0, len(changes)+1)
	size := 0
	for i := range changes {
		ch := &changes[i]
		k := s.key(ch.typ, ch.id)
		size += 2*len(k) + 32
		if ch.cur == nil {
			ops = append(ops, clientv3.OpDelete(k))
			continue
		}
		b, err := encodeObject(s.opts.etcdEncoding, ch.cur)
		if err != nil {
			return nil, 0, fmt.Errorf("orchestrator: encode %s %s: %w", ch.typ, ch.id, err)
		}
		size += len(b)
		ops = append(ops, clientv3.OpPut(k, string(b)))
	}
	r, err := json.Marshal(rev)
	if err != nil {
		return nil, 0, err
	}
	size += len(r) + 2*len(s.revKey()) + 32
	ops = append(ops, clientv3.OpPut(s.revKey(), string(r)))
	return ops, size, nil
}
