package edge_test

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/edge"
)

// TestLogsFollowerFallingBehindLosesNothing: a follower that reads slowly while its container
// writes many times the rotation size reads every line once, in order; the log is rotated
// meanwhile, and once the reader is closed, rotation frees the disk space it held.
func TestLogsFollowerFallingBehindLosesNothing(t *testing.T) {
	t.Parallel()
	const maxSize = 16 << 10
	e := newEnv(t, edge.WithLogMaxSize(maxSize), edge.WithLogCheckInterval(10*time.Millisecond))
	const lines = 200_000 // about 1.3 MB: 80 times the rotation size
	// The reader is opened before the container starts, as the pipeline runner opens a
	// step's: from then on, rotation keeps what it has still to read. (Opened after the
	// start, on a loaded machine, it could find the first lines rotated away already.)
	if err := e.rt.Create(e.ctx, "loud", dao.ContainerSpec{Image: e.busybox, Command: []string{"sh", "-c", "seq 1 " + strconv.Itoa(lines) + "; sleep 1"}}); err != nil {
		t.Fatal(err)
	}
	r, err := e.rt.Logs(e.ctx, "loud", edge.LogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := e.rt.Start(e.ctx, "loud"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the container writes on; rotation checks 30 times
	sc := bufio.NewScanner(r)
	next := 1
	for sc.Scan() {
		if next%20_000 == 0 {
			time.Sleep(20 * time.Millisecond) // and falls behind again
		}
		if got := sc.Text(); got != strconv.Itoa(next) {
			t.Fatalf("line %d: got %q", next, got)
		}
		next++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if next != lines+1 {
		t.Fatalf("read %d lines, want %d", next-1, lines)
	}
	r.Close()

	// With no reader left, rotation frees what was read.
	path := filepath.Join(e.rt.LogDir(), "loud.log")
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		used := info.Sys().(*syscall.Stat_t).Blocks * 512
		if used <= 2*maxSize {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log takes %d bytes of disk (size %d) with a maximum of %d", used, info.Size(), maxSize)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// What is kept, the rotated file and the log, reads as one run of whole lines up to the
	// last; a tail starts at a line boundary.
	e.wait("loud", 10*time.Second)
	all := e.logs("loud")
	kept := strings.Split(strings.TrimSuffix(all, "\n"), "\n")
	if len(kept) < maxSize/8 {
		t.Fatalf("kept %d lines, want at least the last %d bytes", len(kept), maxSize)
	}
	for i, l := range kept {
		if want := strconv.Itoa(lines - len(kept) + 1 + i); l != want {
			t.Fatalf("kept line %d: got %q, want %q", i, l, want)
		}
	}
	tr, err := e.rt.Logs(e.ctx, "loud", edge.LogOptions{Tail: 3 * maxSize / 2})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	b, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	tail := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(b) > 3*maxSize/2 || len(b) < maxSize || !strings.HasSuffix(all, string(b)) || tail[len(tail)-1] != strconv.Itoa(lines) {
		t.Errorf("tail of %d bytes: %d bytes ending %q, not the end of the log at a line boundary", 3*maxSize/2, len(b), tail[len(tail)-1])
	}
	if first, _ := strconv.Atoi(tail[0]); first+len(tail)-1 != lines {
		t.Errorf("tail starts with %q: not a whole line (%d lines, %d bytes, log %d bytes)", tail[0], len(tail), len(b), len(all))
	}
}
