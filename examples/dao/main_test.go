package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/opendao/dao/internal/testutil"
)

// runDao runs the command in process and returns its exit status and outputs.
func runDao(t *testing.T, args ...string) (status int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	status = run(args, strings.NewReader(""), &out, &errOut)
	if s := out.String() + errOut.String(); strings.Contains(s, "\x1b[") {
		t.Errorf("dao %s: colour escapes in output that is not a terminal:\n%q", strings.Join(args, " "), s)
	}
	return status, out.String(), errOut.String()
}

// nowhere is the address of a containerd that does not exist, so that no test reaches the
// system's containerd by accident.
func nowhere(t *testing.T) string { return filepath.Join(t.TempDir(), "containerd.sock") }

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		status, out, errOut := runDao(t, args...)
		if status != exitOK || errOut != "" {
			t.Errorf("dao %v: status %d, stderr %q; want 0 and nothing", args, status, errOut)
		}
		for _, want := range []string{"Usage: dao [options] COMMAND", "clean ", "ps ", "pull ", "version ", "--address", "--namespace", "--no-color", "--verbose"} {
			if !strings.Contains(out, want) {
				t.Errorf("dao %v lacks %q:\n%s", args, want, out)
			}
		}
	}
	for _, args := range [][]string{{"help", "clean"}, {"clean", "--help"}, {"--address", "x", "clean", "-h"}} {
		status, out, _ := runDao(t, args...)
		if status != exitOK {
			t.Errorf("dao %v: status %d, want 0", args, status)
		}
		for _, want := range []string{"Usage: dao clean [options]", "--dry-run", "--all", "--until WHEN", "--filter FILTER", "--snapshotter NAME", "(default overlayfs)"} {
			if !strings.Contains(out, want) {
				t.Errorf("dao %v lacks %q:\n%s", args, want, out)
			}
		}
	}
}

func TestUsageErrors(t *testing.T) {
	addr := nowhere(t)
	for _, tc := range []struct {
		args []string
		want string // the one line on stderr
	}{
		{nil, "Usage: dao"},
		{[]string{"frobnicate"}, `dao: unknown command "frobnicate" (see 'dao --help')`},
		{[]string{"--frob", "ps"}, "dao: unknown flag: --frob (see 'dao --help')"},
		{[]string{"pul", "busybox"}, `dao: unknown command "pul": did you mean "pull"? (see 'dao --help')`},
		{[]string{"pul", "--insecure", "x", "busybox"}, `dao: unknown command "pul": did you mean "pull"? (see 'dao --help')`},
		{[]string{"cleen"}, `dao: unknown command "cleen": did you mean "clean"?`},
		{[]string{"p"}, `dao: unknown command "p": did you mean "ps" or "pull"?`},
		{[]string{"control"}, `dao: unknown command "control": did you mean "control-plane"?`},
		{[]string{"zzzzzz"}, `dao: unknown command "zzzzzz" (see 'dao --help')`},
		{[]string{"version", "extra"}, `dao version: unexpected argument "extra" (see 'dao help version')`},
		{[]string{"help", "pul"}, `dao: no help for unknown command "pul": did you mean "pull"?`},
		{[]string{"ps", "--nosuch"}, "dao ps: unknown flag: --nosuch (see 'dao help ps')"},
		{[]string{"ps", "-z"}, "dao ps: unknown shorthand flag: 'z' in -z (see 'dao help ps')"},
		{[]string{"ps", "-o", "yaml"}, `dao ps: invalid argument "yaml" for "-o, --output" flag: want table or json`},
		{[]string{"pull", "a", "b"}, "dao pull: want one image reference, got 2 arguments"},
		{[]string{"--namespace", "a/b", "ps"}, `dao: --namespace "a/b": want letters and digits`},
		{[]string{"clean", "-o", "json"}, "dao clean: -o json asks no confirmation: give -f (or --dry-run) too"},
		{[]string{"clean", "--filter", "until=yesterday"}, `dao clean: --filter until="yesterday": want a duration (24h) or a time`},
		{[]string{"clean", "--filter", "until=1h", "--until", "2h"}, `dao clean: --filter "until=1h": only one until`},
		{[]string{"help", "frobnicate"}, `dao: no help for unknown command "frobnicate"`},
		{[]string{"clean", "--frob"}, "dao clean: unknown flag: --frob (see 'dao help clean')"},
		{[]string{"clean", "everything"}, `dao clean: unexpected argument "everything"`},
		{[]string{"clean", "--until", "yesterday"}, `dao clean: --until "yesterday": want a duration (24h) or a time`},
		{[]string{"clean", "--until", "2999-01-01"}, `dao clean: --until "2999-01-01": that is not in the past`},
		{[]string{"clean", "--filter", "tier=web"}, `dao clean: --filter "tier=web": want label=<key>[=<value>] or label!=<key>[=<value>]`},
		{[]string{"clean", "--filter", "label="}, `dao clean: --filter "label=": want a label key`},
	} {
		args := append([]string{"--address", addr}, tc.args...)
		status, out, errOut := runDao(t, args...)
		if status != exitUsage {
			t.Errorf("dao %v: status %d, want %d (stderr %q)", tc.args, status, exitUsage, errOut)
		}
		if tc.args != nil && (strings.Count(errOut, "\n") != 1 || out != "") {
			t.Errorf("dao %v: want one line on stderr and nothing on stdout, got stderr %q, stdout %q", tc.args, errOut, out)
		}
		if !strings.HasPrefix(errOut, tc.want) {
			t.Errorf("dao %v: stderr %q, want it to begin with %q", tc.args, errOut, tc.want)
		}
	}
}

