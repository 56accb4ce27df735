package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/remote"
	"github.com/opendao/dao/registry/server"
)

// TestMirror pulls an image through a mirror of a second registry, with basic auth on the
// upstream: the digests are the upstream's, a second pull is served from the mirror's
// store without asking the upstream, a tag is asked again after its TTL (and follows the
// upstream), and with the upstream down what was pulled is still served.
func TestMirror(t *testing.T) {
	up := newHub(t) // pushed to directly; served with basic auth on, over the same store
	upAuth, err := server.New(up.store, server.WithAuthorizer(server.BasicAuth("up", map[string]string{"mirror": "pw"})))
	if err != nil {
		t.Fatal(err)
	}
	var upstreamRequests atomic.Int64
	ups := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamRequests.Add(1)
		upAuth.ServeHTTP(w, r)
	}))
	t.Cleanup(ups.Close)
	raw, md := up.pushImage("library/app", "v1", []byte("layer one"))

	// The TTL is long enough that two pulls on a loaded machine fit in it, or the second
	// one asks the upstream for the tag again.
	const ttl = 2 * time.Second
	m, err := server.NewMirror(server.MirrorConfig{Upstream: ups.URL, Username: "mirror", Password: "pw", TTL: ttl})
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
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	pull := func(ref string) (digest.Digest, []digest.Digest) {
		t.Helper()
		got, err := c.Manifest(ctx, host+"/"+ref)
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		var blobs []digest.Digest
		for _, d := range append([]ocispec.Descriptor{got.Image.Config}, got.Image.Layers...) {
			rc, err := c.FetchBlob(ctx, host+"/library/app", d)
			if err != nil {
				t.Fatalf("blob %s: %v", d.Digest, err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				t.Fatalf("blob %s: %v", d.Digest, err)
			}
			rc.Close()
			blobs = append(blobs, d.Digest)
		}
		return got.Descriptor.Digest, blobs
	}
	d, blobs := pull("library/app:v1")
	if d != md || digest.FromBytes(raw) != md {
		t.Errorf("pulled %s through the mirror, the upstream has %s", d, md)
	}
	for _, b := range blobs {
		if _, err := up.store.StatBlob(ctx, b); err != nil {
			t.Errorf("blob %s is not the upstream's: %v", b, err)
		}
	}
	first := upstreamRequests.Load()
	if first == 0 {
		t.Fatal("the upstream was not asked")
	}
	pull("library/app:v1")
	pull("library/app@" + md.String())
	if n := upstreamRequests.Load(); n != first {
		t.Errorf("second pull asked the upstream %d more times, want 0", n-first)
	}

	// The tag moves upstream; after the TTL the mirror follows.
	_, md2 := up.pushImage("library/app", "v1", []byte("layer two"))
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, _ := pull("library/app:v1")
		if d == md2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mirror still serves %s for v1, the upstream %s", d, md2)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Pushes are refused.
	mh.do("POST", "/v2/library/app/blobs/uploads/", nil).want(t, http.StatusMethodNotAllowed, "UNSUPPORTED")

	// The upstream down: what was pulled is served, after the TTL too.
	ups.Close()
	time.Sleep(ttl + 50*time.Millisecond) // past the TTL, so that the tag is asked again
	if d, _ := pull("library/app:v1"); d != md2 {
		t.Errorf("upstream down: v1 is %s, want %s", d, md2)
	}
	pull("library/app@" + md.String())
	if a := mh.do("GET", "/v2/library/app/manifests/v9", nil); a.status == http.StatusOK {
		t.Errorf("a tag never pulled, upstream down: %d", a.status)
	}
}

// TestMirrorNamespace: a mirror with a Namespace serves cache/library/app from the
// upstream's library/app, with its digests, refuses pushes there, and leaves the
// repositories outside the namespace to the store: not fetched, and pushed to.
func TestMirrorNamespace(t *testing.T) {
	up := newHub(t)
	ups := httptest.NewServer(up.srv)
	t.Cleanup(ups.Close)
	raw, md := up.pushImage("library/app", "v1", []byte("layer one"))
	m, err := server.NewMirror(server.MirrorConfig{Upstream: ups.URL, Namespace: "cache"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	mh := newHub(t, server.WithMirror(m))
	a := mh.do("GET", "/v2/cache/library/app/manifests/v1", nil).want(t, http.StatusOK, "")
	if got := digest.FromBytes(a.body); got != md || string(a.body) != string(raw) {
		t.Errorf("cache/library/app:v1 is %s, the upstream's library/app:v1 %s", got, md)
	}
	mh.do("GET", "/v2/library/app/manifests/v1", nil).want(t, http.StatusNotFound, "")
	mh.do("POST", "/v2/cache/library/app/blobs/uploads/", nil).want(t, http.StatusMethodNotAllowed, "UNSUPPORTED")
	mh.pushImage("team/app", "v1", []byte("a layer of our own"))
	if _, err := server.NewMirror(server.MirrorConfig{Upstream: ups.URL, Namespace: "../x"}); err == nil {
		t.Error("a namespace that is no repository name was taken")
	}
}
