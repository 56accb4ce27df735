package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A container's stdout and stderr go to <log dir>/<id>.log, written by a logger process the
// shim owns (see logger.go), so output is kept while no Dao process runs and a container
// never blocks on a reader. The Runtime rotates a file that grows past the maximum size to
// <id>.log.1, keeping one rotated file.

func (r *Runtime) logPath(id string) string { return filepath.Join(r.opts.logDir, id+".log") }

func (r *Runtime) removeLogs(id string) {
	p := r.logPath(id)
	_ = os.Remove(p)
	_ = os.Remove(p + ".1")
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
		if err := rotate(filepath.Join(r.opts.logDir, e.Name())); err != nil {
			r.log.Warn("rotate log", "file", e.Name(), "err", err)
		}
	}
}

// rotate copies path to path.1 and truncates path. The logger keeps path open in append mode, so
// it goes on writing at the new end. Output written between the copy and the truncation is
// lost, as with logrotate's copytruncate.
func rotate(path string) error {
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := path + ".1.tmp"
	dst, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path+".1"); err != nil {
		return err
	}
	return os.Truncate(path, 0)
}

// LogOptions says what Logs reads.
type LogOptions struct {
	// Follow keeps reading as the container writes, until ctx is done or the container has
	// stopped and everything it wrote was read.
	Follow bool
	// Tail, when above zero, starts at the last Tail bytes instead of the beginning. Reading
	// starts at a line boundary.
	Tail int64
}

// Logs returns the container's output (stdout and stderr, interleaved as written), from the
// rotated file on. Close the reader when done.
func (r *Runtime) Logs(ctx context.Context, id string, opts LogOptions) (io.ReadCloser, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	if _, err := r.load(r.ctx(ctx), id); err != nil {
		return nil, err
	}
	lr := &logReader{r: r, id: id, path: r.logPath(id), follow: opts.Follow, ctx: ctx}
	var old []byte
	if b, err := os.ReadFile(lr.path + ".1"); err == nil {
		old = b
	}
	f, err := os.Open(lr.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("edge: logs of %s: %w", id, err)
	}
	lr.f = f
	if opts.Tail > 0 {
		var size int64
		if f != nil {
			if info, err := f.Stat(); err == nil {
				size = info.Size()
			}
		}
		if size >= opts.Tail {
			old = nil
			if _, err := f.Seek(size-opts.Tail, io.SeekStart); err == nil {
				lr.skipLine = size-opts.Tail > 0
				lr.off = size - opts.Tail
			}
		} else if need := opts.Tail - size; int64(len(old)) > need {
			old = old[int64(len(old))-need:]
			if i := strings.IndexByte(string(old), '\n'); i >= 0 {
				old = old[i+1:]
			}
		}
	}
	lr.pending = old
	return lr, nil
}

type logReader struct {
	r        *Runtime
	id       string
	path     string
	follow   bool
	ctx      context.Context
	f        *os.File
	off      int64
	pending  []byte
	skipLine bool
}

func (l *logReader) Read(p []byte) (int, error) {
	for {
		if len(l.pending) > 0 {
			n := copy(p, l.pending)
			l.pending = l.pending[n:]
			return n, nil
		}
		if l.f == nil {
			f, err := os.Open(l.path)
			if err == nil {
				l.f, l.off = f, 0
			}
		}
		if l.f != nil {
			// A file shorter than what was read has been rotated: start again from its top.
			if info, err := l.f.Stat(); err == nil && info.Size() < l.off {
				_, _ = l.f.Seek(0, io.SeekStart)
				l.off = 0
			}
			n, err := l.f.Read(p)
			if n > 0 {
				l.off += int64(n)
				if l.skipLine {
					i := strings.IndexByte(string(p[:n]), '\n')
					if i < 0 {
						continue
					}
					l.skipLine = false
					copy(p, p[i+1:n])
					n -= i + 1
					if n == 0 {
						continue
					}
				}
				return n, nil
			}
			if err != nil && err != io.EOF {
				return 0, err
			}
		}
		if !l.follow || !l.running() {
			return 0, io.EOF
		}
		select {
		case <-l.ctx.Done():
			return 0, io.EOF
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// running reports whether the container may still write. After it stops, one more read
// catches what it wrote last.
func (l *logReader) running() bool {
	st, err := l.r.Status(l.ctx, l.id)
	if err != nil {
		return false
	}
	if st.State == StateRunning || st.State == StatePaused {
		return true
	}
	if l.f != nil {
		if info, err := l.f.Stat(); err == nil && info.Size() > l.off {
			return true
		}
	}
	return false
}

func (l *logReader) Close() error {
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
