package edge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// A container's stdout and stderr go to <log dir>/<id>.log, written by a logger process the
// shim owns (see logger.go), so output is kept while no Dao process runs and a container
// never blocks on a reader.
//
// The logger only appends, and every byte keeps its offset in the file for the file's life:
// the Runtime never truncates a log that a container may still write to. When the data of a
// log grows past the maximum size, the Runtime rotates it: it copies the data to <id>.log.1
// (replacing the older copy), writes the offset where the log's data now starts to
// <id>.log.start, and frees the disk space of what it copied by punching a hole over it
// (fallocate(2) with FALLOC_FL_PUNCH_HOLE): the file keeps its length, and only its data past
// the start takes disk space. Output written meanwhile stays in the log, past the start, and a
// reader keeps its place. The Runtime does not rotate past what a reader of this Runtime
// (Logs) has still to read: a follower that falls behind holds on to disk space, not memory,
// until it has read on, and loses nothing.
//
// On a file system that cannot punch holes, the Runtime copies the log to <id>.log.1 and
// truncates it instead, and only while no reader of this Runtime has it open: output written
// between the copy and the truncation is then lost, as with logrotate's copytruncate.

// logBlock is what rotation cuts logs at a multiple of, so that it frees whole blocks.
const logBlock = 4096

func (r *Runtime) logPath(id string) string { return filepath.Join(r.opts.logDir, id+".log") }

func (r *Runtime) removeLogs(id string) {
	p := r.logPath(id)
	for _, suffix := range []string{"", ".1", ".start", ".1.tmp", ".start.tmp"} {
		_ = os.Remove(p + suffix)
	}
}

// logReaders holds a Runtime's open readers by log path, so that rotation leaves what they
// have still to read. Holding its lock, a reader opens its files and a rotation moves a log's
// start: a reader never sees half a rotation. The zero value is ready for use.
//
// Readers of other Runtimes (or programs) of the same log directory are not known: rotation
// does not wait for them.
type logReaders struct {
	mu      sync.Mutex
	readers map[string]map[*logReader]struct{}
}

// lowestUnread returns the lowest offset of the log at path that a reader has still to
// read, or limit when none has less. The caller holds l.mu.
func (l *logReaders) lowestUnread(path string, limit int64) int64 {
	for r := range l.readers[path] {
		limit = min(limit, r.off.Load())
	}
	return limit
}

// add registers r as a reader of its path. The caller holds l.mu.
func (l *logReaders) add(r *logReader) {
	if l.readers == nil {
		l.readers = map[string]map[*logReader]struct{}{}
	}
	if l.readers[r.path] == nil {
		l.readers[r.path] = map[*logReader]struct{}{}
	}
	l.readers[r.path][r] = struct{}{}
}

// remove forgets the reader r.
func (l *logReaders) remove(r *logReader) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m := l.readers[r.path]; m != nil {
		delete(m, r)
		if len(m) == 0 {
			delete(l.readers, r.path)
		}
	}
}

// logStart returns the offset where the data of the log at path starts: 0 until it is first
// rotated.
func logStart(path string) int64 {
	b, err := os.ReadFile(path + ".start")
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

func writeLogStart(path string, off int64) error {
	tmp := path + ".start.tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatInt(off, 10)+"\n"), 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, path+".start")
}

// logLoop rotates oversized log files until ctx is done.
func (r *Runtime) logLoop(ctx context.Context) {
	t := time.NewTicker(r.opts.logCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.rotateLogs()
		}
	}
}

func (r *Runtime) rotateLogs() {
	entries, err := os.ReadDir(r.opts.logDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".log") {
			continue
		}
		info, err := e.Info()
		if err != nil || info.Size() < r.opts.logMaxSize {
			continue
		}
		path := filepath.Join(r.opts.logDir, e.Name())
		if info.Size()-logStart(path) < r.opts.logMaxSize {
			continue
		}
		if err := r.rotate(path, r.opts.logMaxSize); err != nil {
			r.log.Warn("rotate log", "file", e.Name(), "err", err)
		}
	}
}

