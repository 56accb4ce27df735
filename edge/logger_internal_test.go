package edge

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/shimlog"
	"github.com/opendao/dao/internal/testutil"
)

// startLogger starts the logger l as containerd's shim does (see package shimlog) for
// container id, and returns once it is ready, with the write ends of its stdout and stderr
// and how long it took to be ready.
func startLogger(tb testing.TB, l shimLogger, id string) (cmd *exec.Cmd, stdout, stderr *os.File, ready time.Duration) {
	tb.Helper()
	or, ow, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	er, ew, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	rr, rw, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	var args []string
	for k, vs := range l.uri.Query() {
		args = append(args, k, vs[0])
	}
	cmd = exec.Command(l.uri.Path, args...)
	cmd.Env = []string{"CONTAINER_ID=" + id, "CONTAINER_NAMESPACE=test"}
	cmd.ExtraFiles = []*os.File{or, er, rw}
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	rw.Close()
	_, _ = rr.Read(make([]byte, 1)) // a byte or EOF: ready
	ready = time.Since(begin)
	for _, f := range []*os.File{rr, or, er} {
		f.Close()
	}
	return cmd, ow, ew, ready
}

// stopLogger does what the shim does when the task is deleted: it closes the pipes, sends
// SIGTERM and waits for the logger to exit.
func stopLogger(tb testing.TB, cmd *exec.Cmd, stdout, stderr *os.File) {
	tb.Helper()
	stdout.Close()
	stderr.Close()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		tb.Fatalf("logger: %v", err)
	}
}

// buildLoggerBinary builds edge/cmd/dao-shim-logger into a temporary directory, or skips
// the test without a Go toolchain.
func buildLoggerBinary(tb testing.TB) string {
	tb.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		tb.Skip("no go command to build dao-shim-logger")
	}
	out := filepath.Join(tb.TempDir(), loggerBinaryName)
	build := exec.Command(gobin, "build", "-o", out, "github.com/opendao/dao/edge/cmd/dao-shim-logger")
	if b, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("build dao-shim-logger: %v\n%s", err, b)
	}
	return out
}

// loggerKinds returns one logger of each kind, writing to dir.
func loggerKinds(tb testing.TB, dir string) []shimLogger {
	tb.Helper()
	script, err := installLogger(dir)
	if err != nil {
		tb.Fatal(err)
	}
	self := selfExecutable()
	if self == "" {
		tb.Fatal("selfExecutable: the test binary is not found")
	}
	return []shimLogger{
		newShimLogger("binary", buildLoggerBinary(tb), dir),
		newShimLogger("self", self, dir),
		newShimLogger("script", script, dir),
	}
}

// checkLines checks that log holds, in order within each stream, prefix-out-0 to
// prefix-out-(n-1) and prefix-err-0 to prefix-err-(n-1), each once, and returns what is
// wrong, or "".
func checkLines(log []byte, n int) string {
	next := map[string]int{"out": 0, "err": 0}
	sc := bufio.NewScanner(bytes.NewReader(log))
	for sc.Scan() {
		stream, num, ok := strings.Cut(sc.Text(), "-")
		if _, known := next[stream]; !ok || !known {
			continue
		}
		if want := fmt.Sprint(next[stream]); num != want {
			return fmt.Sprintf("%s: line %s where %s was due", stream, num, want)
		}
		next[stream]++
	}
	for stream, got := range next {
		if got != n {
			return fmt.Sprintf("%s: %d of %d lines", stream, got, n)
		}
	}
	return ""
}

// writeLines writes n numbered lines to each of stdout and stderr, at once from two
// goroutines, one write per line as a program's unbuffered output.
func writeLines(stdout, stderr *os.File, n int) {
	var wg sync.WaitGroup
	for stream, f := range map[string]*os.File{"out": stdout, "err": stderr} {
		wg.Go(func() {
			for i := range n {
				fmt.Fprintf(f, "%s-%d\n", stream, i)
			}
		})
	}
	wg.Wait()
}