func TestUnreachableContainerd(t *testing.T) {
	missing := nowhere(t)
	// A socket file nobody listens on, as a crashed containerd leaves behind.
	stale := filepath.Join(t.TempDir(), "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()

	for _, tc := range []struct{ addr, cause string }{
		{missing, "connect: no such file or directory"},
		{"unix://" + missing, "connect: no such file or directory"},
		{stale, "connect: connection refused"},
	} {
		for _, cmd := range [][]string{{"clean"}, {"clean", "--dry-run", "--all"}, {"ps"}} {
			began := time.Now()
			status, out, errOut := runDao(t, append([]string{"--address", tc.addr}, cmd...)...)
			want := "dao: cannot reach containerd at " + tc.addr + ": is it running? (" + tc.cause + ")\n"
			if status != exitFailure || errOut != want || out != "" {
				t.Errorf("dao --address %s %v:\n status %d, stderr %q, stdout %q\nwant status 1, stderr %q", tc.addr, cmd, status, errOut, out, want)
			}
			if d := time.Since(began); d > dialTimeout {
				t.Errorf("dao %v took %s to say containerd is not there", cmd, d)
			}
		}
	}
}

func TestVersionWithoutContainerd(t *testing.T) {
	addr := nowhere(t)
	for _, args := range [][]string{{"--address", addr, "--version"}, {"--address", addr, "version"}} {
		status, out, errOut := runDao(t, args...)
		if status != exitOK || errOut != "" {
			t.Errorf("dao %v: status %d, stderr %q; want 0 and nothing", args, status, errOut)
		}
		for _, want := range []string{"dao         dev\n", "go          " + runtime.Version(), "containerd  not reachable at " + addr + " (connect: no such file or directory)"} {
			if !strings.Contains(out, want) {
				t.Errorf("dao %v lacks %q:\n%s", args, want, out)
			}
		}
	}
}

func TestVersionFrom(t *testing.T) {
	vcs := []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.time", Value: "2026-12-03T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}
	for _, tc := range []struct {
		name, set string
		info      *debug.BuildInfo
		want      versionInfo
	}{
		{"no build info", "dev", nil, versionInfo{Version: "dev"}},
		{"go install", "dev", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, versionInfo{Version: "v1.2.3"}},
		{"a release build", "v9.9.9", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, versionInfo{Version: "v9.9.9"}},
		{"go build in a checkout", "dev", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs},
			versionInfo{Version: "dev", Revision: "0123456789abcdef", Time: "2026-12-03T10:00:00Z", Modified: true}},
	} {
		var got versionInfo
		versionFrom(&got, tc.set, tc.info)
		if got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestParseUntil(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"24h", 24 * time.Hour},
		{"90m", 90 * time.Minute},
		{"0s", 0},
		{"2026-03-10T11:00:00Z", time.Hour},
		{"2026-03-10T13:00:00+02:00", time.Hour},
		{"2026-03-09T12:00:00.5Z", 24*time.Hour - 500*time.Millisecond},
		{"1773140400", time.Hour}, // Unix seconds of 2026-03-10T11:00:00Z
		{"1773140400.5", time.Hour - 500*time.Millisecond},
		{"2026-03-10T11:00Z", time.Hour},
		{"2026-03-10T11Z", time.Hour},
		{"2026-03-10T12:00:00+01:00", time.Hour},
		{"2026-03-09Z", 36 * time.Hour},
	} {
		got, err := parseUntil(tc.in, now)
		if err != nil || got != tc.want {
			t.Errorf("parseUntil(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "-1h", "tomorrow", "2026-03-11", "2026-13-01"} {
		if got, err := parseUntil(bad, now); err == nil {
			t.Errorf("parseUntil(%q) = %v, want an error", bad, got)
		}
	}
}

// TestBinary builds dao as a program, with its version set by -ldflags as a release would,
// and runs it.
func TestBinary(t *testing.T) {
	testutil.RequireIntegration(t, "go")
	bin := filepath.Join(t.TempDir(), "dao")
	build := exec.Command("go", "build", "-ldflags=-X main.version=v0.0.0-test", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addr := nowhere(t)
	for _, tc := range []struct {
		args   []string
		status int
		stdout string
		stderr string
	}{
		{[]string{"--help"}, 0, "Usage: dao [options] COMMAND [ARGS...]", ""},
		{[]string{"--address", addr, "--version"}, 0, "dao         v0.0.0-test\n", ""},
		{[]string{"--address", addr, "clean", "--dry-run"}, 1, "", "dao: cannot reach containerd at " + addr + ": is it running? (connect: no such file or directory)\n"},
		{[]string{"--address", addr, "frobnicate"}, 2, "", "dao: unknown command \"frobnicate\" (see 'dao --help')\n"},
	} {
		cmd := exec.Command(bin, tc.args...)
		cmd.Env = append(os.Environ(), "CONTAINERD_ADDRESS="+addr)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		status := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			status = exit.ExitCode()
		} else if err != nil {
			t.Fatalf("run %v: %v", tc.args, err)
		}
		if status != tc.status || !strings.Contains(stdout.String(), tc.stdout) || stderr.String() != tc.stderr {
			t.Errorf("dao %v: status %d, stdout %q, stderr %q\nwant status %d, stdout with %q, stderr %q",
				tc.args, status, stdout.String(), stderr.String(), tc.status, tc.stdout, tc.stderr)
		}
	}
}

// TestFlagsAfterArguments checks that flags go after the arguments and the command too, as
// docker takes them: the command line parses, and dao goes on to containerd.
func TestFlagsAfterArguments(t *testing.T) {
	config := filepath.Join(t.TempDir(), "registries.yaml")
	if err := os.WriteFile(config, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DAO_REGISTRIES_CONFIG", config)
	addr := nowhere(t)
	want := "dao: cannot reach containerd at " + addr + ": is it running? (connect: no such file or directory)\n"
	for _, args := range [][]string{
		{"pull", "busybox", "--insecure", "registry.local:5000", "--address", addr},
		{"pull", "-q", "busybox", "--address=" + addr},
		{"ps", "-aq", "--address", addr},
		{"-n", "other", "ps", "--address", addr, "-o", "json"},
		{"clean", "-af", "--filter", "until=24h", "--address", addr},
		{"clean", "--address", addr, "--dry-run", "--format", "json"},
	} {
		status, out, errOut := runDao(t, args...)
		if status != exitFailure || errOut != want || out != "" {
			t.Errorf("dao %v: status %d, stderr %q, stdout %q; want 1 and %q", args, status, errOut, out, want)
		}
	}
}

func TestConfirm(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error // nil: go on
		hint bool  // the hint to give -f
	}{
		{"y\n", nil, false},
		{"Y\n", nil, false},
		{"yes\n", nil, false},
		{" y \n", nil, false},
		{"y", nil, false}, // no newline before the end
		{"n\n", errNotConfirmed, false},
		{"\n", errNotConfirmed, true},
		{"", errNotConfirmed, true},
		{"yy\n", errNotConfirmed, false},
	} {
		var out bytes.Buffer
		g := &globals{stdin: strings.NewReader(tc.in), stdout: &out}
		err := confirm(context.Background(), g)
		if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
			t.Errorf("answer %q: %v, want %v", tc.in, err, tc.want)
		}
		if hint := err != nil && strings.Contains(err.Error(), "give -f"); hint != tc.hint {
			t.Errorf("answer %q: %v: hint %v, want %v", tc.in, err, hint, tc.hint)
		}
		if !strings.HasPrefix(out.String(), "Are you sure you want to continue? [y/N] ") {
			t.Errorf("answer %q: the question is %q", tc.in, out.String())
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, w, err := os.Pipe() // an answer that never comes
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if err := confirm(ctx, &globals{stdin: r, stdout: io.Discard}); !errors.Is(err, errNotConfirmed) {
		t.Errorf("interrupted: %v, want errNotConfirmed", err)
	}
}
