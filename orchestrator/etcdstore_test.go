package orchestrator_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/daemon"
	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/orchestrator/storetest"
)

// etcdClient starts a private etcd of one member for the test (a real one, from
// Debian's etcd-server: see testutil.StartEtcd) and returns a client of it. Durability is
// not what these tests look at: the member does not sync its writes to disk.
func etcdClient(t *testing.T) *clientv3.Client {
	t.Helper()
	e := testutil.StartEtcd(t, 1, daemon.WithEtcdUnsafeNoFsync())
	return e.Client(t)
}

var etcdPrefixes atomic.Int64

// newEtcdPrefix returns a prefix no other store of this test process uses.
func newEtcdPrefix() string {
	return fmt.Sprintf("/dao-test/%d-%d/", os.Getpid(), etcdPrefixes.Add(1))
}

func openEtcdStore(t *testing.T, cli *clientv3.Client, prefix string, c storetest.Config, opts ...orchestrator.StoreOption) *orchestrator.EtcdStore {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opts = append([]orchestrator.StoreOption{orchestrator.WithEtcdPrefix(prefix),
		orchestrator.WithHistory(c.History), orchestrator.WithWatchBuffer(c.WatchBuffer)}, opts...)
	s, err := orchestrator.OpenEtcdStore(ctx, cli, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestEtcdStore(t *testing.T) {
	cli := etcdClient(t)
	storetest.Run(t, func(t *testing.T, c storetest.Config) orchestrator.Store {
		return openEtcdStore(t, cli, newEtcdPrefix(), c)
	})
	storetest.RunDurable(t, func(t *testing.T, dir string, c storetest.Config) orchestrator.Store {
		// The directory names the store: the same prefix each time within a test.
		return openEtcdStore(t, cli, "/dao-test/"+strings.ReplaceAll(dir, "/", "_")+"/", c)
	})
}

func createTask(t *testing.T, s orchestrator.Store, id string) orchestrator.Task {
	t.Helper()
	tk := orchestrator.Task{Task: dao.Task{ID: id, ServiceID: "web", DesiredState: dao.TaskRunning,
		Spec: dao.ContainerSpec{Image: "example.com/web:1"}}}
	if err := s.Update(context.Background(), "test", func(tx orchestrator.Tx) error { return tx.CreateTask(&tk) }); err != nil {
		t.Fatalf("create task %s: %v", id, err)
	}
	return tk
}

func readTask(t *testing.T, s orchestrator.Store, id string) (orchestrator.Task, error) {
	t.Helper()
	var tk orchestrator.Task
	err := s.View(context.Background(), func(tx orchestrator.ReadTx) error {
		var err error
		tk, err = tx.Task(id)
		return err
	})
	return tk, err
}

// Two replicas of one store: each sees the other's writes, their transactions take
// turns at one revision each, and a write of an object the other changed meanwhile
// fails with ErrConflict.
func TestEtcdStoreReplicas(t *testing.T) {
	cli := etcdClient(t)
	prefix := newEtcdPrefix()
	a := openEtcdStore(t, cli, prefix, storetest.Config{History: 1000, WatchBuffer: 1000})
	defer a.Close()
	b := openEtcdStore(t, cli, prefix, storetest.Config{History: 1000, WatchBuffer: 1000})
	defer b.Close()
	if a.ID() != b.ID() {
		t.Fatalf("replicas name different stores: %q and %q", a.ID(), b.ID())
	}
	events := watchStore(t, b, 0)
	tk := createTask(t, a, "web.1")
	if e := <-events; e.Task == nil || e.Task.ID != "web.1" || e.Revision != tk.Revision || e.Cause != "test" {
		t.Fatalf("replica b's event: %+v, want web.1 created at revision %d by \"test\"", e, tk.Revision)
	}
	// b updates the task it read; a's stale copy then conflicts.
	if err := b.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	bt, err := readTask(t, b, "web.1")
	if err != nil {
		t.Fatal(err)
	}
	bt.NodeID = "n1"
	if err := b.Update(context.Background(), "b", func(tx orchestrator.Tx) error { return tx.UpdateTask(&bt) }); err != nil {
		t.Fatal(err)
	}
	tk.NodeID = "n2"
	err = a.Update(context.Background(), "a", func(tx orchestrator.Tx) error { return tx.UpdateTask(&tk) })
	if !errors.Is(err, orchestrator.ErrConflict) {
		t.Fatalf("a's write over b's: %v, want ErrConflict", err)
	}
	// Writers on both, on different objects, at once: all commit, at distinct revisions.
	const each = 40
	var wg sync.WaitGroup
	errs := make(chan error, 2*each)
	for _, s := range []*orchestrator.EtcdStore{a, b} {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("%p.%d", s, i)
				err := s.Update(context.Background(), "race", func(tx orchestrator.Tx) error {
					return tx.CreateTask(&orchestrator.Task{Task: dao.Task{ID: id, ServiceID: "web"}})
				})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent write: %v", err)
	}
	if err := a.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	revs := map[uint64]bool{}
	n := 0
	err = a.View(context.Background(), func(tx orchestrator.ReadTx) error {
		for tk := range tx.Tasks() {
			n++
			if tk.ID != "web.1" {
				if revs[tk.Revision] {
					t.Errorf("two transactions at revision %d", tk.Revision)
				}
				revs[tk.Revision] = true
			}
		}
		return nil
	})
	if err != nil || n != 2*each+1 {
		t.Errorf("replica a holds %d tasks (%v), want %d", n, err, 2*each+1)
	}
}

func watchStore(t *testing.T, s orchestrator.Store, from uint64) <-chan orchestrator.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := s.Watch(ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan orchestrator.Event, 1000)
	go func() {
		defer close(out)
		for e := range ch {
			select {
			case out <- e:
			case <-time.After(10 * time.Second):
				return
			}
		}
	}()
	return out
}

// A fenced write whose fence no longer holds writes nothing: ErrFenced.
func TestEtcdStoreFence(t *testing.T) {
	cli := etcdClient(t)
	prefix := newEtcdPrefix()
	s := openEtcdStore(t, cli, prefix, storetest.Config{History: 100, WatchBuffer: 100})
	defer s.Close()
	ctx := context.Background()
	lock := prefix + "leader"
	put, err := cli.Put(ctx, lock, "me")
	if err != nil {
		t.Fatal(err)
	}
	fenced := s.Fenced("test", clientv3.Compare(clientv3.CreateRevision(lock), "=", put.Header.Revision))
	if got, want := fenced.TxnLimit(), s.TxnLimit()-1; got != want {
		t.Errorf("fenced TxnLimit = %d, want %d", got, want)
	}
	createTask(t, fenced, "web.1")
	// Another leader: the key is deleted and made again.
	if _, err := cli.Delete(ctx, lock); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, lock, "other"); err != nil {
		t.Fatal(err)
	}
	before, _ := cli.Get(ctx, prefix+"meta/rev")
	err = fenced.Update(ctx, "deposed", func(tx orchestrator.Tx) error {
		return tx.CreateTask(&orchestrator.Task{Task: dao.Task{ID: "web.2", ServiceID: "web"}})
	})
	if !errors.Is(err, orchestrator.ErrFenced) {
		t.Fatalf("write of a deposed leader: %v, want ErrFenced", err)
	}
	after, _ := cli.Get(ctx, prefix+"meta/rev")
	if before.Kvs[0].ModRevision != after.Kvs[0].ModRevision {
		t.Error("the fenced write moved the store's revision in etcd")
	}
	if _, err := readTask(t, s, "web.2"); !errors.Is(err, orchestrator.ErrNotFound) {
		t.Errorf("task of the fenced write: %v, want ErrNotFound", err)
	}
	if r, _ := cli.Get(ctx, prefix+"t/web.2"); len(r.Kvs) != 0 {
		t.Error("the fenced write reached etcd")
	}
}

