package orchestrator_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/orchestrator"
)

// The tests of this file damage bbolt files the ways disks, crashes and people do, and
// check that OpenBoltStore says so with an error instead of crashing or opening them as
// empty stores. Each open runs in a child process (the test binary run again with
// envOpenChild set), so that a SIGSEGV or SIGBUS of the mmap fails the test instead of
// killing the test binary.

// envOpenChild names the file the child process opens.
const envOpenChild = "DAO_TEST_BOLT_OPEN"

// boltChildMarker starts the line in which the child reports the outcome.
const boltChildMarker = "bolt-open-result: "

// boltOpenResult is what the child reports.
type boltOpenResult struct {
	Opened     bool   `json:"opened"`
	Err        string `json:"err,omitempty"`
	Corrupt    bool   `json:"corrupt"`
	Permission bool   `json:"permission"`
	Revision   uint64 `json:"revision"`
	Tasks      int    `json:"tasks"`
	// Wrote says whether a write after opening succeeded.
	Wrote bool `json:"wrote"`
}

// boltOpenChild opens the store at path in this process and prints the outcome for the
// parent.
func boltOpenChild(path string) {
	var r boltOpenResult
	s, err := orchestrator.OpenBoltStore(path)
	if err != nil {
		r.Err = err.Error()
		r.Corrupt = errors.Is(err, orchestrator.ErrCorrupt)
		r.Permission = errors.Is(err, fs.ErrPermission)
	} else {
		r.Opened = true
		_ = s.View(context.Background(), func(tx orchestrator.ReadTx) error {
			r.Revision = tx.Revision()
			for range tx.Tasks() {
				r.Tasks++
			}
			return nil
		})
		err := s.Update(context.Background(), "test", func(tx orchestrator.Tx) error {
			return tx.CreateNode(&orchestrator.Node{Node: dao.Node{ID: "after-open"}})
		})
		r.Wrote = err == nil
		if err != nil {
			r.Err = err.Error()
		}
		s.Close()
	}
	b, _ := json.Marshal(r)
	fmt.Printf("\n%s%s\n", boltChildMarker, b)
}

// runBoltOpenChild opens path in a child process and returns what it reported, failing the
// test if the child crashed. cred, when set, runs the child as another user.
func runBoltOpenChild(t *testing.T, exe, path string, cred *syscall.Credential) boltOpenResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^TestOpenBoltStoreCorrupt$", "-test.count=1")
	cmd.Env = append(os.Environ(), envOpenChild+"="+path)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := stdout.String()
	i := strings.LastIndex(out, boltChildMarker)
	if err != nil || i < 0 {
		t.Fatalf("opening %s crashed the process (%v):\nstdout:\n%s\nstderr:\n%s", path, err, boltTail(out), boltTail(stderr.String()))
	}
	line, _, _ := strings.Cut(out[i+len(boltChildMarker):], "\n")
	var r boltOpenResult
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("child's report %q: %v", line, err)
	}
	return r
}

func boltTail(s string) string {
	const most = 4000
	if len(s) > most {
		return "..." + s[len(s)-most:]
	}
	return s
}