// TestLoggersKeepEveryLine runs each kind of logger as the shim does: the output written to
// both pipes right before they close is all in the log, SIGTERM sent while the pipes are
// still open does not cut it short, and earlier output in the log is kept (a restarted
// container appends).
func TestLoggersKeepEveryLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, l := range loggerKinds(t, dir) {
		t.Run(l.kind, func(t *testing.T) {
			for round := range 20 {
				id := fmt.Sprintf("%s-%d", l.kind, round)
				path := filepath.Join(dir, id+".log")
				if err := os.WriteFile(path, []byte("earlier\n"), 0o640); err != nil {
					t.Fatal(err)
				}
				cmd, stdout, stderr, _ := startLogger(t, l, id)
				_ = cmd.Process.Signal(syscall.SIGTERM) // ignored until both pipes end
				writeLines(stdout, stderr, 2000)
				stopLogger(t, cmd, stdout, stderr)
				log, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.HasPrefix(log, []byte("earlier\n")) {
					t.Fatalf("%s: the earlier output is gone: %.40q", id, log)
				}
				if msg := checkLines(log, 2000); msg != "" {
					t.Fatalf("%s: %s", id, msg)
				}
			}
		})
	}
}

// TestLoggerRefusesBadIDs: the logger writes only to a file of the log directory.
func TestLoggerRefusesBadIDs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, id := range []string{"", ".", "..", "../x", "a/b"} {
		if code := shimlog.Main(dir, id); code == 0 {
			t.Errorf("Main(%q) = 0, want a failure", id)
		}
	}
}

// TestRuntimeChoosesTheFastestLogger: without dao-shim-logger at hand, a Runtime uses the
// program's own executable if it is statically linked, the script otherwise (and to fall back
// on); with dao-shim-logger beside the executable, on PATH or named, that.
func TestRuntimeChoosesTheFastestLogger(t *testing.T) {
	t.Parallel()
	o := defaultOptions()
	o.logDir = t.TempDir()
	ls, err := chooseLoggers(o)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, l := range ls {
		kinds = append(kinds, l.kind)
	}
	want := "script"
	switch {
	case findLoggerBinary() != "":
		want = "binary script"
	case staticExecutable(selfExecutable()):
		want = "self script"
	}
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("loggers %q, want %q", got, want)
	}
	if ls[0].uri.Query().Get(shimlog.Arg) != o.logDir && ls[0].uri.Query().Get("dir") != o.logDir {
		t.Errorf("logger URI %s does not name the log dir %s", ls[0].uri, o.logDir)
	}

	bin := buildLoggerBinary(t)
	o.loggerBinary = bin
	if ls, err = chooseLoggers(o); err != nil || len(ls) != 1 || ls[0].uri.Path != bin {
		t.Errorf("WithLoggerBinary(%s): loggers %v, %v", bin, ls, err)
	}
	o.loggerBinary = filepath.Join(o.logDir, "missing")
	if _, err := chooseLoggers(o); err == nil || !strings.Contains(err.Error(), "WithLoggerBinary") {
		t.Errorf("WithLoggerBinary(missing): %v, want an error naming the option", err)
	}
}

