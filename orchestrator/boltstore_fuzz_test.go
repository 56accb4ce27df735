package orchestrator_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/opendao/dao"
	"github.com/opendao/dao/orchestrator"
)

// FuzzOpenBoltStore damages a store's file by a list of operations, and checks that
// OpenBoltStore either fails or opens a store that works: it reads, takes a write, and
// opens again with that write. A crash (SIGSEGV or SIGBUS of the mmap included) fails the
// fuzz run.
//
// The input is a list of 5-byte operations on a store file made the same way each time:
// a kind, an offset (24 bits, little-endian, modulo the file's size) and an argument;
// see fuzzDamage. Run it with
//
//	go test ./orchestrator/ -run '^$' -fuzz FuzzOpenBoltStore -fuzztime 60s
func FuzzOpenBoltStore(f *testing.F) {
	base := fuzzBase(f)
	l := readBoltLayout(f, base)
	ps := l.pageSize
	op := func(kind byte, off int, arg byte) []byte {
		return []byte{kind, byte(off), byte(off >> 8), byte(off >> 16), arg}
	}
	f.Add([]byte{})
	f.Add(op(0, bfMetaOff+8, 0xff))                                   // page size of meta 0
	f.Add(slices.Concat(op(0, bfMetaOff, 1), op(0, ps+bfMetaOff, 1))) // both magics
	f.Add(op(2, len(base)/2, 0))                                      // cut in half
	f.Add(op(2, 2*ps, 0))                                             // two pages left
	f.Add(slices.Concat(op(3, bfMetaHWMOff, 200), op(4, 0, 0)))       // high water mark, checksum fixed
	f.Add(slices.Concat(op(3, ps+bfMetaRootOff, 1), op(4, 0, 0)))     // root at a meta page
	f.Add(op(0, int(l.taskRoot)*ps+bfPageHeader+bfElemSize+8, 0x40))  // a branch element's child
	f.Add(op(3, int(l.taskRoot)*ps+bfPageHeader+bfElemSize+8, byte(l.taskRoot)))
	f.Add(op(0, int(l.taskLeaf)*ps+10, 0x80))             // a leaf's count
	f.Add(op(0, int(l.taskLeaf)*ps+bfPageHeader+4, 0x10)) // a leaf element's position
	f.Add(op(0, int(l.taskLeaf)*ps+ps-20, 0x20))          // inside a record
	f.Add(op(1, int(l.taskLeaf)*ps+bfPageHeader, 1))      // a record marked as a bucket

	f.Fuzz(func(t *testing.T, ops []byte) {
		b := fuzzDamage(bytes.Clone(base), ops)
		path := filepath.Join(fuzzDir(t), "state.db")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		quiet := orchestrator.WithStoreLogger(slog.New(slog.DiscardHandler))
		s, err := orchestrator.OpenBoltStore(path, quiet)
		if err != nil {
			return // refused, and did not crash
		}
		ctx := context.Background()
		var tasks []orchestrator.Task
		var rev uint64
		err = s.View(ctx, func(tx orchestrator.ReadTx) error {
			rev = tx.Revision()
			for x := range tx.Tasks() {
				tasks = append(tasks, x)
			}
			for range tx.Services() {
			}
			for range tx.Nodes() {
			}
			return nil
		})
		if err != nil {
			t.Fatalf("View: %v", err)
		}
		slices.SortFunc(tasks, func(a, b orchestrator.Task) int { return strings.Compare(a.ID, b.ID) })
		err = s.Update(ctx, "fuzz", func(tx orchestrator.Tx) error {
			if len(tasks) > 0 {
				if err := tx.DeleteTask(tasks[0].ID, 0); err != nil {
					return err
				}
			}
			if len(tasks) > 1 {
				tasks[1].Status.Message = "fuzzed"
				if err := tx.UpdateTask(&tasks[1]); err != nil {
					return err
				}
			}
			return tx.CreateNode(&orchestrator.Node{Node: dao.Node{ID: "fuzz-node"}})
		})
		if err != nil {
			t.Fatalf("a store that opened does not take a write: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		s, err = orchestrator.OpenBoltStore(path, quiet)
		if err != nil {
			t.Fatalf("a store that opened and took a write does not open again: %v", err)
		}
		defer s.Close()
		if got := boltRevision(t, s); got != rev+1 {
			t.Errorf("revision after reopening = %d, want %d", got, rev+1)
		}
		if _, err := boltGetNode(t, s, "fuzz-node"); err != nil {
			t.Errorf("the node written before reopening: %v", err)
		}
		if got, want := len(boltTaskIDs(t, s)), max(len(tasks)-1, 0); got != want {
			t.Errorf("%d tasks after reopening, want %d", got, want)
		}
	})
}

// fuzzDamage applies the operations of ops to the file b. Each is 5 bytes: kind, offset
// (24 bits, modulo len(b)), argument. Kinds, modulo 5: 0 xors the byte at the offset with
// the argument (0xff if 0), 1 sets it, 2 cuts the file at the offset, 3 writes the
// argument there as a little-endian uint64, 4 recomputes both meta pages' checksums (so
// that changed meta fields get past them).
func fuzzDamage(b []byte, ops []byte) []byte {
	for ; len(ops) >= 5 && len(b) > 0; ops = ops[5:] {
		off := int(uint32(ops[1])|uint32(ops[2])<<8|uint32(ops[3])<<16) % len(b)
		arg := ops[4]
		switch ops[0] % 5 {
		case 0:
			b[off] ^= cmp.Or(arg, 0xff)
		case 1:
			b[off] = arg
		case 2:
			b = b[:off]
		case 3:
			var v [8]byte
			binary.LittleEndian.PutUint64(v[:], uint64(arg))
			copy(b[off:], v[:])
		case 4:
			if len(b) >= bfMetaSumOff+8 {
				fixBoltMetaSum(b, 0)
				if ps := int(boltLE.Uint32(b[bfMetaPSizeOff:])); ps > 0 && len(b) >= ps+bfMetaSumOff+8 {
					fixBoltMetaSum(b, ps)
				}
			}
		}
	}
	return b
}

// fuzzDir returns a directory for one input: in memory when the machine has /dev/shm,
// as the store syncs each write.
func fuzzDir(t *testing.T) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		dir, err := os.MkdirTemp("/dev/shm", "dao-fuzz-bolt")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// fuzzBase returns the bytes of a store's file, the same each time: it is written by bbolt
// in one transaction, in a new file, with fixed content, as OpenBoltStore lays it out.
func fuzzBase(t testing.TB) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "base.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	spec := dao.ServiceSpec{Name: "web", Replicas: 60, Container: dao.ContainerSpec{Image: "registry.example.com/web:1"}}
	records := map[string]map[string]any{"services": {}, "tasks": {}, "nodes": {}}
	records["services"]["web"] = orchestrator.Service{ID: "web", Version: 1, Spec: spec, CreatedAt: at, Revision: 1}
	for i := range 60 {
		id := fmt.Sprintf("web.%02d", i)
		records["tasks"][id] = orchestrator.Task{Revision: 2, Task: dao.Task{
			ID: id, ServiceID: "web", ServiceVersion: 1, Slot: i + 1, NodeID: "n1", Spec: spec.Container,
			DesiredState: dao.TaskRunning, CreatedAt: at,
			Status: dao.TaskStatus{State: dao.TaskRunning, Message: "started", Timestamp: at},
		}}
	}
	for _, id := range []string{"n1", "n2"} {
		records["nodes"][id] = orchestrator.Node{Revision: 3, Node: dao.Node{ID: id, Address: "10.0.0.1"}}
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucket([]byte("meta"))
		if err != nil {
			return err
		}
		var rev [8]byte
		binary.BigEndian.PutUint64(rev[:], 3)
		if err := errors.Join(meta.Put([]byte("format"), []byte("1")), meta.Put([]byte("id"), []byte("0123456789abcdef")),
			meta.Put([]byte("revision"), rev[:])); err != nil {
			return err
		}
		for _, name := range []string{"services", "tasks", "nodes"} {
			b, err := tx.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			for id, obj := range records[name] {
				v, err := json.Marshal(obj)
				if err != nil {
					return err
				}
				if err := b.Put([]byte(id), v); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFuzzBaseIsTheSameEachTime(t *testing.T) {
	a, b := fuzzBase(t), fuzzBase(t)
	if !bytes.Equal(a, b) {
		t.Fatal("fuzzBase made two different files: the fuzz corpus would not replay")
	}
}
