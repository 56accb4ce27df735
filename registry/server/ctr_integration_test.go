package server_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/remote"
	"github.com/opendao/dao/registry/server"
)

// TestCtr pulls an image that Dao's client pushed with containerd's ctr, and pushes it
// back under another name with ctr, with basic auth on: containerd's resolver and pusher
// agree with the server.
func TestCtr(t *testing.T) {
	testutil.RequireIntegration(t, "ctr")
	cd := testutil.StartContainerd(t)
	h := newHub(t, server.WithAuthorizer(server.BasicAuth("hub", map[string]string{"ci": "secret"})))
	hs := httptest.NewServer(h.srv)
	t.Cleanup(hs.Close)
	host := strings.TrimPrefix(hs.URL, "http://")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	b, err := build.NewLayerBuilder()
	if err != nil {
		t.Fatal(err)
	}
	b.AddFile("app/data", 0o644, bytes.Repeat([]byte("ctr"), 1<<18))
	layer, err := b.Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { layer.Close() })
	img, err := oci.NewImage([]*oci.Layer{layer}, ocispec.ImageConfig{Cmd: []string{"/bin/true"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := remote.NewClient(
		remote.WithHosts(map[string]remote.HostConfig{host: {PlainHTTP: true}}),
		remote.WithCredentials(host, remote.Credentials{Username: "ci", Password: "secret"}),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Push(ctx, host+"/team/app:1", img); err != nil {
		t.Fatal(err)
	}
	ctr := func(args ...string) {
		t.Helper()
		args = append([]string{"--address", cd.Address, "--namespace", testutil.Namespace}, args...)
		if out, err := exec.CommandContext(ctx, "ctr", args...).CombinedOutput(); err != nil {
			t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ctr("images", "pull", "--plain-http", "--user", "ci:secret", host+"/team/app:1")
	ctr("images", "push", "--plain-http", "--user", "ci:secret", host+"/team/fromctr:1", host+"/team/app:1")
	req := mustRequest("GET", "/v2/team/fromctr/manifests/1", nil)
	req.SetBasicAuth("ci", "secret")
	a := h.serve(req).want(t, http.StatusOK, "")
	if got, want := a.header.Get("Docker-Content-Digest"), img.Descriptor().Digest.String(); got != want {
		t.Fatalf("ctr pushed %s, want %s", got, want)
	}
}