// A store whose watch fell behind etcd's compaction reads everything again: its watches
// end with ErrSlowWatcher, and a list then has every write.
func TestEtcdStoreCompactedWatch(t *testing.T) {
	cli := etcdClient(t)
	prefix := newEtcdPrefix()
	a := openEtcdStore(t, cli, prefix, storetest.Config{History: 100, WatchBuffer: 100})
	defer a.Close()
	b := openEtcdStore(t, cli, prefix, storetest.Config{History: 100, WatchBuffer: 100})
	defer b.Close()
	events := watchStore(t, a, 0)
	release := orchestrator.HoldEtcdWatch(a)
	for i := range 5 {
		createTask(t, b, fmt.Sprintf("web.%d", i))
	}
	resp, err := cli.Get(context.Background(), prefix+"meta/rev")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(context.Background(), resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	release()
	select {
	case e := <-events:
		if !errors.Is(e.Err, orchestrator.ErrSlowWatcher) {
			t.Fatalf("watch of the store that missed compacted revisions: %+v, want ErrSlowWatcher", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not end")
	}
	if err := a.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := readTask(t, a, fmt.Sprintf("web.%d", i)); err != nil {
			t.Errorf("after reading again: %v", err)
		}
	}
	createTask(t, a, "web.a") // and it writes again
}

// The replicas compact etcd's history between them, a round each interval, keeping the
// last interval's; they go on reading and writing as they do.
func TestEtcdStoreCompaction(t *testing.T) {
	cli := etcdClient(t)
	prefix := newEtcdPrefix()
	c := storetest.Config{History: 100, WatchBuffer: 100}
	a := openEtcdStore(t, cli, prefix, c, orchestrator.WithEtcdCompaction(time.Second))
	defer a.Close()
	b := openEtcdStore(t, cli, prefix, c, orchestrator.WithEtcdCompaction(time.Second))
	defer b.Close()
	first, err := cli.Get(context.Background(), prefix+"meta/rev")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; a.Compacted() == 0 && b.Compacted() == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatal("no replica compacted etcd's history within 20s")
		}
		createTask(t, []*orchestrator.EtcdStore{a, b}[i%2], fmt.Sprintf("web.%d", i))
		time.Sleep(50 * time.Millisecond)
	}
	_, err = cli.Get(context.Background(), prefix+"meta/rev", clientv3.WithRev(first.Header.Revision))
	if !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("read at etcd revision %d after compaction: %v, want ErrCompacted", first.Header.Revision, err)
	}
	createTask(t, a, "web.a")
	createTask(t, b, "web.b")
	for _, s := range []*orchestrator.EtcdStore{a, b} {
		if err := s.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"web.0", "web.a", "web.b"} {
			if _, err := readTask(t, s, id); err != nil {
				t.Errorf("after compaction: %v", err)
			}
		}
	}
}

