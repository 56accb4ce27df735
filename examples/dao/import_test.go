package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/opendao/dao/internal/testutil"
)

func TestImportHelp(t *testing.T) {
	for _, args := range [][]string{{"help", "import"}, {"import", "-h"}, {"import", "--help"}} {
		status, out, errOut := runDao(t, args...)
		if status != exitOK || errOut != "" {
			t.Errorf("dao %v: status %d, stderr %q; want 0 and nothing", args, status, errOut)
		}
		for _, want := range []string{"Usage: dao import [options] busybox [NAME]", "busybox-static", "dao.local/busybox:latest", "--snapshotter NAME", "(default overlayfs)"} {
			if !strings.Contains(out, want) {
				t.Errorf("dao %v lacks %q:\n%s", args, want, out)
			}
		}
	}
	if _, out, _ := runDao(t, "--help"); !strings.Contains(out, "  import  ") {
		t.Errorf("dao --help does not list import:\n%s", out)
	}
}

func TestImportUsageErrors(t *testing.T) {
	addr := nowhere(t)
	for _, tc := range []struct {
		args []string
		want string // the one line on stderr
	}{
		{[]string{"import"}, "dao import: want what to import: busybox (see 'dao help import')"},
		{[]string{"import", "alpine"}, `dao import: cannot import "alpine": want busybox`},
		{[]string{"import", "busybox", "a", "b"}, `dao import: unexpected argument "b"`},
		{[]string{"import", "busybox", "Not A Name"}, `dao import: "Not A Name" is not an image name such as dao.local/busybox:latest`},
		{[]string{"import", "busybox", "busybox@sha256:" + strings.Repeat("0", 64)}, `dao import: "busybox@sha256:000`},
		{[]string{"import", "--frob", "busybox"}, "dao import: unknown flag: --frob"},
	} {
		status, out, errOut := runDao(t, append([]string{"--address", addr}, tc.args...)...)
		if status != exitUsage || out != "" || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, tc.want) {
			t.Errorf("dao %v: status %d, stdout %q, stderr %q; want %d and one line beginning %q", tc.args, status, out, errOut, exitUsage, tc.want)
		}
	}
}

// TestImportWithoutBusybox: without busybox-static, dao import says which package to install,
// before it looks for containerd.
func TestImportWithoutBusybox(t *testing.T) {
	notELF := filepath.Join(t.TempDir(), "busybox")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ binary, want string }{
		{filepath.Join(t.TempDir(), "missing"), ": not found: install busybox-static (apt-get install busybox-static)\n"},
		{"/bin/true", " is dynamically linked and would not run in an image: install busybox-static (apt-get install busybox-static)\n"},
		{notELF, ": not a program for this machine: "},
	} {
		t.Run(filepath.Base(tc.binary), func(t *testing.T) {
			defer func(b string) { busyboxBinary = b }(busyboxBinary)
			busyboxBinary = tc.binary
			status, out, errOut := runDao(t, "--address", nowhere(t), "import", "busybox")
			if want := "dao import: " + tc.binary + tc.want; status != exitFailure || out != "" || !strings.HasPrefix(errOut, want) {
				t.Errorf("status %d, stdout %q, stderr %q; want 1 and %q", status, out, errOut, want)
			}
		})
	}
}

func TestImportUnreachableContainerd(t *testing.T) {
	requireBusybox(t)
	addr := nowhere(t)
	status, out, errOut := runDao(t, "--address", addr, "import", "busybox")
	want := "dao: cannot reach containerd at " + addr + ": is it running? (connect: no such file or directory)\n"
	if status != exitFailure || out != "" || errOut != want {
		t.Errorf("status %d, stdout %q, stderr %q; want 1 and %q", status, out, errOut, want)
	}
}

// requireBusybox skips the test, or fails it when integration tests are required, if the
// machine has no busybox-static.
func requireBusybox(t *testing.T) {
	t.Helper()
	if err := checkStatic(busyboxBinary); err != nil {
		if testutil.Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// TestImportBusybox imports busybox into a private containerd, twice (the same digest), and
// runs the service of testdata/web.json from it: its web server, and its health check with
// wget, as an agent would, with no registry.
func TestImportBusybox(t *testing.T) {
	requireBusybox(t)
	d := testutil.StartContainerd(t)
	ctx, cancel := context.WithTimeout(d.Context(context.Background()), time.Minute)
	defer cancel()

	var digest string
	for range 2 {
		status, out, errOut := runDao(t, "--address", d.Address, "-n", testutil.Namespace, "import", "busybox")
		t.Logf("$ dao import busybox\n%s%s", out, errOut)
		m := regexp.MustCompile(`^Imported dao.local/busybox:latest\n  digest (sha256:\w{64})\n  1 layer of [\d.]+MB: /usr/bin/busybox with \d+ applets; took `).FindStringSubmatch(out)
		if status != exitOK || errOut != "" || m == nil {
			t.Fatalf("dao import busybox: status %d, stderr %q, stdout %q", status, errOut, out)
		}
		if digest != "" && m[1] != digest {
			t.Errorf("imported again: digest %s, want %s as the first time", m[1], digest)
		}
		digest = m[1]
	}
	img, err := d.Client.GetImage(ctx, defaultBusyboxName)
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Target().Digest.String(); got != digest {
		t.Errorf("image digest %s, want %s as printed", got, digest)
	}
	if ok, err := img.IsUnpacked(ctx, "overlayfs"); !ok || err != nil {
		t.Errorf("image unpacked into overlayfs: %v, %v", ok, err)
	}

	spec, err := readServiceSpec(filepath.Join("testdata", "web.json"))
	if err != nil {
		t.Fatal(err)
	}
	if spec.Container.Image != defaultBusyboxName {
		t.Fatalf("testdata/web.json runs %s, want %s", spec.Container.Image, defaultBusyboxName)
	}
	ct, err := d.Client.NewContainer(ctx, "web", client.WithImage(img), client.WithNewSnapshot("web-rootfs", img),
		client.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs(spec.Container.Command...)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ct.Delete(context.WithoutCancel(ctx), client.WithSnapshotCleanup) })
	task, err := ct.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { task.Delete(context.WithoutCancel(ctx), client.WithProcessKill) })
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if code := execIn(t, ctx, task, "true", "busybox", "true"); code != 0 {
		t.Fatalf("busybox true in the image: exit %d", code)
	}
	// The health check fails until httpd listens.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code := execIn(t, ctx, task, "health", spec.Container.HealthCheck.Command...)
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health check %q still fails (exit %d) after 10s", spec.Container.HealthCheck.Command, code)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// execIn runs args in task as process id and returns its exit code, within 10 seconds.
func execIn(t *testing.T, ctx context.Context, task client.Task, id string, args ...string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	spec, err := task.Spec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pspec := *spec.Process
	pspec.Args = args
	p, err := task.Exec(ctx, id, &pspec, cio.NullIO)
	if err != nil {
		t.Fatalf("exec %v: %v", args, err)
	}
	defer p.Delete(context.WithoutCancel(ctx), client.WithProcessKill)
	exited, err := p.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatalf("exec %v: %v", args, err)
	}
	select {
	case st := <-exited:
		return int(st.ExitCode())
	case <-ctx.Done():
		t.Fatalf("exec %v: no exit within 10s", args)
		return -1
	}
}
