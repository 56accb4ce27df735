// Package shimlog is the logger that containerd's shim starts for each container through its
// binary log protocol (a "binary://" log URI): it appends the container's stdout and stderr
// to the container's log file until both end.
//
// The protocol, as the runc shim (containerd 1.6 to 2.x) speaks it: the shim execs the
// URI's path with the URI's query as arguments (key, value, key, value, in no fixed order),
// with only CONTAINER_ID and CONTAINER_NAMESPACE in the environment, the read ends of the
// container's stdout and stderr pipes as fd 3 and fd 4, and the write end of a readiness
// pipe as fd 5. The shim waits until fd 5 has a byte or reaches EOF before it starts the
// container (containerd 2's "binary-v2" scheme needs the byte). It holds the write ends of
// the output pipes until the task is deleted; then it closes them, sends SIGTERM, and waits
// up to 12 seconds for the logger to exit before it kills it.
//
// This logger ignores SIGTERM and copies until EOF on both pipes, so a deleted task's log is
// whole. It opens the log file before it reports ready, so a log that cannot be opened fails
// under binary-v2 instead of losing the container's output.
//
// A program becomes the logger by importing this package: its init function recognises the
// arguments the shim passes ([Arg] and the log directory) and never returns when it finds
// them. Go initialises, of the packages whose imports are initialised, the first by import
// path; this one imports only os and os/signal (and io, syscall), so it runs right after
// them, before most of a large program's package initialisers (27th of the 264 in edge's test
// binary, in its first millisecond). Package edge imports it, so every program that uses
// edge can serve as its own logger.
package shimlog

import (
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Arg is the key of the log URI's only query parameter, whose value is the log directory:
// the shim passes it as the first argument, the directory as the second.
const Arg = "dao-shim-log"

// The file descriptors the shim passes.
const (
	stdoutFD = 3
	stderrFD = 4
	readyFD  = 5
)

func init() {
	if dir, ok := started(os.Args, os.Getenv); ok {
		os.Exit(Main(dir, os.Getenv("CONTAINER_ID")))
	}
}

// started reports whether args and the environment are those the shim starts a logger with,
// and the log directory they name.
func started(args []string, getenv func(string) string) (dir string, ok bool) {
	if len(args) != 3 || args[1] != Arg || getenv("CONTAINER_ID") == "" {
		return "", false
	}
	return args[2], true
}

// Main runs the logger of container id: it appends the output on fd 3 and fd 4 to
// dir/id.log until both reach EOF, and returns the process's exit code. A write that fails
// (a full disk) drops that output and copying goes on, so the container never blocks on a
// logger that stopped reading.
func Main(dir, id string) int {
	// Deleting the task sends SIGTERM once the pipes are closed: copy what is left first.
	signal.Ignore(syscall.SIGTERM)
	if !validID(id) {
		_, _ = os.Stderr.WriteString("dao shim logger: bad container id " + id + "\n")
		return 2
	}
	log, err := os.OpenFile(dir+"/"+id+".log", os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		_, _ = os.Stderr.WriteString("dao shim logger: " + err.Error() + "\n")
		return 1
	}
	ready := os.NewFile(readyFD, "ready")
	_, _ = ready.Write([]byte{1})
	_ = ready.Close()

	done := make(chan struct{})
	go func() {
		drain(log, os.NewFile(stdoutFD, "stdout"))
		close(done)
	}()
	drain(log, os.NewFile(stderrFD, "stderr"))
	<-done
	_ = log.Close()
	return 0
}

// drain copies from src to dst until src reaches EOF (or fails), and closes src. Each read is
// one write, so what a container writes at once is not split by the other stream's output
// beyond what the pipe splits.
func drain(dst io.Writer, src *os.File) {
	defer src.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			_, _ = dst.Write(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// validID reports whether id names a file in the log directory and no other: containerd's
// IDs are, but the logger does not count on what it is given.
func validID(id string) bool {
	if id == "" || id == "." || id == ".." {
		return false
	}
	for i := range len(id) {
		if id[i] == '/' || id[i] == 0 {
			return false
		}
	}
	return true
}
