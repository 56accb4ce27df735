package hub

import (
	"context"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/registry/remote"
)

// TestCtr pulls an index from a private project with `ctr images pull --user` through a
// private containerd and pushes it back to another repository with `ctr images push`,
// both through token auth; the digest stays the same. A guest's push is refused.
func TestCtr(t *testing.T) {
	testutil.RequireIntegration(t, "ctr")
	d := testutil.StartContainerd(t)
	th := newTestHub(t)
	rec := &recorder{}
	hs := httptest.NewServer(rec.wrap(th.h.Handler()))
	t.Cleanup(hs.Close)
	host := strings.TrimPrefix(hs.URL, "http://")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	idx := testIndex(t, ctx, 1<<20)
	c, err := remote.NewClient(remote.WithHosts(map[string]remote.HostConfig{host: {PlainHTTP: true}}),
		remote.WithCredentials(host, remote.Credentials{Username: "alice", Password: password}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Push(ctx, host+"/team-a/app:1", idx); err != nil {
		t.Fatal(err)
	}
	ctr := func(args ...string) (string, error) {
		all := append([]string{"--address", d.Address, "--namespace", testutil.Namespace}, args...)
		out, err := exec.CommandContext(ctx, "ctr", all...).CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := ctr(args...)
		if err != nil {
			t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	alice := "alice:" + password
	must("images", "pull", "--plain-http", "--all-platforms", "--user", alice, host+"/team-a/app:1")
	must("images", "push", "--plain-http", "--user", alice, host+"/team-a/copy:1", host+"/team-a/app:1")
	m, err := c.Manifest(ctx, host+"/team-a/copy:1")
	if err != nil {
		t.Fatal(err)
	}
	if m.Descriptor.Digest != idx.Descriptor().Digest {
		t.Errorf("ctr pushed %s, want %s", m.Descriptor.Digest, idx.Descriptor().Digest)
	}
	if out, err := ctr("images", "push", "--plain-http", "--user", "gina:"+password, host+"/team-a/guest:1", host+"/team-a/app:1"); err == nil {
		t.Errorf("a guest pushed with ctr: %s", out)
	}
	if out, err := ctr("images", "pull", "--plain-http", "--all-platforms", "--user", "bob:"+password, host+"/team-a/app:1"); err == nil {
		t.Errorf("bob pulled team-a with ctr: %s", out)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.tokens == 0 || rec.basicOnV2 != 0 {
		t.Errorf("%d token requests, %d requests with basic auth to /v2/: want token auth", rec.tokens, rec.basicOnV2)
	}
}
