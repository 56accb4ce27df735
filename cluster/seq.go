package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opendao/dao/internal/atomicfile"
)

// SeqFile is the file, in the directory of WithIdentityDir, where a Client keeps how far
// it has numbered its status updates (dao.TaskStatus.Seq), so that its numbers keep
// growing across restarts of its program.
const SeqFile = "status.seq"

// seqBlock is how many numbers a Client reserves at once: it writes SeqFile once per
// block, not once per update, and a restarted client starts past the whole block.
const seqBlock = 1 << 16

// statusSeq numbers a node's status updates from a counter that only grows: in memory,
// with blocks of numbers reserved on disk ahead of their use. It is not safe for
// simultaneous use: the Client's mutex guards it.
type statusSeq struct {
	file     string // "" for none
	last     uint64 // the last number given
	reserved uint64 // the numbers up to it are reserved on disk
	failed   bool   // the last reservation failed
}

// openStatusSeq returns the counter kept in dir ("" for none), starting past every number
// a client of that directory may have given before. With no number kept (no dir, or a
// first start), it starts from now in nanoseconds: the best guess at a number above those
// of a previous program with this node's identity, whose numbers were its own start's
// time and the updates it sent since; wrong only if the clock was set back since.
func openStatusSeq(dir string, now time.Time) (*statusSeq, error) {
	s := &statusSeq{}
	if ns := now.UnixNano(); ns > 0 {
		s.last, s.reserved = uint64(ns), uint64(ns)
	}
	if dir == "" {
		return s, nil
	}
	s.file = filepath.Join(dir, SeqFile)
	b, err := os.ReadFile(s.file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("cluster: the status sequence in %s: %w", s.file, err)
	default:
		n, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if perr != nil {
			return nil, fmt.Errorf("cluster: the status sequence in %s: %w: %q is not a number; "+
				"write there a number above every one this node sent (such as the current time in nanoseconds)",
				s.file, ErrCorruptIdentity, shortText(b))
		}
		s.last, s.reserved = n, n
	}
	// A reservation that fails is said, and the client works on: a node whose disk is
	// full is still better connected than not.
	return s, s.reserve()
}

// next returns the next number; it reserves a block on disk when the last one is used up.
// A reservation that fails leaves the numbers growing in memory: they stay in order until
// the program restarts.
func (s *statusSeq) next() (uint64, error) {
	s.last++
	var err error
	// After a failure, tried again once in a while, not at every update.
	if s.file != "" && s.last > s.reserved && (!s.failed || s.last%1024 == 0) {
		err = s.reserve()
	}
	return s.last, err
}

func (s *statusSeq) reserve() error {
	if s.file == "" {
		return nil
	}
	to := s.last + seqBlock
	if err := atomicfile.WriteFile(s.file, []byte(strconv.FormatUint(to, 10)+"\n"), 0o600); err != nil {
		s.failed = true
		return fmt.Errorf("cluster: reserve status sequence numbers in %s: %w", s.file, err)
	}
	s.reserved, s.failed = to, false
	return nil
}

func shortText(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}
