package edge

import (
	"context"
	"debug/elf"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"

	"github.com/opendao/dao/internal/shimlog" // its init turns this program into the logger when the shim starts it
)

// Containers' output is written by a logger process that containerd's shim starts for each
// container (the shim's "binary" logging), which appends the container's stdout and stderr
// to its log file until both end (internal/shimlog describes the protocol). The shim, not
// this process, owns the logger, so output is kept while no Dao process runs and a container
// never blocks on a reader of ours.
//
// The logger is the first of these that the Runtime finds when it starts:
//   - the program WithLoggerBinary names (edge/cmd/dao-shim-logger);
//   - dao-shim-logger beside the program's executable, or on PATH;
//   - the program's own executable, when it is statically linked: package shimlog's init
//     function, which runs before most of a program's package initialisers, recognises the
//     shim's arguments and never returns;
//   - a shell script written into the log directory, which appends with two cats.
//
// Measured on 2 cores (BenchmarkLoggerStart, CPU per logger): dao-shim-logger 1.2 to 1.5 ms,
// the program's own executable 1.4 to 1.7 ms when statically linked but 2.1 to 2.9 ms with
// cgo (the dynamic loader, libc and cgo's start run before any Go code: no cheaper than the
// script), the script 2.1 to 2.3 ms in three processes. The shim starts the container once
// the logger is ready: after about 1 ms for dao-shim-logger and the script alike (sh closes
// fd 5 before its cats exec), 1.2 ms for a static program, 1.8 ms with cgo. End to end
// (internal/bench/start -interleave) no logger's share of a container's start stands out of
// the noise, about 1%: what dao-shim-logger saves is CPU and processes.
//
// The shim may not see the program's executable (a Dao program in another mount namespace
// than containerd's, which shares only the log directory with it): when it cannot start a
// logger it found by itself, the Runtime falls back to the script, which is in the log
// directory.
//
// Why not the shim's own file logging (cio.LogFile): the shim of containerd 1.6 closes the
// file when stdout ends even while stderr is still being copied, so the last lines a
// container writes to stderr before it exits are lost now and then (seen in 2 to 7 of 60
// containers).
const loggerScript = `#!/bin/sh
# Written by github.com/opendao/dao/edge: the logger containerd's shim starts for a container.
# fd 3 is the container's stdout, fd 4 its stderr, fd 5 the shim's readiness pipe.
# Arguments: "dir" DIR; the log file is DIR/$CONTAINER_ID.log. Every process must close fd 5:
# the shim waits for it to reach EOF before it starts the container. The shim holds the pipes
# open until the task is deleted, then sends SIGTERM and waits for this script to exit: the
# signal is ignored so that the cats drain the pipes first, and a deleted task's log is whole.
log="$2/$CONTAINER_ID.log"
trap '' TERM
cat <&3 >>"$log" 3<&- 4<&- 5>&- &
cat <&4 >>"$log" 3<&- 4<&- 5>&- &
exec 3<&- 4<&- 5>&-
wait
`

const (
	loggerName       = "dao-logger.sh"
	loggerBinaryName = "dao-shim-logger"
)

// shimLogger is a logger program and the log URI that has the shim start it.
type shimLogger struct {
	kind string // "binary", "self" or "script"
	uri  *url.URL
}

func newShimLogger(kind, path, dir string) shimLogger {
	q := url.Values{shimlog.Arg: {dir}}
	if kind == "script" {
		q = url.Values{"dir": {dir}}
	}
	return shimLogger{kind: kind, uri: &url.URL{Scheme: "binary", Path: path, RawQuery: q.Encode()}}
}

// chooseLoggers returns the loggers to use, the preferred first; the next is the fallback
// of the one before (see the top of this file).
func chooseLoggers(o options) ([]shimLogger, error) {
	if o.loggerBinary != "" {
		if err := checkExecutable(o.loggerBinary); err != nil {
			return nil, optionError(fmt.Sprintf("WithLoggerBinary(%q)", o.loggerBinary), "%v", err)
		}
		return []shimLogger{newShimLogger("binary", o.loggerBinary, o.logDir)}, nil
	}
	script, err := installLogger(o.logDir)
	if err != nil {
		return nil, err
	}
	fallback := newShimLogger("script", script, o.logDir)
	if p := findLoggerBinary(); p != "" {
		return []shimLogger{newShimLogger("binary", p, o.logDir), fallback}, nil
	}
	if self := selfExecutable(); self != "" && staticExecutable(self) {
		return []shimLogger{newShimLogger("self", self, o.logDir), fallback}, nil
	}
	return []shimLogger{fallback}, nil
}

// findLoggerBinary returns the absolute path of dao-shim-logger beside the program's
// executable or on PATH, or "".
func findLoggerBinary() string {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), loggerBinaryName)
		if checkExecutable(p) == nil {
			return p
		}
	}
	if p, err := exec.LookPath(loggerBinaryName); err == nil && filepath.IsAbs(p) && checkExecutable(p) == nil {
		return p
	}
	return ""
}

// selfExecutable returns the path of the running program's executable, or "" when that
// path no longer names it (deleted, or replaced by another file).
func selfExecutable() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	at, err1 := os.Stat(exe)
	running, err2 := os.Stat("/proc/self/exe")
	if err1 != nil || err2 != nil || !os.SameFile(at, running) {
		return ""
	}
	return exe
}

// staticExecutable reports whether the executable at path is statically linked: it names no
// dynamic loader (a Go program built without cgo).
func staticExecutable(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// checkExecutable returns why path is not an executable regular file, or nil.
func checkExecutable(path string) error {
	info, err := os.Stat(path)
	switch {
	case err != nil:
		return err
	case !info.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", path)
	case info.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("%s is not executable", path)
	}
	return nil
}

// installLogger writes the logger script into dir, replacing an older one atomically.
func installLogger(dir string) (string, error) {
	path := filepath.Join(dir, loggerName)
	if b, err := os.ReadFile(path); err == nil && string(b) == loggerScript {
		return path, nil
	}
	tmp := fmt.Sprintf("%s.%d.tmp", path, time.Now().UnixNano())
	if err := os.WriteFile(tmp, []byte(loggerScript), 0o755); err != nil {
		return "", fmt.Errorf("edge: install logger: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("edge: install logger: %w", err)
	}
	return path, nil
}

// newTask creates the task of c with its output sent through the logger. When the shim
// cannot start a logger the Runtime found by itself, it falls back to the next one, for this
// task and the ones after.
func (r *Runtime) newTask(ctx context.Context, c client.Container) (client.Task, error) {
	for {
		i := r.loggerAt.Load()
		l := r.loggers[i]
		task, err := c.NewTask(ctx, cio.LogURI(l.uri))
		if err == nil || int(i)+1 >= len(r.loggers) || !loggerFailed(err) {
			return task, err
		}
		r.log.Warn("containerd's shim could not start the logger: falling back to the next",
			"logger", l.uri.Path, "next", r.loggers[i+1].uri.Path, "err", err)
		r.loggerAt.CompareAndSwap(i, i+1)
	}
}

// loggerFailed reports whether err says that the shim could not start the logger (the
// runc shim's words, containerd 1.6 to 2.x).
func loggerFailed(err error) bool {
	return strings.Contains(err.Error(), "failed to start binary process")
}