// rotate moves the data of the log at path, up to what the Runtime's readers have still to
// read, to path.1 (its last keep bytes), and frees its disk space (see the top of this file).
func (r *Runtime) rotate(path string, keep int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	size := info.Size()
	if !r.punch.canPunch(filepath.Dir(path)) {
		return r.copyTruncate(f, path, size)
	}
	start := logStart(path)
	if start > size { // truncated by someone else: its data starts at 0
		start = 0
	}
	r.readers.mu.Lock()
	cut := r.readers.lowestUnread(path, size) / logBlock * logBlock
	r.readers.mu.Unlock()
	if cut <= start {
		return nil
	}
	from := lineAfter(f, max(start, cut-keep), cut)
	tmp := path + ".1.tmp"
	if err := copyFile(tmp, io.NewSectionReader(f, from, cut-from)); err != nil {
		return err
	}
	r.readers.mu.Lock()
	defer r.readers.mu.Unlock()
	if r.readers.lowestUnread(path, cut) < cut { // a reader opened the log meanwhile: next time
		return os.Remove(tmp)
	}
	if err := os.Rename(tmp, path+".1"); err != nil {
		os.Remove(tmp)
		return err
	}
	// The new start first: a reader that comes now reads path.1, then the log from cut.
	if err := writeLogStart(path, cut); err != nil {
		return err
	}
	return unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, cut)
}

// lineAfter returns the offset of the first line that starts in the log at from or after it,
// or from when none starts before end.
func lineAfter(f *os.File, from, end int64) int64 {
	if from == 0 {
		return 0
	}
	buf := make([]byte, 32<<10)
	for off := from - 1; off < end; {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), end-off)], off)
		if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
			return off + int64(i) + 1
		}
		if err != nil || n == 0 {
			break
		}
		off += int64(n)
	}
	return from
}

// copyTruncate copies the data of the log to path.1 and truncates it, when no reader of the
// Runtime has it open. Output written between the copy and the truncation is lost.
func (r *Runtime) copyTruncate(f *os.File, path string, size int64) error {
	r.readers.mu.Lock()
	defer r.readers.mu.Unlock()
	if len(r.readers.readers[path]) > 0 {
		return nil
	}
	start := logStart(path)
	if start > size {
		start = 0
	}
	tmp := path + ".1.tmp"
	if err := copyFile(tmp, io.NewSectionReader(f, start, math.MaxInt64-start)); err != nil {
		return err
	}
	if err := os.Rename(tmp, path+".1"); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := f.Truncate(0); err != nil {
		return err
	}
	return writeLogStart(path, 0)
}

func copyFile(path string, src io.Reader) error {
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		os.Remove(path)
		return err
	}
	if err := dst.Close(); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// punchCache remembers, by directory, whether its file system can punch holes into files.
// The zero value is ready for use.
type punchCache struct {
	mu  sync.Mutex
	dir map[string]bool
}

func (p *punchCache) canPunch(dir string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if v, ok := p.dir[dir]; ok {
		return v
	}
	ok := false
	if f, err := os.CreateTemp(dir, ".punch-probe-*"); err == nil {
		if _, err := f.Write(make([]byte, 2*logBlock)); err == nil {
			ok = unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, logBlock) == nil
		}
		f.Close()
		os.Remove(f.Name())
	}
	if p.dir == nil {
		p.dir = map[string]bool{}
	}
	p.dir[dir] = ok
	return ok
}

// LogOptions says what Logs reads. The zero value reads everything there is, once. It is a
// plain request, as dao.ContainerSpec is, and checked as one: a bad field makes Logs fail with
// an ErrInvalidOption naming it.
type LogOptions struct {
	// Follow keeps reading as the container writes, until the container has stopped and
	// everything it wrote was read, or until ctx is done: then the reader still returns what
	// was written up to that moment, and io.EOF at its end.
	Follow bool
	// Tail, when above zero, starts at the last Tail bytes instead of the beginning. Reading
	// starts at a line boundary. The default, 0, reads from the beginning; a negative Tail
	// is refused.
	Tail int64
}

// Logs returns the container's output (stdout and stderr, interleaved as written), from the
// rotated file on. Close the reader when done: until then, rotation keeps what it has still
// to read, so that a reader that falls behind loses nothing.
func (r *Runtime) Logs(ctx context.Context, id string, opts LogOptions) (io.ReadCloser, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	if opts.Tail < 0 {
		return nil, fmt.Errorf("edge: logs of %s: %w", id, optionError(fmt.Sprintf("LogOptions.Tail %d", opts.Tail), "must not be negative"))
	}
	if _, err := r.load(r.ctx(ctx), id); err != nil {
		return nil, err
	}
	lr := &logReader{r: r, id: id, path: r.logPath(id), follow: opts.Follow, ctx: ctx}
	r.readers.mu.Lock()
	defer r.readers.mu.Unlock()
	start := logStart(lr.path)
	f, err := os.Open(lr.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("edge: logs of %s: %w", id, err)
	}
	var size int64
	if f != nil {
		info, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("edge: logs of %s: %w", id, err)
		}
		size = info.Size()
		lr.f = f
	}
	if start > size {
		start = 0
	}
	lr.off.Store(start)
	if old, err := os.Open(lr.path + ".1"); err == nil {
		lr.old = old
	}
	if opts.Tail > 0 {
		if size-start >= opts.Tail {
			lr.closeOld()
			lr.off.Store(size - opts.Tail)
			lr.skipLine = size-opts.Tail > start
		} else if lr.old != nil {
			need := opts.Tail - (size - start)
			if info, err := lr.old.Stat(); err == nil && info.Size() > need {
				if _, err := lr.old.Seek(info.Size()-need, io.SeekStart); err == nil {
					lr.skipLine = true
				}
			}
		}
	}
	r.readers.add(lr)
	return lr, nil
}

