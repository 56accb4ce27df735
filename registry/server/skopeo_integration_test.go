package server_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/layout"
	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/server"
)

// TestSkopeo copies a two-platform index with skopeo into the server (with basic auth),
// between two of its repositories (mounting the blobs), and back out to an OCI layout; the
// digests stay the same all the way.
func TestSkopeo(t *testing.T) {
	testutil.RequireIntegration(t, "skopeo")
	h := newHub(t, server.WithAuthorizer(server.BasicAuth("hub", map[string]string{"ci": "secret"})))
	hs := httptest.NewServer(h.srv)
	t.Cleanup(hs.Close)
	host := strings.TrimPrefix(hs.URL, "http://")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var imgs []*oci.Image
	for i, arch := range []string{"amd64", "arm64"} {
		b, err := build.NewLayerBuilder()
		if err != nil {
			t.Fatal(err)
		}
		b.AddFile("app/data", 0o644, bytes.Repeat([]byte{byte('a' + i)}, 1<<20))
		layer, err := b.Build(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { layer.Close() })
		img, err := oci.NewImage([]*oci.Layer{layer}, ocispec.ImageConfig{Cmd: []string{"/bin/true"}},
			oci.WithPlatform(ocispec.Platform{OS: "linux", Architecture: arch}))
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
	}
	idx, err := oci.NewIndex(imgs)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "src")
	if err := layout.Write(ctx, src, "1", idx); err != nil {
		t.Fatal(err)
	}
	skopeo := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, "skopeo", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	creds := []string{"--src-tls-verify=false", "--dest-tls-verify=false", "--src-creds", "ci:secret", "--dest-creds", "ci:secret"}
	skopeo(append([]string{"copy", "--all", "--preserve-digests", "--dest-tls-verify=false", "--dest-creds", "ci:secret"}, "oci:"+src+":1", "docker://"+host+"/team/app:1")...)
	skopeo(append(append([]string{"copy", "--all", "--preserve-digests"}, creds...), "docker://"+host+"/team/app:1", "docker://"+host+"/team/mirror:1")...)
	raw := skopeo("inspect", "--raw", "--tls-verify=false", "--creds", "ci:secret", "docker://"+host+"/team/mirror:1")
	if got, want := digest.FromString(raw), idx.Descriptor().Digest; got != want {
		t.Fatalf("the mirror's index has digest %s, want %s", got, want)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	skopeo(append([]string{"copy", "--all", "--preserve-digests", "--src-tls-verify=false", "--src-creds", "ci:secret"}, "docker://"+host+"/team/mirror:1", "oci:"+dst+":1")...)
	tags := skopeo("list-tags", "--tls-verify=false", "--creds", "ci:secret", "docker://"+host+"/team/app")
	if !strings.Contains(tags, `"1"`) {
		t.Errorf("list-tags: %s", tags)
	}
	skopeo("delete", "--tls-verify=false", "--creds", "ci:secret", "docker://"+host+"/team/mirror:1")
	if out, err := exec.CommandContext(ctx, "skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", "ci:secret", "docker://"+host+"/team/mirror:1").CombinedOutput(); err == nil {
		t.Fatalf("inspect after delete succeeded: %s", out)
	}
}
