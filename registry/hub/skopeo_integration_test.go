package hub

import (
	"context"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/registry/layout"
)

// TestSkopeo copies a two-platform index with skopeo into a private project through
// token auth (--dest-creds), between two repositories of it, and back out to an OCI
// layout; the digests stay the same. A guest's credentials cannot copy in, and another
// project's developer cannot copy out.
func TestSkopeo(t *testing.T) {
	testutil.RequireIntegration(t, "skopeo")
	th := newTestHub(t)
	rec := &recorder{}
	hs := httptest.NewServer(rec.wrap(th.h.Handler()))
	t.Cleanup(hs.Close)
	host := strings.TrimPrefix(hs.URL, "http://")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	idx := testIndex(t, ctx, 1<<20)
	src := filepath.Join(t.TempDir(), "src")
	if err := layout.Write(ctx, src, "1", idx); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, "skopeo", args...).CombinedOutput()
		return string(out), err
	}
	skopeo := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	alice := "alice:" + password
	skopeo("copy", "--all", "--preserve-digests", "--dest-tls-verify=false", "--dest-creds", alice, "oci:"+src+":1", "docker://"+host+"/team-a/app:1")
	skopeo("copy", "--all", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false", "--src-creds", alice, "--dest-creds", alice,
		"docker://"+host+"/team-a/app:1", "docker://"+host+"/team-a/mirror:1")
	raw := skopeo("inspect", "--raw", "--tls-verify=false", "--creds", alice, "docker://"+host+"/team-a/mirror:1")
	if got, want := digest.FromString(raw), idx.Descriptor().Digest; got != want {
		t.Fatalf("the mirror's index has digest %s, want %s", got, want)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	skopeo("copy", "--all", "--preserve-digests", "--src-tls-verify=false", "--src-creds", alice, "docker://"+host+"/team-a/mirror:1", "oci:"+dst+":1")
	if tags := skopeo("list-tags", "--tls-verify=false", "--creds", alice, "docker://"+host+"/team-a/app"); !strings.Contains(tags, `"1"`) {
		t.Errorf("list-tags: %s", tags)
	}
	rec.mu.Lock()
	if rec.tokens == 0 || rec.basicOnV2 != 0 {
		t.Errorf("%d token requests, %d requests with basic auth to /v2/: want token auth", rec.tokens, rec.basicOnV2)
	}
	rec.mu.Unlock()

	if out, err := run("copy", "--all", "--dest-tls-verify=false", "--dest-creds", "gina:"+password, "oci:"+src+":1", "docker://"+host+"/team-a/guest:1"); err == nil {
		t.Errorf("a guest copied in: %s", out)
	}
	if out, err := run("copy", "--all", "--src-tls-verify=false", "--src-creds", "bob:"+password, "docker://"+host+"/team-a/app:1", "oci:"+filepath.Join(t.TempDir(), "bob")+":1"); err == nil {
		t.Errorf("bob copied team-a out: %s", out)
	}
	if out, err := run("inspect", "--raw", "--tls-verify=false", "--no-creds", "docker://"+host+"/team-a/app:1"); err == nil {
		t.Errorf("an anonymous inspect succeeded: %s", out)
	}
}
