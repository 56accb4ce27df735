package orchestrator_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/opendao/dao"
	"github.com/opendao/dao/orchestrator"
)

// editBolt changes a store's file with bbolt itself, as an older version of the program,
// or boltDamage that keeps the file sound, would leave it.
func editBolt(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func boltPut(tx *bolt.Tx, bucket, key, value string) error {
	return tx.Bucket([]byte(bucket)).Put([]byte(key), []byte(value))
}

// boltLogBuffer returns a logger that writes to the returned buffer.
func boltLogBuffer() (*slog.Logger, *bytes.Buffer) {
	var b bytes.Buffer
	return slog.New(slog.NewTextHandler(&b, nil)), &b
}

func TestBoltStoreRecordsThatDoNotDecode(t *testing.T) {
	path, rev := boltFixture(t, t.TempDir(), 20)
	bad := []struct{ bucket, key, value, why string }{
		{"tasks", "t-garbage", "\x00\x01 garbage", "invalid character"},
		{"tasks", "t-array", `[1, 2, 3]`, "cannot unmarshal array"},
		{"tasks", "t-wrong-type", `{"id": "t-wrong-type", "slot": "three"}`, "cannot unmarshal string"},
		{"tasks", "t-other-key", `{"id": "web.0001", "serviceId": "web"}`, `it is the object "web.0001", not "t-other-key"`},
		{"services", "svc-nan", `{"id": "svc-nan", "spec": {"name": "svc-nan", "update": {"maxFailureRatio": NaN}}}`, "invalid character 'N'"},
		{"services", "svc-inf", `{"id": "svc-inf", "spec": {"name": "svc-inf", "update": {"maxFailureRatio": 1e999}}}`, "cannot unmarshal number 1e999"},
		{"nodes", "n-null", `null`, `it is the object "", not "n-null"`},
		{"nodes", "n-truncated", `{"id": "n-truncated", "addr`, "unexpected end of JSON input"},
		{"tasks", "t-bucket", "", "a bucket, not a record"},
	}
	// A service whose spec is invalid, as an older version's rules allowed: it decodes, so
	// it is loaded as it is (the store does not validate specs).
	invalid := orchestrator.Service{ID: "svc-invalid", Version: 1, Revision: 1,
		Spec: dao.ServiceSpec{Name: "not a valid name!", Replicas: -3, Update: dao.UpdatePolicy{MaxFailureRatio: 7}}}
	editBolt(t, path, func(tx *bolt.Tx) error {
		for _, r := range bad {
			var err error
			if r.value == "" {
				_, err = tx.Bucket([]byte(r.bucket)).CreateBucket([]byte(r.key))
			} else {
				err = boltPut(tx, r.bucket, r.key, r.value)
			}
			if err != nil {
				return err
			}
		}
		b, err := json.Marshal(invalid)
		if err != nil {
			return err
		}
		return boltPut(tx, "services", invalid.ID, string(b))
	})

	log, logged := boltLogBuffer()
	s, err := orchestrator.OpenBoltStore(path, orchestrator.WithStoreLogger(log))
	if err != nil {
		t.Fatalf("OpenBoltStore with records that do not decode: %v; want it to open without them", err)
	}
	t.Logf("log:\n%s", logged)
	// Everything else is there.
	var tasks, services, nodes []string
	var gotRev uint64
	var gotInvalid orchestrator.Service
	s.View(context.Background(), func(tx orchestrator.ReadTx) error {
		gotRev = tx.Revision()
		for x := range tx.Tasks() {
			tasks = append(tasks, x.ID)
		}
		for x := range tx.Services() {
			services = append(services, x.ID)
		}
		for x := range tx.Nodes() {
			nodes = append(nodes, x.ID)
		}
		gotInvalid, _ = tx.Service("svc-invalid")
		return nil
	})
	slices.Sort(services)
	if len(tasks) != 20 || !slices.Equal(services, []string{"svc-invalid", "web"}) || !slices.Equal(nodes, []string{"n1"}) || gotRev != rev {
		t.Errorf("store opened with %d tasks, services %v, nodes %v at revision %d; want 20 tasks, [svc-invalid web], [n1] at %d",
			len(tasks), services, nodes, gotRev, rev)
	}
	if diff := cmp.Diff(invalid, gotInvalid); diff != "" {
		t.Errorf("service with an invalid spec (-stored +loaded):\n%s", diff)
	}
	if !strings.Contains(logged.String(), "not valid") || !strings.Contains(logged.String(), "svc-invalid") {
		t.Errorf("the log does not report the service with an invalid spec:\n%s", logged)
	}
	// Each bad record is reported: by Quarantined, and in the log, naming bucket and key.
	q := s.Quarantined()
	if len(q) != len(bad) {
		t.Errorf("Quarantined() has %d records, want %d: %v", len(q), len(bad), q)
	}
	for _, r := range bad {
		i := slices.IndexFunc(q, func(e *orchestrator.RecordError) bool { return e.Bucket == r.bucket && e.Key == r.key })
		if i < 0 {
			t.Errorf("Quarantined() lacks %s/%s", r.bucket, r.key)
			continue
		}
		e := q[i]
		if !errors.Is(e, orchestrator.ErrCorrupt) || e.File != path || !strings.Contains(e.Error(), r.why) || !strings.Contains(e.Error(), r.key) {
			t.Errorf("record error %q (file %q): want ErrCorrupt, naming %s, %q and saying %q", e, e.File, path, r.key, r.why)
		}
		if !strings.Contains(logged.String(), "key="+r.key) {
			t.Errorf("the log does not name %s/%s:\n%s", r.bucket, r.key, logged)
		}
	}
	// The store takes writes, after one bbolt refuses too, and of the quarantined IDs.
	boltWriteRefused(t, s)
	err = s.Update(context.Background(), "test", func(tx orchestrator.Tx) error {
		return tx.CreateNode(&orchestrator.Node{Node: dao.Node{ID: "n-null"}})
	})
	if err != nil {
		t.Errorf("creating a node with the ID of a record set aside: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The records are kept, unchanged, in the bucket quarantine.
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *bolt.Tx) error {
		for _, r := range bad {
			if r.key != "n-null" && (tx.Bucket([]byte(r.bucket)).Get([]byte(r.key)) != nil || tx.Bucket([]byte(r.bucket)).Bucket([]byte(r.key)) != nil) {
				t.Errorf("%s/%s is still in its bucket", r.bucket, r.key)
			}
			q := tx.Bucket([]byte("quarantine"))
			if q == nil || q.Bucket([]byte(r.bucket)) == nil {
				t.Errorf("no bucket quarantine/%s", r.bucket)
				continue
			}
			if r.value == "" {
				if q.Bucket([]byte(r.bucket)).Bucket([]byte(r.key)) == nil {
					t.Errorf("quarantine/%s/%s is not the bucket that was there", r.bucket, r.key)
				}
			} else if got := q.Bucket([]byte(r.bucket)).Get([]byte(r.key)); string(got) != r.value {
				t.Errorf("quarantine/%s/%s = %q, want %q", r.bucket, r.key, got, r.value)
			}
		}
		return nil
	})
	db.Close()

	// Reopened, the store reports them again (from the quarantine), but logs them once.
	log, logged = boltLogBuffer()
	s, err = orchestrator.OpenBoltStore(path, orchestrator.WithStoreLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := len(s.Quarantined()); got != len(bad) {
		t.Errorf("after reopening, Quarantined() has %d records, want %d", got, len(bad))
	}
	if strings.Contains(logged.String(), "t-garbage") || !strings.Contains(logged.String(), "records=9") {
		t.Errorf("after reopening, the log should count the records set aside before, not list them again:\n%s", logged)
	}
	if _, err := boltGetNode(t, s, "n-null"); err != nil {
		t.Errorf("node written after the record was set aside: %v", err)
	}
}

func TestBoltStoreRevisionRecord(t *testing.T) {
	t.Run("damaged", func(t *testing.T) {
		path, _ := boltFixture(t, t.TempDir(), 1)
		editBolt(t, path, func(tx *bolt.Tx) error { return boltPut(tx, "meta", "revision", "abc") })
		_, err := orchestrator.OpenBoltStore(path)
		if !errors.Is(err, orchestrator.ErrCorrupt) || !strings.Contains(err.Error(), "revision") || !strings.Contains(err.Error(), path) {
			t.Fatalf("OpenBoltStore with a revision record of 3 bytes: %v; want ErrCorrupt naming the file and the revision", err)
		}
	})
	t.Run("behind the objects", func(t *testing.T) {
		path, rev := boltFixture(t, t.TempDir(), 1)
		editBolt(t, path, func(tx *bolt.Tx) error {
			var b [8]byte
			binary.BigEndian.PutUint64(b[:], 1)
			return boltPut(tx, "meta", "revision", string(b[:]))
		})
		log, logged := boltLogBuffer()
		s, err := orchestrator.OpenBoltStore(path, orchestrator.WithStoreLogger(log))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if got := boltRevision(t, s); got != rev {
			t.Errorf("revision = %d, want %d, the newest object's: revisions do not go down", got, rev)
		}
		if !strings.Contains(logged.String(), "behind") {
			t.Errorf("no warning in the log:\n%s", logged)
		}
	})
}

func TestWithStoreLoggerNil(t *testing.T) {
	_, err := orchestrator.OpenBoltStore(filepath.Join(t.TempDir(), "state.db"), orchestrator.WithStoreLogger(nil))
	if !errors.Is(err, dao.ErrInvalid) {
		t.Errorf("WithStoreLogger(nil): %v, want dao.ErrInvalid", err)
	}
}

func boltRevision(t *testing.T, s orchestrator.Store) uint64 {
	t.Helper()
	var rev uint64
	if err := s.View(context.Background(), func(tx orchestrator.ReadTx) error { rev = tx.Revision(); return nil }); err != nil {
		t.Fatal(err)
	}
	return rev
}

func boltGetNode(t *testing.T, s orchestrator.Store, id string) (orchestrator.Node, error) {
	t.Helper()
	var n orchestrator.Node
	var err error
	if verr := s.View(context.Background(), func(tx orchestrator.ReadTx) error { n, err = tx.Node(id); return nil }); verr != nil {
		t.Fatal(verr)
	}
	return n, err
}
