package hub

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/server"
	"github.com/opendao/dao/registry/server/storage"
)

// TestProxyCacheProject: a project bound to an upstream registry serves its images
// under the project's name, with the upstream's digests, to those the project lets
// pull (a member with a token; not a user of another project, not anonymous callers);
// pushes are refused, even to a developer; what it caches counts in its usage, also
// after a restart; the hub's other projects are pushed to as before.
func TestProxyCacheProject(t *testing.T) {
	upStore, err := storage.OpenFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	upSrv, err := server.New(upStore)
	if err != nil {
		t.Fatal(err)
	}
	ups := httptest.NewServer(upSrv)
	t.Cleanup(ups.Close)
	up := &testHub{t: t, srv: ups, url: ups.URL}
	img := newImage([]byte("an upstream layer"), nil, map[string]string{"from": "upstream"})
	up.pushImage("", "library/app", "v1", img)

	proxies := func(c *Config) {
		c.ProxyCaches = map[string]server.MirrorConfig{"dockerhub": {Upstream: ups.URL}}
	}
	th := newTestHub(t, proxies)
	ctx := context.Background()
	if err := th.h.CreateProject(ctx, Project{Name: "dockerhub", Members: map[string]Role{"alice": RoleDeveloper}}); err != nil {
		t.Fatal(err)
	}
	if u, ok := th.h.ProxyCache("dockerhub"); !ok || u != ups.URL {
		t.Errorf("ProxyCache(dockerhub) = %q, %v", u, ok)
	}
	tok := bearer(th.token(basic("alice", password), "repository:dockerhub/library/app:pull,push"))
	a := th.do(tok, "GET", "/v2/dockerhub/library/app/manifests/v1", nil, "Accept", ocispec.MediaTypeImageManifest).want(t, http.StatusOK, "")
	if got := digestFromBytes(a.body); got != img.digest() || a.header.Get("Docker-Content-Digest") != img.digest().String() {
		t.Fatalf("pulled %s through the proxy, the upstream has %s", got, img.digest())
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatal(err)
	}
	for _, d := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
		b := th.do(tok, "GET", "/v2/dockerhub/library/app/blobs/"+d.Digest.String(), nil).want(t, http.StatusOK, "")
		if digestFromBytes(b.body) != d.Digest {
			t.Errorf("blob %s: got %s", d.Digest, digestFromBytes(b.body))
		}
	}
	// The hub's access control applies.
	th.do(basic("bob", password), "GET", "/v2/dockerhub/library/app/manifests/v1", nil).want(t, http.StatusForbidden, "DENIED")
	th.do("", "GET", "/v2/dockerhub/library/app/manifests/v1", nil).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
	// No pushes, even from a developer; other projects are pushed to as before.
	th.pushBlob(tok, "dockerhub/library/app", []byte("ours")).want(t, http.StatusMethodNotAllowed, "UNSUPPORTED")
	th.do(basic("root", password), "DELETE", "/v2/dockerhub/library/app/manifests/v1", nil).want(t, http.StatusMethodNotAllowed, "UNSUPPORTED")
	th.pushImage(basic("alice", password), "team-a/app", "v1", newImage([]byte("ours"), nil, nil))

	want := int64(len(img.config) + len(img.layer) + len(img.manifest))
	if used, _, _ := th.h.Usage("dockerhub"); used != want {
		t.Errorf("dockerhub uses %d bytes, want %d", used, want)
	}
	// The upstream down, a restart: the cache serves and counts what it holds.
	ups.Close()
	th.close()
	th2 := openTestHub(t, th.root, proxies)
	if used, _, _ := th2.h.Usage("dockerhub"); used != want {
		t.Errorf("after a restart dockerhub uses %d bytes, want %d", used, want)
	}
	a = th2.do(basic("alice", password), "GET", "/v2/dockerhub/library/app/manifests/"+img.digest().String(), nil).want(t, http.StatusOK, "")
	if digestFromBytes(a.body) != img.digest() {
		t.Error("the cache serves another manifest")
	}
}

// TestProxyCacheRefused: a proxy cache that would take pushes, or names another
// namespace, or no upstream, is refused.
func TestProxyCacheRefused(t *testing.T) {
	for name, mc := range map[string]server.MirrorConfig{
		"allowPush":   {Upstream: "http://127.0.0.1:1", AllowPush: true},
		"namespace":   {Upstream: "http://127.0.0.1:1", Namespace: "other"},
		"no upstream": {},
	} {
		_, err := New(context.Background(), Config{Root: t.TempDir(), ProxyCaches: map[string]server.MirrorConfig{"cache": mc}})
		if !errors.Is(err, ErrInvalidOption) {
			t.Errorf("%s: %v, want ErrInvalidOption", name, err)
		}
	}
}