// TestLoggersKeepEveryLineOfExitingContainers runs, for each kind of logger, containers that
// write many lines to stdout and stderr right before they exit: the log of every one holds
// every line once its task is deleted (the shim's own file logging lost the last lines of
// stderr in some).
func TestLoggersKeepEveryLineOfExitingContainers(t *testing.T) {
	t.Parallel()
	c := testutil.StartContainerd(t)
	ctx := c.Context(t.Context())
	busybox := testutil.BusyboxImage(t, c)
	dir := filepath.Join(c.Dir, "logs")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	const lines = 300
	script := fmt.Sprintf(`i=0; while [ $i -lt %d ]; do echo out-$i; echo err-$i >&2; i=$((i+1)); done`, lines)
	preferred := rt0kind(t)
	for _, l := range loggerKinds(t, dir) {
		n := 20
		if l.kind == preferred { // the default where these tests run
			n = 60
		}
		rt, err := NewFromClient(c.Client, WithNamespace(testutil.Namespace), WithLogDir(dir))
		if err != nil {
			t.Fatal(err)
		}
		rt.loggers = []shimLogger{l}
		for i := range n {
			id := fmt.Sprintf("%s-%d", l.kind, i)
			if _, err := rt.Run(ctx, id, dao.ContainerSpec{Image: busybox, Command: []string{"sh", "-c", script}}); err != nil {
				t.Fatalf("Run(%s): %v", id, err)
			}
		}
		lost := 0
		for i := range n {
			id := fmt.Sprintf("%s-%d", l.kind, i)
			if st, err := rt.Wait(ctx, id); err != nil || st.ExitCode != 0 {
				t.Fatalf("Wait(%s) = %+v, %v", id, st, err)
			}
			// Deleting the task waits for the logger to copy what is left: the log is whole.
			if _, err := rt.Stop(ctx, id); err != nil {
				t.Fatalf("Stop(%s): %v", id, err)
			}
			log, err := os.ReadFile(rt.logPath(id))
			if err == nil {
				if msg := checkLines(log, lines); msg != "" {
					err = fmt.Errorf("%s", msg)
				}
			}
			if err != nil {
				lost++
				t.Errorf("%s: %v", id, err)
			}
		}
		t.Logf("%s: %d of %d containers lost output", l.kind, lost, n)
		if err := rt.Close(); err != nil {
			t.Error(err)
		}
	}
}

// rt0kind returns the kind of logger a Runtime of this test binary prefers.
func rt0kind(t *testing.T) string {
	o := defaultOptions()
	o.logDir = t.TempDir()
	ls, err := chooseLoggers(o)
	if err != nil {
		t.Fatal(err)
	}
	return ls[0].kind
}

// TestRuntimeFallsBackToTheScript: when the shim cannot start the logger the Runtime found
// (one it cannot see), the container starts with the script, and so do the next ones.
func TestRuntimeFallsBackToTheScript(t *testing.T) {
	t.Parallel()
	c := testutil.StartContainerd(t)
	ctx := c.Context(t.Context())
	busybox := testutil.BusyboxImage(t, c)
	rt, err := NewFromClient(c.Client, WithNamespace(testutil.Namespace), WithLogDir(filepath.Join(c.Dir, "logs")))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	script, err := installLogger(rt.opts.logDir)
	if err != nil {
		t.Fatal(err)
	}
	rt.loggers = []shimLogger{
		newShimLogger("self", filepath.Join(c.Dir, "not-here"), rt.opts.logDir),
		newShimLogger("script", script, rt.opts.logDir),
	}
	for _, id := range []string{"first", "second"} {
		if _, err := rt.Run(ctx, id, dao.ContainerSpec{Image: busybox, Command: []string{"echo", "hello"}}); err != nil {
			t.Fatalf("Run(%s): %v", id, err)
		}
		if _, err := rt.Wait(ctx, id); err != nil {
			t.Fatal(err)
		}
		if log, err := os.ReadFile(rt.logPath(id)); err != nil || string(log) != "hello\n" {
			t.Errorf("%s: log %q, %v; want hello", id, log, err)
		}
	}
	if got := rt.loggers[rt.loggerAt.Load()].kind; got != "script" {
		t.Errorf("logger in use: %s, want the script", got)
	}
}

// BenchmarkLoggerStart starts each kind of logger as the shim does, and reports how long it
// takes to be ready (the shim starts the container only then) and the CPU it uses in all
// (its processes' user and system time, from start to exit, with two lines to copy).
func BenchmarkLoggerStart(b *testing.B) {
	dir := b.TempDir()
	for _, l := range loggerKinds(b, dir) {
		b.Run(l.kind, func(b *testing.B) {
			var ready, cpu time.Duration
			for i := range b.N {
				cmd, stdout, stderr, r := startLogger(b, l, fmt.Sprint(i))
				ready += r
				writeLines(stdout, stderr, 1)
				stopLogger(b, cmd, stdout, stderr)
				cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			}
			b.ReportMetric(float64(ready.Microseconds())/float64(b.N), "µs-ready/op")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "µs-cpu/op")
		})
	}
}
