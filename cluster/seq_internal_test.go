package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStatusSeqGrowsAcrossStarts: each start numbers past everything the last one may have
// given, whatever the clock says, and the file is written once per block, not per number.
func TestStatusSeqGrowsAcrossStarts(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(1_000, 0)
	s, err := openStatusSeq(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := s.next()
	if want := uint64(now.UnixNano()) + 1; first != want {
		t.Errorf("the first number of a first start is %d, want %d (the time in nanoseconds, then 1 up)", first, want)
	}
	var last uint64
	for range seqBlock + 10 { // past one block
		if last, err = s.next(); err != nil {
			t.Fatal(err)
		}
	}
	// The next start has a clock set back by an hour: its numbers still grow.
	again, err := openStatusSeq(dir, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := again.next(); n <= last {
		t.Errorf("after a restart: %d, want above %d", n, last)
	}

	// A file that holds no number is an error that says what to do.
	if err := os.WriteFile(filepath.Join(dir, SeqFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = openStatusSeq(dir, now)
	if !errors.Is(err, ErrCorruptIdentity) || !strings.Contains(err.Error(), "write there a number above every one this node sent") {
		t.Errorf("a corrupt %s: %v", SeqFile, err)
	}

	// No directory: numbers from the clock.
	mem, err := openStatusSeq("", now)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := mem.next(); n != uint64(now.UnixNano())+1 {
		t.Errorf("no directory: %d", n)
	}
}