type logReader struct {
	r      *Runtime
	id     string
	path   string
	follow bool
	ctx    context.Context
	// old is path.1, read before the log; nil once read.
	old *os.File
	// f is the log, nil until it exists; off is where reading goes on in it.
	f        *os.File
	off      atomic.Int64
	skipLine bool // skip to the first newline
	closed   bool
	settled  bool // the stopped container's logger was given its moment (settleLog)
}

func (l *logReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, err := l.readSome(p)
		if n > 0 && l.skipLine {
			i := strings.IndexByte(string(p[:n]), '\n')
			if i < 0 {
				continue
			}
			l.skipLine = false
			if n = copy(p, p[i+1:n]); n == 0 {
				continue
			}
		}
		if n > 0 {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
		// At the end of what was written. A follower goes on while the container may write,
		// until ctx is done: then this read, made after it was, saw all there was.
		if !l.follow || l.ctx.Err() != nil {
			return 0, io.EOF
		}
		if !l.running() {
			// Stopped: the logger may still be copying the last output out of the pipe.
			// Give it that moment once, and read on to the end of what it wrote.
			if l.settled {
				return 0, io.EOF
			}
			l.settled = true
			l.r.settleLog(l.ctx, l.id)
			continue
		}
		select {
		case <-l.ctx.Done(): // read once more
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// readSome reads what is there: from path.1, then from the log. It returns 0 and no error at
// the end of what was written.
func (l *logReader) readSome(p []byte) (int, error) {
	if l.closed {
		return 0, os.ErrClosed
	}
	if l.old != nil {
		n, err := l.old.Read(p)
		if n > 0 {
			return n, nil
		}
		if err != nil && err != io.EOF {
			return 0, err
		}
		l.closeOld()
	}
	if l.f == nil {
		f, err := os.Open(l.path)
		if err != nil {
			return 0, nil // not written yet
		}
		l.f = f
	}
	n, err := l.f.ReadAt(p, l.off.Load())
	l.off.Add(int64(n))
	if err == io.EOF {
		err = nil
	}
	return n, err
}

func (l *logReader) closeOld() {
	if l.old != nil {
		l.old.Close()
		l.old = nil
	}
}

// running reports whether the container may still write. After it stops, one more read
// catches what it wrote last. While its state cannot be known (containerd restarts), it may.
func (l *logReader) running() bool {
	st, err := l.r.Status(l.ctx, l.id)
	if err != nil {
		return !errors.Is(err, ErrNotFound) && l.ctx.Err() == nil
	}
	if st.State == StateRunning || st.State == StatePaused {
		return true
	}
	if l.f != nil {
		if info, err := l.f.Stat(); err == nil && info.Size() > l.off.Load() {
			return true
		}
	}
	return false
}

func (l *logReader) Close() error {
	l.r.readers.remove(l)
	if l.closed {
		return nil
	}
	l.closed = true
	l.closeOld()
	if l.f != nil {
		return l.f.Close()
	}
	return nil
}

// settleLog gives the logger a moment to copy the last output: Wait can see the exit while
// the last lines are still in the pipe. The logger copies as the container writes, and the
// exit event takes longer to come than that copy, so this is a safety margin: it returns once
// the log's size has not changed for 2ms (at most 100ms). Deleting the task (Remove, Stop)
// waits for the logger to drain the pipes, so after it the log is whole.
func (r *Runtime) settleLog(ctx context.Context, id string) {
	size := func() int64 {
		info, err := os.Stat(r.logPath(id))
		if err != nil {
			return -1
		}
		return info.Size()
	}
	last, still := size(), 0
	deadline := time.Now().Add(100 * time.Millisecond)
	for still < 2 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Millisecond):
		}
		if n := size(); n == last {
			still++
		} else {
			last, still = n, 0
		}
	}
}