// A replica that reads the whole store again (its watch fell behind the compaction) holds
// the replicas' compaction off the revision it reads, however long the read takes: before,
// a read longer than the compaction interval failed with ErrCompacted and started over,
// for ever, and the control plane stood still.
func TestEtcdStoreCompactionWaitsForARead(t *testing.T) {
	cli := etcdClient(t)
	prefix := newEtcdPrefix()
	c := storetest.Config{History: 100, WatchBuffer: 100}
	a := openEtcdStore(t, cli, prefix, c, orchestrator.WithEtcdCompaction(time.Second))
	defer a.Close()
	b := openEtcdStore(t, cli, prefix, c, orchestrator.WithEtcdCompaction(0))
	defer b.Close()
	for i := range 10 {
		createTask(t, b, fmt.Sprintf("web.%d", i))
	}
	// a's watch falls behind, as when it missed compacted revisions; writes go on while a
	// reads: each compaction round has a newer revision to go to.
	release := orchestrator.HoldEtcdWatch(a)
	stop, written := make(chan struct{}), make(chan int)
	go func() {
		n := 0
		defer func() { written <- n }()
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			createTask(t, b, fmt.Sprintf("more.%d", n))
			n++
		}
	}()
	var pages atomic.Int64
	orchestrator.SlowEtcdLoad(a, 2, func() { pages.Add(1); time.Sleep(600 * time.Millisecond) })
	began := time.Now()
	err := orchestrator.ReloadEtcdStore(a)
	took := time.Since(began)
	orchestrator.SlowEtcdLoad(a, 0, nil)
	release()
	if err != nil {
		close(stop)
		<-written
		t.Fatalf("read the store again in %v (%d requests) with a compaction each second: %v", took, pages.Load(), err)
	}
	if took < 3*time.Second {
		t.Fatalf("the read took %v: too short to show anything, with compaction rounds a second apart", took)
	}
	// And compaction goes on once the read is done.
	after := a.Compacted()
	deadline := time.Now().Add(15 * time.Second)
	for a.Compacted() == after {
		if time.Now().After(deadline) {
			t.Fatalf("no compaction after the read ended (last to etcd revision %d)", after)
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	n := <-written
	if err := a.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := readTask(t, a, fmt.Sprintf("more.%d", i)); err != nil {
			t.Errorf("after the read: %v", err)
		}
	}
}

func TestWithEtcdCompactionInvalid(t *testing.T) {
	for _, d := range []time.Duration{-time.Second, time.Millisecond} {
		_, err := orchestrator.OpenEtcdStore(context.Background(), &clientv3.Client{}, orchestrator.WithEtcdCompaction(d))
		if !errors.Is(err, dao.ErrInvalid) || !strings.Contains(err.Error(), "WithEtcdCompaction") {
			t.Errorf("WithEtcdCompaction(%v): %v, want ErrInvalid naming the option", d, err)
		}
	}
}

