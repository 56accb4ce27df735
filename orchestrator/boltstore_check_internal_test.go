package orchestrator

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/opendao/dao"
)

// TestCheckBoltFileAcceptsBboltFiles writes bbolt files the way bbolt's users do, with
// random keys and values of all sizes (overflow pages included), nested and inline
// buckets, deletes that merge pages and buckets that go, in many transactions, and checks
// that checkBoltFile finds nothing wrong with any of them: the check must not refuse a
// sound file.
func TestCheckBoltFileAcceptsBboltFiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts bolt.Options
	}{
		{"no freelist", bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType}},
		{"freelist", bolt.Options{FreelistType: bolt.FreelistArrayType}},
		{"small pages", bolt.Options{NoFreelistSync: true, PageSize: 1024}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(len(tc.name))))
			path := filepath.Join(t.TempDir(), "db")
			db, err := bolt.Open(path, 0o600, &tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { db.Close() }()
			names := []string{"a", "b", "c"}
			for txn := range 120 {
				err := db.Update(func(tx *bolt.Tx) error {
					for range rng.IntN(200) + 1 {
						name := []byte(names[rng.IntN(len(names))])
						b, err := tx.CreateBucketIfNotExists(name)
						if err != nil {
							return err
						}
						if rng.IntN(4) == 0 { // a nested bucket, small (inline) or not
							if b, err = b.CreateBucketIfNotExists([]byte(fmt.Sprintf("sub%d", rng.IntN(5)))); err != nil {
								return err
							}
						}
						key := []byte(fmt.Sprintf("k%05d", rng.IntN(3000)))
						switch r := rng.IntN(10); {
						case r < 6:
							size := rng.IntN(300)
							if rng.IntN(50) == 0 {
								size = rng.IntN(20000) // overflow pages
							}
							err = b.Put(key, bytes.Repeat([]byte{byte(r)}, size))
						case r < 9:
							err = b.Delete(key)
						default:
							if k, _ := b.Cursor().First(); k != nil {
								c := b.Cursor()
								for k, v := c.First(); k != nil && rng.IntN(3) > 0; k, v = c.Next() {
									if v != nil {
										if err := c.Delete(); err != nil {
											return err
										}
									}
								}
							}
						}
						if err != nil {
							return err
						}
					}
					if txn%40 == 39 {
						return tx.DeleteBucket([]byte(names[rng.IntN(len(names))]))
					}
					return nil
				})
				if err != nil && err != bolt.ErrBucketNotFound {
					t.Fatal(err)
				}
				if txn%10 == 9 {
					f, err := os.Open(path)
					if err != nil {
						t.Fatal(err)
					}
					fi, _ := f.Stat()
					if _, err := checkBoltFile(f, fi.Size()); err != nil {
						t.Fatalf("after transaction %d: a file bbolt wrote fails the check: %v", txn, err)
					}
					f.Close()
				}
				if txn%30 == 29 { // bbolt rebuilds its freelist when it opens a file
					db.Close()
					if db, err = bolt.Open(path, 0o600, &tc.opts); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkOpenBoltStore measures opening a store of 100,000 tasks (about 60 MB), and the
// parts of it: the check of the file, bbolt's own Tx.Check (for comparison: the store does
// not run it), and bbolt's open (which, without a freelist in the file, walks every page
// to find the free ones).
func BenchmarkOpenBoltStore(b *testing.B) {
	path := filepath.Join(b.TempDir(), "state.db")
	s, err := OpenBoltStore(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := fillTasks(s, 100_000); err != nil {
		b.Fatal(err)
	}
	s.Close()
	fi, _ := os.Stat(path)
	b.Logf("file: %d MB", fi.Size()>>20)
	b.Run("OpenBoltStore", func(b *testing.B) {
		for b.Loop() {
			s, err := OpenBoltStore(path)
			if err != nil {
				b.Fatal(err)
			}
			s.Close()
		}
	})
	b.Run("checkBoltFile", func(b *testing.B) {
		f, _ := os.Open(path)
		defer f.Close()
		for b.Loop() {
			if _, err := checkBoltFile(f, fi.Size()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bolt.Open", func(b *testing.B) {
		for b.Loop() {
			db, err := bolt.Open(path, 0o600, boltOptions())
			if err != nil {
				b.Fatal(err)
			}
			db.Close()
		}
	})
	b.Run("bbolt.Tx.Check", func(b *testing.B) {
		db, err := bolt.Open(path, 0o600, boltOptions())
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		for b.Loop() {
			db.View(func(tx *bolt.Tx) error {
				for err := range tx.Check() {
					b.Fatal(err)
				}
				return nil
			})
		}
	})
}

func fillTasks(s *BoltStore, n int) error {
	return s.Update(context.Background(), "bench", func(tx Tx) error {
		for i := range n {
			err := tx.CreateTask(&Task{Task: dao.Task{
				ID: fmt.Sprintf("web.%06d", i), ServiceID: "web", ServiceVersion: 1, Slot: i + 1, NodeID: fmt.Sprintf("n%03d", i%500),
				Spec: dao.ContainerSpec{Image: "registry.example.com/web:1", Env: []string{"MODE=production", "LOG=info"},
					Resources: dao.Resources{MilliCPU: 100, Memory: 64 * dao.MiB}, Labels: map[string]string{"app": "web"}},
				DesiredState: dao.TaskRunning,
				Status:       dao.TaskStatus{State: dao.TaskRunning, Message: "started", Addresses: []string{"10.1.0.2"}},
			}})
			if err != nil {
				return err
			}
		}
		return nil
	})
}
