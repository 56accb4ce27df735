package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opendao/dao/internal/testutil"
)

// pullEnv is a registry holding busybox, and a containerd to pull it into.
type pullEnv struct{ *testutil.PullEnv }

func newPullEnv(t *testing.T) *pullEnv {
	t.Helper()
	testutil.RequireIntegration(t, "containerd", "runc", "docker-registry")
	e := &pullEnv{testutil.NewPullEnv(t)}
	img := testutil.BuildBusyboxImage(t)
	for _, ref := range []string{e.Reg.Ref("tools/busybox:1"), e.Reg.Addr + "/library/busybox:stable"} {
		e.Push(t, ref, img)
	}
	return e
}

// dao runs dao against the test's containerd, with a registries config of its own (so that
// the machine's /etc/dao/registries.yaml does not count).
func (e *pullEnv) dao(t *testing.T, config string, args ...string) (int, string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "registries.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DAO_REGISTRIES_CONFIG", path)
	args = append([]string{"--address", e.Ctrd.Address, "--namespace", testutil.Namespace}, args...)
	status, out, errOut := runDao(t, args...)
	t.Logf("$ dao %s\n%s%s", strings.Join(args, " "), out, errOut)
	return status, out, errOut
}

func TestPull(t *testing.T) {
	e := newPullEnv(t)
	ref := e.Reg.Ref("tools/busybox:1")

	status, out, errOut := e.dao(t, "", "pull", "--insecure", e.Reg.Addr, ref)
	if status != exitOK || errOut != "" {
		t.Fatalf("dao pull: status %d, stderr %q", status, errOut)
	}
	for _, want := range []string{"Pulling " + ref, "Pull complete", "Pulled " + ref, "digest sha256:", "1 layer of ", " fetched in ", "/s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("dao pull output lacks %q", want)
		}
	}
	// The image is in containerd, unpacked: as containerd's own client sees it.
	ctx := e.Ctrd.Context(context.Background())
	img, err := e.Ctrd.Client.GetImage(ctx, ref)
	if err != nil {
		t.Fatalf("containerd has no image %s after dao pull: %v", ref, err)
	}
	if ok, err := img.IsUnpacked(ctx, "overlayfs"); err != nil || !ok {
		t.Errorf("IsUnpacked = %v, %v; want true", ok, err)
	}

	// Again: the layer is there already.
	status, out, _ = e.dao(t, "", "pull", "--insecure", e.Reg.Addr, ref)
	if status != exitOK || !strings.Contains(out, "Already exists") {
		t.Errorf("second pull: status %d, want 0 and \"Already exists\"", status)
	}
	status, out, _ = e.dao(t, "", "pull", "--quiet", "--insecure", e.Reg.Addr, ref)
	if want := ref + "@" + img.Target().Digest.String() + "\n"; status != exitOK || out != want {
		t.Errorf("pull --quiet printed %q, want %q", out, want)
	}
}

// TestPullThroughMirror pulls docker.io's busybox, which this machine cannot reach, from a
// mirror named in the config file.
func TestPullThroughMirror(t *testing.T) {
	e := newPullEnv(t)
	config := fmt.Sprintf("mirrors:\n  docker.io:\n    endpoint:\n      - http://%s\n", e.Reg.Addr)
	status, out, errOut := e.dao(t, config, "pull", "busybox:stable")
	if status != exitOK || errOut != "" {
		t.Fatalf("dao pull through a mirror: status %d, stderr %q", status, errOut)
	}
	if !strings.Contains(out, "Pulled docker.io/library/busybox:stable") {
		t.Errorf("output lacks the normalised name")
	}
	if _, err := e.Ctrd.Client.GetImage(e.Ctrd.Context(context.Background()), "docker.io/library/busybox:stable"); err != nil {
		t.Errorf("containerd has no image after the pull: %v", err)
	}
}

// TestPullErrors checks that what goes wrong is said in one line, with a non-zero status.
func TestPullErrors(t *testing.T) {
	e := newPullEnv(t)
	down := "127.0.0.1:1" // nothing listens on port 1
	for _, tc := range []struct {
		name, config string
		args         []string
		status       int
		want         string
	}{
		{"unknown image", "", []string{"--insecure", e.Reg.Addr, e.Reg.Ref("tools/nothing:1")}, exitFailure, "no such image in the registry"},
		{"unknown tag", "", []string{"--insecure", e.Reg.Addr, e.Reg.Ref("tools/busybox:2")}, exitFailure, "no such image in the registry"},
		{"unreachable registry", "", []string{"--insecure", down, down + "/app:1"}, exitFailure, "connection refused"},
		{"bad reference", "", []string{"Not//A/Ref"}, exitUsage, "is not an image reference"},
		{"no reference", "", nil, exitUsage, "want one image reference, got 0 arguments"},
		{"bad platform", "", []string{"--platform", "x/y/z/w", "busybox"}, exitUsage, "--platform \"x/y/z/w\""},
		{"config typo", "mirors: {}\n", []string{"busybox"}, exitFailure, "line 1: field mirors not found"},
		{"config bad endpoint", "mirrors:\n  docker.io:\n    endpoint: [ftp://x]\n", []string{"busybox"}, exitFailure, "mirrors.docker.io.endpoint[0]: \"ftp://x\" is not an http:// or https:// URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out, errOut := e.dao(t, tc.config, append([]string{"pull"}, tc.args...)...)
			if status != tc.status {
				t.Errorf("status %d, want %d", status, tc.status)
			}
			if strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.want) || !strings.HasPrefix(errOut, "dao pull: ") {
				t.Errorf("stderr %q: want one line starting \"dao pull: \" with %q", errOut, tc.want)
			}
			if strings.Contains(out, "Pulled") {
				t.Errorf("stdout says it pulled: %q", out)
			}
		})
	}

	// A containerd that does not run.
	status, _, errOut := runDao(t, "--address", nowhere(t), "pull", "busybox")
	if status != exitFailure || !strings.HasPrefix(errOut, "dao: cannot reach containerd at ") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("pull with no containerd: status %d, stderr %q", status, errOut)
	}
}
