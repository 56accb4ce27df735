package orchestrator_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/orchestrator"
)

// The tests of this file make writes of a BoltStore fail half way, and check that the
// store and its file agree afterwards.

// Environment of the child processes of these tests.
const (
	envDiskFullChild = "DAO_TEST_BOLT_DISK_FULL"
	envCrashChild    = "DAO_TEST_BOLT_CRASH"
	envCreateChild   = "DAO_TEST_BOLT_CREATE"
)

// runChild runs this test binary again, for test, with env set, and returns its standard
// output.
func runChild(t *testing.T, test, env string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	return cmd, &stderr
}

func boltTaskIDs(t *testing.T, s orchestrator.Store) []string {
	t.Helper()
	var ids []string
	if err := s.View(context.Background(), func(tx orchestrator.ReadTx) error {
		for x := range tx.Tasks() {
			ids = append(ids, x.ID)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

func boltCreateTasks(s orchestrator.Store, prefix string, n int) error {
	return s.Update(context.Background(), "test", func(tx orchestrator.Tx) error {
		for i := range n {
			err := tx.CreateTask(&orchestrator.Task{Task: dao.Task{
				ID: fmt.Sprintf("%s-%04d", prefix, i), ServiceID: "web", Slot: i + 1,
				Spec:   dao.ContainerSpec{Image: "registry.example.com/web:1", Env: []string{strings.Repeat("x", 500)}},
				Status: dao.TaskStatus{State: dao.TaskPending},
			}})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// diskFullResult is what the disk-full child reports.
type diskFullResult struct {
	Committed []string // the tasks of the writes that succeeded, before and after the disk was full
	Failed    string   // the error of the write that did not fit
	Leaked    []string // tasks of the failed write that the store shows
	After     string   // the error of a write once there is room again, if any
}

func TestBoltStoreDiskFull(t *testing.T) {
	if path := os.Getenv(envDiskFullChild); path != "" {
		diskFullChild(t, path)
		return
	}
	path := filepath.Join(t.TempDir(), "state.db")
	cmd, stderr := runChild(t, "TestBoltStoreDiskFull", envDiskFullChild+"="+path)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s\n%s", err, out, stderr)
	}
	_, line, ok := bytes.Cut(out, []byte("disk-full-result: "))
	if !ok {
		t.Fatalf("no result from the child:\n%s", out)
	}
	line, _, _ = bytes.Cut(line, []byte("\n"))
	var r diskFullResult
	if err := json.Unmarshal(line, &r); err != nil {
		t.Fatal(err)
	}
	if r.Failed == "" {
		t.Fatal("no write failed: the file size limit did not work")
	}
	t.Logf("the write that did not fit: %s", r.Failed)
	if len(r.Leaked) > 0 {
		t.Errorf("after the failed write, the store shows %d of its tasks", len(r.Leaked))
	}
	if r.After != "" {
		t.Errorf("once there was room again, a write failed: %s; want the store to take writes", r.After)
	}
	s, err := orchestrator.OpenBoltStore(path)
	if err != nil {
		t.Fatalf("reopening after the disk was full: %v", err)
	}
	defer s.Close()
	if got := boltTaskIDs(t, s); !slices.Equal(got, r.Committed) {
		t.Errorf("after reopening, %d tasks; want the %d of the writes that succeeded", len(got), len(r.Committed))
	}
}

// diskFullChild writes to a store until its file may not grow (RLIMIT_FSIZE, the way a
// full disk fails writes), then writes again once it may.
func diskFullChild(t *testing.T, path string) {
	s, err := orchestrator.OpenBoltStore(path)
	if err != nil {
		t.Fatal(err)
	}
	var r diskFullResult
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	full := lim
	full.Cur = 1 << 20
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &full); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100 && r.Failed == ""; i++ {
		prefix := fmt.Sprintf("b%02d", i)
		if err := boltCreateTasks(s, prefix, 100); err != nil {
			r.Failed = err.Error()
			for _, id := range boltTaskIDs(t, s) {
				if strings.HasPrefix(id, prefix) {
					r.Leaked = append(r.Leaked, id)
				}
			}
		}
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	if err := boltCreateTasks(s, "after", 10); err != nil {
		r.After = err.Error()
	}
	r.Committed = boltTaskIDs(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(r)
	fmt.Printf("\ndisk-full-result: %s\n", b)
}

func TestBoltStoreWriteRefusedByBbolt(t *testing.T) {
	s, err := orchestrator.OpenBoltStore(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	boltWriteRefused(t, s)
}

// boltWriteRefused writes a task whose ID is longer than bbolt takes for a key, and
// checks that the write fails, and changes nothing: the store takes the next write.
func boltWriteRefused(t *testing.T, s orchestrator.Store) {
	t.Helper()
	before := boltTaskIDs(t, s)
	long := strings.Repeat("x", 40_000) // bbolt's keys are at most 32 KiB
	err := s.Update(context.Background(), "test", func(tx orchestrator.Tx) error {
		return errors.Join(tx.CreateTask(&orchestrator.Task{Task: dao.Task{ID: "fits", ServiceID: "web"}}),
			tx.CreateTask(&orchestrator.Task{Task: dao.Task{ID: long, ServiceID: "web"}}))
	})
	if err == nil {
		t.Fatal("a write of a key bbolt refuses succeeded")
	}
	if got := boltTaskIDs(t, s); !slices.Equal(got, before) {
		t.Errorf("after a write bbolt refused, %d tasks, want the %d before", len(got), len(before))
	}
	if err := boltCreateTasks(s, "next", 1); err != nil {
		t.Errorf("the write after one bbolt refused: %v; want the store to take it", err)
	}
}

func TestBoltStoreWriteFailsAfterReachingTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := orchestrator.OpenBoltStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := boltCreateTasks(s, "a", 1); err != nil {
		t.Fatal(err)
	}
	// The commit reaches the file, then bbolt reports a failure (a sync that failed).
	errSync := errors.New("simulated: fdatasync: input/output error")
	restore := orchestrator.SetBoltAfterCommit(s, func() error { return errSync })
	err = boltCreateTasks(s, "b", 1)
	restore()
	if !errors.Is(err, errSync) {
		t.Fatalf("write: %v, want the sync's error", err)
	}
	if got := boltTaskIDs(t, s); !slices.Equal(got, []string{"a-0000"}) {
		t.Errorf("tasks after the failed write = %v, want [a-0000]", got)
	}
	// The store does not know what the file holds now: it takes no more writes.
	err = boltCreateTasks(s, "c", 1)
	if err == nil || !errors.Is(err, errSync) || !strings.Contains(err.Error(), "reopen") {
		t.Errorf("write after a write that failed after reaching the file: %v; want an error that wraps the first and says to reopen the store", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	// The file is what counts: reopened, the store holds what it holds.
	s, err = orchestrator.OpenBoltStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := boltTaskIDs(t, s); !slices.Equal(got, []string{"a-0000", "b-0000"}) {
		t.Errorf("tasks after reopening = %v, want [a-0000 b-0000]: the file has the write", got)
	}
	if got := boltRevision(t, s); got != 2 {
		t.Errorf("revision after reopening = %d, want 2", got)
	}
	if err := boltCreateTasks(s, "c", 1); err != nil {
		t.Errorf("write after reopening: %v", err)
	}
}

func TestBoltStoreFileDamagedWhileOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := orchestrator.OpenBoltStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := boltCreateTasks(s, "a", 10); err != nil {
		t.Fatal(err)
	}
	// Something else overwrites both meta pages: bbolt panics at the next write.
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ps := int(boltLE.Uint32(good[bfMetaPSizeOff:]))
	damageFile(t, path, make([]byte, 2*ps))

	write := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("Update panicked: %v", r)
			}
		}()
		return boltCreateTasks(s, "b", 1)
	}
	err = write()
	if !errors.Is(err, orchestrator.ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Fatalf("write to a file whose meta pages were overwritten: %v; want an error wrapping ErrCorrupt naming the file", err)
	}
	t.Logf("write: %v", err)
	if err := write(); !errors.Is(err, orchestrator.ErrCorrupt) {
		t.Errorf("next write: %v; want the store to take no more writes", err)
	}
	if got := len(boltTaskIDs(t, s)); got != 10 {
		t.Errorf("reads after the failure: %d tasks, want 10", got)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		t.Logf("Close: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	// The file is let go of: repaired, it opens, with what was written.
	damageFile(t, path, good[:2*ps])
	s, err = orchestrator.OpenBoltStore(path)
	if err != nil {
		t.Fatalf("reopening the repaired file: %v", err)
	}
	defer s.Close()
	if got := len(boltTaskIDs(t, s)); got != 10 {
		t.Errorf("after reopening: %d tasks, want 10", got)
	}
}

// damageFile writes b at the start of the file at path, as another program would.
func damageFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
}

func TestBoltStoreKilledWhileWriting(t *testing.T) {
	if path := os.Getenv(envCrashChild); path != "" {
		crashChild(t, path)
		return
	}
	path := filepath.Join(t.TempDir(), "state.db")
	for round := range 3 {
		cmd, stderr := runChild(t, "TestBoltStoreKilledWhileWriting", envCrashChild+"="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Let it commit a few transactions, then kill it in the middle of one.
		lines := bufio.NewScanner(stdout)
		var last uint64
		for lines.Scan() && last < uint64(20*(round+1)) {
			if n, ok := strings.CutPrefix(lines.Text(), "committed "); ok {
				last, _ = strconv.ParseUint(n, 10, 64)
			}
		}
		time.Sleep(time.Duration(round) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		if last == 0 {
			t.Fatalf("the child committed nothing:\n%s", stderr)
		}

		s, err := orchestrator.OpenBoltStore(path)
		if err != nil {
			t.Fatalf("round %d: reopening after a kill: %v", round, err)
		}
		rev := boltRevision(t, s)
		// Transaction r (after the first, which creates the node) creates task k-r and
		// sets the node's label to r: the file holds every one up to its revision, and
		// no other.
		n, err := boltGetNode(t, s, "counter")
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for r := uint64(2); r <= rev; r++ {
			want = append(want, fmt.Sprintf("k-%06d", r))
		}
		got := boltTaskIDs(t, s)
		if rev < last || n.Labels["r"] != strconv.FormatUint(rev, 10) || n.Revision != rev || !slices.Equal(got, want) {
			t.Errorf("round %d: after a kill at revision %d or later: revision %d, node label %q at revision %d, %d tasks (want %d, k-000002 to k-%06d)",
				round, last, rev, n.Labels["r"], n.Revision, len(got), len(want), rev)
		}
		s.Close()
	}
}

// crashChild writes one transaction after the other, reporting each, until it is killed.
func crashChild(t *testing.T, path string) {
	s, err := orchestrator.OpenBoltStore(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	err = s.Update(ctx, "test", func(tx orchestrator.Tx) error {
		if _, err := tx.Node("counter"); err == nil {
			return nil
		}
		return tx.CreateNode(&orchestrator.Node{Node: dao.Node{ID: "counter"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	for {
		var rev uint64
		err := s.Update(ctx, "test", func(tx orchestrator.Tx) error {
			rev = tx.Revision() + 1
			n, err := tx.Node("counter")
			if err != nil {
				return err
			}
			n.Labels = map[string]string{"r": strconv.FormatUint(rev, 10)}
			if err := tx.UpdateNode(&n); err != nil {
				return err
			}
			return tx.CreateTask(&orchestrator.Task{Task: dao.Task{ID: fmt.Sprintf("k-%06d", rev), ServiceID: "web"}})
		})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("committed %d\n", rev)
	}
}

func TestBoltStoreKilledWhileCreating(t *testing.T) {
	if dir := os.Getenv(envCreateChild); dir != "" {
		for i := 0; ; i++ {
			s, err := orchestrator.OpenBoltStore(filepath.Join(dir, fmt.Sprintf("s-%05d.db", i)))
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			fmt.Printf("created %d\n", i)
		}
	}
	dir := t.TempDir()
	for round := range 5 {
		cmd, stderr := runChild(t, "TestBoltStoreKilledWhileCreating", envCreateChild+"="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(stdout)
		for n := 0; n < 3 && lines.Scan(); {
			if strings.HasPrefix(lines.Text(), "created ") {
				n++
			}
		}
		time.Sleep(time.Duration(round) * 300 * time.Microsecond)
		cmd.Process.Kill()
		cmd.Wait()
		// Every store file there opens: none is empty or half made.
		stores, err := filepath.Glob(filepath.Join(dir, "s-*.db"))
		if err != nil {
			t.Fatal(err)
		}
		if len(stores) == 0 {
			t.Fatalf("the child made no store:\n%s", stderr)
		}
		for _, p := range stores {
			s, err := orchestrator.OpenBoltStore(p)
			if err != nil {
				t.Fatalf("round %d: a store the child was killed while creating: %v", round, err)
			}
			s.Close()
		}
		dir = t.TempDir()
	}
}
