package server_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/remote"
	"github.com/opendao/dao/registry/server"
)

// TestMirrorOfDockerRegistry mirrors Debian's docker-registry 2.8 (behind a proxy that
// counts its requests): an image pushed to it with Dao's client is pulled through the
// mirror with the same digests, a second pull does not reach the upstream, and with the
// upstream gone the image is still served.
func TestMirrorOfDockerRegistry(t *testing.T) {
	reg := testutil.StartRegistry(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pusher, err := remote.NewClient(remote.WithHosts(map[string]remote.HostConfig{reg.Addr: {PlainHTTP: true}}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pusher.Close() })
	b, err := build.NewLayerBuilder()
	if err != nil {
		t.Fatal(err)
	}
	b.AddFile("app/data", 0o644, bytes.Repeat([]byte("mirrored "), 200000))
	layer, err := b.Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { layer.Close() })
	img, err := oci.NewImage([]*oci.Layer{layer}, ocispec.ImageConfig{Cmd: []string{"/app"}})
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := pusher.Push(ctx, reg.Addr+"/team/app:1", img)
	if err != nil {
		t.Fatal(err)
	}

	target, _ := url.Parse("http://" + reg.Addr)
	var upstreamRequests atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(target)
	ups := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamRequests.Add(1)
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(ups.Close)
	m, err := server.NewMirror(server.MirrorConfig{Upstream: ups.URL, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	mh := newHub(t, server.WithMirror(m))
	ms := httptest.NewServer(mh.srv)
	t.Cleanup(ms.Close)
	host := strings.TrimPrefix(ms.URL, "http://")
	c, err := remote.NewClient(remote.WithHosts(map[string]remote.HostConfig{host: {PlainHTTP: true}}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	pull := func() {
		t.Helper()
		got, err := c.Manifest(ctx, host+"/team/app:1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Descriptor.Digest != pushed.Digest {
			t.Fatalf("pulled %s through the mirror, pushed %s", got.Descriptor.Digest, pushed.Digest)
		}
		for _, d := range append([]ocispec.Descriptor{got.Image.Config}, got.Image.Layers...) {
			rc, err := c.FetchBlob(ctx, host+"/team/app", d)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				t.Fatalf("blob %s: %v", d.Digest, err)
			}
			rc.Close()
		}
	}
	pull()
	first := upstreamRequests.Load()
	if first == 0 {
		t.Fatal("the upstream was not asked")
	}
	pull()
	if n := upstreamRequests.Load() - first; n != 0 {
		t.Errorf("the second pull asked the upstream %d times", n)
	}
	ups.Close()
	pull()
}