// What no store wrote under the prefix (a value that does not decode, a key written
// with etcdctl) crashes nothing: the store leaves it out and goes on, and so does a
// store opened over it.
func TestEtcdStoreForeignValues(t *testing.T) {
	cli := etcdClient(t)
	prefix := newEtcdPrefix()
	s := openEtcdStore(t, cli, prefix, storetest.Config{History: 100, WatchBuffer: 100})
	defer s.Close()
	ctx := context.Background()
	for k, v := range map[string]string{"t/bad": "garbage", "s/web": `{"id":"other"}`, "n/x": `[]`, "zzz": "x"} {
		if _, err := cli.Put(ctx, prefix+k, v); err != nil {
			t.Fatal(err)
		}
	}
	createTask(t, s, "web.1")
	if _, err := readTask(t, s, "bad"); !errors.Is(err, orchestrator.ErrNotFound) {
		t.Errorf("a task that does not decode: %v, want ErrNotFound", err)
	}
	again := openEtcdStore(t, cli, prefix, storetest.Config{History: 100, WatchBuffer: 100})
	defer again.Close()
	if _, err := readTask(t, again, "web.1"); err != nil {
		t.Errorf("reopened over foreign values: %v", err)
	}
	// The revision key itself damaged: a clear error, no crash.
	if _, err := cli.Put(ctx, prefix+"meta/rev", "{"); err != nil {
		t.Fatal(err)
	}
	octx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := orchestrator.OpenEtcdStore(octx, cli, orchestrator.WithEtcdPrefix(prefix))
	if !errors.Is(err, orchestrator.ErrCorrupt) || !strings.Contains(err.Error(), "meta/rev") {
		t.Errorf("open over a damaged revision key: %v, want ErrCorrupt naming the key", err)
	}
}

// An etcd that cannot be reached: OpenEtcdStore retries until its context is done, then
// fails with ErrUnavailable.
func TestEtcdStoreUnreachable(t *testing.T) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:1"}, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	_, err = orchestrator.OpenEtcdStore(ctx, cli, orchestrator.WithEtcdTimeout(300*time.Millisecond),
		orchestrator.WithStoreLogger(slog.New(slog.DiscardHandler)))
	if !errors.Is(err, orchestrator.ErrUnavailable) || !errdefs.IsUnavailable(err) {
		t.Errorf("open with etcd unreachable: %v, want ErrUnavailable", err)
	}
}

// One replica leads at a time; when its lease ends another takes over, and the old
// leader's fenced writes are refused, while the new one's go through.
func TestEtcdStoreLeadership(t *testing.T) {
	cli := etcdClient(t)
	prefix := newEtcdPrefix()
	cfg := storetest.Config{History: 100, WatchBuffer: 100}
	a := openEtcdStore(t, cli, prefix, cfg)
	defer a.Close()
	b := openEtcdStore(t, cli, prefix, cfg)
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := a.Leader(ctx); !errors.Is(err, orchestrator.ErrNoLeader) {
		t.Errorf("Leader before any campaign: %v, want ErrNoLeader", err)
	}
	la, err := a.Campaign(ctx, "replica-a:7450", orchestrator.WithLeaseTTL(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := b.Leader(ctx); err != nil || v != "replica-a:7450" {
		t.Errorf("Leader = %q, %v; want replica-a:7450", v, err)
	}
	won := make(chan *orchestrator.Leadership, 1)
	go func() {
		lb, err := b.Campaign(ctx, "replica-b:7450", orchestrator.WithLeaseTTL(time.Second))
		if err != nil {
			t.Error(err)
		}
		won <- lb
	}()
	createTask(t, la.Store(), "web.1")
	select {
	case <-won:
		t.Fatal("b leads while a does")
	case <-time.After(300 * time.Millisecond):
	}
	// a's lease ends, as when it stops renewing it.
	resp, err := cli.Get(ctx, la.Key())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("leader key: %v %v", resp, err)
	}
	if _, err := cli.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	var lb *orchestrator.Leadership
	select {
	case lb = <-won:
	case <-ctx.Done():
		t.Fatal("b did not take over")
	}
	defer lb.Resign(context.Background())
	select {
	case <-la.Done():
	case <-time.After(5 * time.Second):
		t.Error("a's leadership not done after its lease ended")
	}
	err = la.Store().Update(ctx, "old leader", func(tx orchestrator.Tx) error {
		return tx.CreateTask(&orchestrator.Task{Task: dao.Task{ID: "web.2", ServiceID: "web"}})
	})
	if !errors.Is(err, orchestrator.ErrFenced) {
		t.Errorf("the old leader's write: %v, want ErrFenced", err)
	}
	createTask(t, lb.Store(), "web.3")
	if v, err := a.Leader(ctx); err != nil || v != "replica-b:7450" {
		t.Errorf("Leader = %q, %v; want replica-b:7450", v, err)
	}
}

// The orchestrator runs over an etcd store as over any: a service of many times etcd's
// transaction limit is placed and run, and moved off a lost node.
func TestOrchestratorOnEtcd(t *testing.T) {
	cli := etcdClient(t)
	store := openEtcdStore(t, cli, newEtcdPrefix(), storetest.Config{History: 10_000, WatchBuffer: 10_000})
	s := newSimWith(t, simConfig{nodes: 8, store: store})
	const n = 250 // 8 nodes of 40 tasks: the 7 left hold them all
	s.runThenLoseANode(n)
}