// boltFixture writes a store with a service, enough tasks that the tasks bucket has a
// branch page over several leaf pages, and a node, in two transactions; it returns the
// file's path and the revision.
func boltFixture(t testing.TB, dir string, tasks int) (string, uint64) {
	t.Helper()
	path := filepath.Join(dir, "state.db")
	s, err := orchestrator.OpenBoltStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	spec := dao.ServiceSpec{Name: "web", Replicas: tasks, Container: dao.ContainerSpec{Image: "registry.example.com/web:1"}}
	err = s.Update(ctx, "test", func(tx orchestrator.Tx) error {
		if err := tx.CreateService(&orchestrator.Service{ID: "web", Spec: spec}); err != nil {
			return err
		}
		for i := range tasks {
			err := tx.CreateTask(&orchestrator.Task{Task: dao.Task{
				ID: fmt.Sprintf("web.%04d", i), ServiceID: "web", ServiceVersion: 1, Slot: i + 1,
				Spec: spec.Container, DesiredState: dao.TaskRunning,
				Status: dao.TaskStatus{State: dao.TaskPending, Message: "waiting for a node with enough memory"},
			}})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, "test", func(tx orchestrator.Tx) error {
		return tx.CreateNode(&orchestrator.Node{Node: dao.Node{ID: "n1", Address: "10.0.0.1"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	var rev uint64
	s.View(ctx, func(tx orchestrator.ReadTx) error { rev = tx.Revision(); return nil })
	return path, rev
}

// The bbolt file format, as far as these tests need it (go.etcd.io/bbolt's
// internal/common: page.go, meta.go, bucket.go).
const (
	bfPageHeader   = 16 // id u64, flags u16, count u16, overflow u32
	bfElemSize     = 16 // branch: pos u32, ksize u32, pgid u64; leaf: flags u32, pos u32, ksize u32, vsize u32
	bfMetaOff      = bfPageHeader
	bfMetaSumOff   = bfMetaOff + 56 // the checksum: FNV-64a of the 56 bytes before it
	bfBranchFlag   = 0x01
	bfLeafFlag     = 0x02
	bfBucketLeaf   = 0x01
	bfMetaTxidOff  = bfMetaOff + 48
	bfMetaRootOff  = bfMetaOff + 16
	bfMetaHWMOff   = bfMetaOff + 40
	bfMetaPSizeOff = bfMetaOff + 8
)

var boltLE = binary.LittleEndian

// boltLayout is what a test needs to know of a file to damage a given part of it.
type boltLayout struct {
	pageSize   int
	newestMeta int    // 0 or 1
	hwm        int    // the number of pages in use
	taskRoot   uint64 // the root page of the tasks bucket
	taskLeaf   uint64 // a leaf page of the tasks bucket
}

func readBoltLayout(t testing.TB, b []byte) boltLayout {
	t.Helper()
	var l boltLayout
	l.pageSize = int(boltLE.Uint32(b[bfMetaPSizeOff:]))
	ps := l.pageSize
	if boltLE.Uint64(b[ps+bfMetaTxidOff:]) > boltLE.Uint64(b[bfMetaTxidOff:]) {
		l.newestMeta = 1
	}
	root := boltLE.Uint64(b[l.newestMeta*ps+bfMetaRootOff:])
	l.hwm = int(boltLE.Uint64(b[l.newestMeta*ps+bfMetaHWMOff:]))
	page := func(id uint64) []byte { return b[int(id)*ps:] }
	p := page(root)
	if p[8] != bfLeafFlag {
		t.Fatalf("root bucket page %d has flags %x, want a leaf", root, p[8])
	}
	for i := range int(boltLE.Uint16(p[10:])) {
		e := p[bfPageHeader+i*bfElemSize:]
		pos, ks := boltLE.Uint32(e[4:]), boltLE.Uint32(e[8:])
		if string(e[pos:pos+ks]) == "tasks" {
			l.taskRoot = boltLE.Uint64(e[pos+ks:])
		}
	}
	tp := page(l.taskRoot)
	if l.taskRoot == 0 || tp[8] != bfBranchFlag {
		t.Fatalf("tasks bucket root page %d is not a branch page: make more tasks", l.taskRoot)
	}
	l.taskLeaf = boltLE.Uint64(tp[bfPageHeader+8:])
	return l
}

// fixBoltMetaSum recomputes the checksum of the meta page at off.
func fixBoltMetaSum(b []byte, off int) {
	h := fnv.New64a()
	h.Write(b[off+bfMetaOff : off+bfMetaSumOff])
	boltLE.PutUint64(b[off+bfMetaSumOff:], h.Sum64())
}

// boltDamage is one way to damage a store file, given its bytes; it returns the new bytes.
type boltDamage func(t testing.TB, b []byte, l boltLayout) []byte

func flipBytes(b []byte, offs ...int) {
	for _, o := range offs {
		b[o] ^= 0xff
	}
}

func TestOpenBoltStoreCorrupt(t *testing.T) {
	if p := os.Getenv(envOpenChild); p != "" {
		boltOpenChild(p)
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	master, rev := boltFixture(t, t.TempDir(), 300)
	good, err := os.ReadFile(master)
	if err != nil {
		t.Fatal(err)
	}
	layout := readBoltLayout(t, good)
	ps := layout.pageSize
	meta := func(i int) int { return i * ps }
	truncate := func(n func(size int) int) boltDamage {
		return func(_ testing.TB, b []byte, _ boltLayout) []byte { return b[:n(len(b))] }
	}

	tests := []struct {
		name   string
		damage boltDamage
		// want is the outcome: "corrupt" (an error wrapping ErrCorrupt), "opens" (as it
		// was) or "previous" (opens, at the transaction before the last).
		want string
	}{
		{"empty file", truncate(func(int) int { return 0 }), "corrupt"},
		{"one page", truncate(func(int) int { return ps }), "corrupt"},
		{"two pages", truncate(func(int) int { return 2 * ps }), "corrupt"},
		{"half", truncate(func(n int) int { return n / 2 }), "corrupt"},
		{"last page in use cut short", truncate(func(int) int { return layout.hwm*ps - ps/2 }), "corrupt"},
		{"unused tail cut off", truncate(func(int) int { return layout.hwm * ps }), "opens"},
		{"text file", func(testing.TB, []byte, boltLayout) []byte {
			return bytes.Repeat([]byte("not a bbolt file\n"), 1000)
		}, "corrupt"},
		{"garbage on the branch page", func(_ testing.TB, b []byte, l boltLayout) []byte {
			p := b[int(l.taskRoot)*ps:][:ps]
			for i := range p {
				p[i] = byte(i*7 + 13)
			}
			return b
		}, "corrupt"},
		{"garbage on a leaf page", func(_ testing.TB, b []byte, l boltLayout) []byte {
			p := b[int(l.taskLeaf)*ps:][:ps]
			for i := range p {
				p[i] = byte(i*31 + 5)
			}
			return b
		}, "corrupt"},
		{"zeros on the branch page", func(_ testing.TB, b []byte, l boltLayout) []byte {
			clear(b[int(l.taskRoot)*ps:][:ps])
			return b
		}, "corrupt"},
		{"flipped bytes in both meta pages", func(_ testing.TB, b []byte, _ boltLayout) []byte {
			flipBytes(b, meta(0)+bfMetaOff+20, meta(1)+bfMetaOff+20)
			return b
		}, "corrupt"},
		{"wrong magic", func(_ testing.TB, b []byte, _ boltLayout) []byte {
			boltLE.PutUint32(b[meta(0)+bfMetaOff:], 0xdeadbeef)
			boltLE.PutUint32(b[meta(1)+bfMetaOff:], 0xdeadbeef)
			fixBoltMetaSum(b, meta(0))
			fixBoltMetaSum(b, meta(1))
			return b
		}, "corrupt"},
		{"high water mark past the end, checksum fixed", func(_ testing.TB, b []byte, l boltLayout) []byte {
			m := meta(l.newestMeta)
			boltLE.PutUint64(b[m+bfMetaHWMOff:], boltLE.Uint64(b[m+bfMetaHWMOff:])+1000)
			fixBoltMetaSum(b, m)
			return b
		}, "corrupt"},
		{"root past the high water mark, checksum fixed", func(_ testing.TB, b []byte, l boltLayout) []byte {
			m := meta(l.newestMeta)
			boltLE.PutUint64(b[m+bfMetaRootOff:], boltLE.Uint64(b[m+bfMetaHWMOff:])+5)
			fixBoltMetaSum(b, m)
			return b
		}, "corrupt"},
		{"odd page size, checksum fixed", func(_ testing.TB, b []byte, _ boltLayout) []byte {
			for i := range 2 {
				boltLE.PutUint32(b[meta(i)+bfMetaPSizeOff:], 100)
				fixBoltMetaSum(b, meta(i))
			}
			return b
		}, "corrupt"},
		{"flipped bytes in the newest meta page", func(_ testing.TB, b []byte, l boltLayout) []byte {
			flipBytes(b, meta(l.newestMeta)+bfMetaOff+30)
			return b
		}, "previous"},
		{"branch element points past the end", func(_ testing.TB, b []byte, l boltLayout) []byte {
			p := int(l.taskRoot) * ps
			flipBytes(b, p+bfPageHeader+bfElemSize+8+3) // a byte of the second element's pgid
			return b
		}, "corrupt"},
		{"branch element points at itself", func(_ testing.TB, b []byte, l boltLayout) []byte {
			p := int(l.taskRoot) * ps
			boltLE.PutUint64(b[p+bfPageHeader+bfElemSize+8:], l.taskRoot)
			return b
		}, "corrupt"},
		{"branch element points at a meta page", func(_ testing.TB, b []byte, l boltLayout) []byte {
			p := int(l.taskRoot) * ps
			boltLE.PutUint64(b[p+bfPageHeader+bfElemSize+8:], 1)
			return b
		}, "corrupt"},
		{"flipped count of the branch page", func(_ testing.TB, b []byte, l boltLayout) []byte {
			flipBytes(b, int(l.taskRoot)*ps+11)
			return b
		}, "corrupt"},
		{"flipped key size in a branch element", func(_ testing.TB, b []byte, l boltLayout) []byte {
			flipBytes(b, int(l.taskRoot)*ps+bfPageHeader+4+2)
			return b
		}, "corrupt"},
		{"flipped page id of a leaf page", func(_ testing.TB, b []byte, l boltLayout) []byte {
			flipBytes(b, int(l.taskLeaf)*ps+2)
			return b
		}, "corrupt"},
		{"flipped flags of a leaf page", func(_ testing.TB, b []byte, l boltLayout) []byte {
			flipBytes(b, int(l.taskLeaf)*ps+8)
			return b
		}, "corrupt"},
		{"flipped overflow of a leaf page", func(_ testing.TB, b []byte, l boltLayout) []byte {
			flipBytes(b, int(l.taskLeaf)*ps+14)
			return b
		}, "corrupt"},
		{"flipped value size in a leaf element", func(_ testing.TB, b []byte, l boltLayout) []byte {
			flipBytes(b, int(l.taskLeaf)*ps+bfPageHeader+12+2)
			return b
		}, "corrupt"},
		{"flipped position in a leaf element", func(_ testing.TB, b []byte, l boltLayout) []byte {
			flipBytes(b, int(l.taskLeaf)*ps+bfPageHeader+4+1)
			return b
		}, "corrupt"},
		{"leaf keys out of order", func(_ testing.TB, b []byte, l boltLayout) []byte {
			// Swap the first two elements' headers: their keys then go down.
			e := b[int(l.taskLeaf)*ps+bfPageHeader:]
			var a [bfElemSize]byte
			copy(a[:], e[:bfElemSize])
			copy(e[:bfElemSize], e[bfElemSize:2*bfElemSize])
			copy(e[bfElemSize:2*bfElemSize], a[:])
			// Positions are relative to each element: fix them up.
			boltLE.PutUint32(e[4:], boltLE.Uint32(e[4:])+bfElemSize)
			boltLE.PutUint32(e[bfElemSize+4:], boltLE.Uint32(e[bfElemSize+4:])-bfElemSize)
			return b
		}, "corrupt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			b := tt.damage(t, bytes.Clone(good), layout)
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			r := runBoltOpenChild(t, exe, path, nil)
			switch tt.want {
			case "corrupt":
				if r.Opened || !r.Corrupt {
					t.Fatalf("OpenBoltStore: opened %t, error %q; want an error wrapping ErrCorrupt", r.Opened, r.Err)
				}
				if !strings.Contains(r.Err, path) {
					t.Errorf("error %q does not name the file %s", r.Err, path)
				}
				t.Logf("error: %s", r.Err)
			case "opens", "previous":
				if !r.Opened || !r.Wrote {
					t.Fatalf("OpenBoltStore: opened %t, wrote %t, error %q; want it to open and take writes", r.Opened, r.Wrote, r.Err)
				}
				want := rev
				if tt.want == "previous" {
					want = rev - 1 // the transaction before the last
				}
				if r.Revision != want || r.Tasks != 300 {
					t.Errorf("opened at revision %d with %d tasks, want revision %d with 300", r.Revision, r.Tasks, want)
				}
			}
			// The file is as it was left: a failed open changes nothing.
			if after, err := os.ReadFile(path); err != nil {
				t.Fatal(err)
			} else if tt.want == "corrupt" && !bytes.Equal(after, b) {
				t.Errorf("the failed open changed the file (%d bytes before, %d after)", len(b), len(after))
			}
		})
	}

	t.Run("directory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.db")
		if err := os.Mkdir(path, 0o700); err != nil {
			t.Fatal(err)
		}
		r := runBoltOpenChild(t, exe, path, nil)
		if r.Opened || r.Corrupt || !strings.Contains(r.Err, path) {
			t.Fatalf("OpenBoltStore of a directory: opened %t, corrupt %t, error %q; want an error naming it, not ErrCorrupt", r.Opened, r.Corrupt, r.Err)
		}
		t.Logf("error: %s", r.Err)
	})

	t.Run("no permission", func(t *testing.T) {
		// Not t.TempDir: its parent is private to root, and the child may run as nobody.
		dir, err := os.MkdirTemp("", "dao-bolt-perm")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "state.db")
		if err := os.WriteFile(path, good, 0o000); err != nil {
			t.Fatal(err)
		}
		var cred *syscall.Credential
		childExe := exe
		if os.Geteuid() == 0 {
			// Root reads any file: open it as nobody, from a copy of the test binary it
			// can reach.
			childExe = filepath.Join(dir, "orchestrator.test")
			if err := boltCopyFile(exe, childExe); err != nil {
				t.Fatal(err)
			}
			cred = &syscall.Credential{Uid: 65534, Gid: 65534}
		}
		r := runBoltOpenChild(t, childExe, path, cred)
		if r.Opened || r.Corrupt || !r.Permission || !strings.Contains(r.Err, path) {
			t.Fatalf("OpenBoltStore of a file it may not read: opened %t, corrupt %t, error %q; want fs.ErrPermission naming the file", r.Opened, r.Corrupt, r.Err)
		}
		t.Logf("error: %s", r.Err)
	})
}

func boltCopyFile(from, to string) error {
	if err := os.Link(from, to); err == nil {
		return nil
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
