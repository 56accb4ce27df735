package hub

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/remote"
)

// recorder counts what a client sends to the hub.
type recorder struct {
	mu             sync.Mutex
	tokens         int
	basicOnV2      int
	bearerOnV2     int
	denied, unauth int
}

func (rec *recorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		switch {
		case r.URL.Path == "/token":
			rec.tokens++
		case strings.HasPrefix(r.URL.Path, "/v2/"):
			a := r.Header.Get("Authorization")
			if strings.HasPrefix(a, "Basic ") {
				rec.basicOnV2++
			}
			if strings.HasPrefix(a, "Bearer ") {
				rec.bearerOnV2++
			}
		}
		rec.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// testIndex builds an index of two one-layer images of size bytes each.
func testIndex(t *testing.T, ctx context.Context, size int) *oci.Index {
	t.Helper()
	var imgs []*oci.Image
	for i, arch := range []string{"amd64", "arm64"} {
		b, err := build.NewLayerBuilder()
		if err != nil {
			t.Fatal(err)
		}
		b.AddFile("app/data", 0o644, bytes.Repeat([]byte{byte('a' + i)}, size))
		layer, err := b.Build(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { layer.Close() })
		img, err := oci.NewImage([]*oci.Layer{layer}, ocispec.ImageConfig{Cmd: []string{"/bin/true"}, Labels: map[string]string{AnnotationTitle: "App"}},
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
	return idx
}

// TestDaoClient pushes an index of two images with Dao's own client through the hub with
// token auth on, pulls it back and lists it: the client follows the Bearer challenge to
// the token endpoint, sends tokens and never basic auth to /v2/. Another developer's
// client cannot pull it; anonymous clients pull the public project.
func TestDaoClient(t *testing.T) {
	th := newTestHub(t)
	rec := &recorder{}
	hs := httptest.NewServer(rec.wrap(th.h.Handler()))
	t.Cleanup(hs.Close)
	host := strings.TrimPrefix(hs.URL, "http://")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	idx := testIndex(t, ctx, 2<<20)

	client := func(cred *remote.Credentials) *remote.Client {
		opts := []remote.Option{remote.WithHosts(map[string]remote.HostConfig{host: {PlainHTTP: true}})}
		if cred != nil {
			opts = append(opts, remote.WithCredentials(host, *cred))
		}
		c, err := remote.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	alice := client(&remote.Credentials{Username: "alice", Password: password})
	desc, err := alice.Push(ctx, host+"/team-a/app:1", idx)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != idx.Descriptor().Digest {
		t.Fatalf("pushed %s, want %s", desc.Digest, idx.Descriptor().Digest)
	}
	m, err := alice.Manifest(ctx, host+"/team-a/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if m.Index == nil || len(m.Index.Manifests) != 2 {
		t.Fatalf("pulled %+v", m.Descriptor)
	}
	im, err := alice.FetchManifest(ctx, host+"/team-a/app", m.Index.Manifests[1])
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range im.Image.Layers {
		rc, err := alice.FetchBlob(ctx, host+"/team-a/app", l)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil || n != l.Size {
			t.Fatalf("layer: %d bytes, %v", n, err)
		}
	}
	tags, err := alice.Tags(ctx, host+"/team-a/app")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"1"}, tags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
	repos, err := alice.Catalog(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"team-a/app"}, repos); diff != "" {
		t.Errorf("catalog (-want +got):\n%s", diff)
	}
	rec.mu.Lock()
	if rec.tokens == 0 || rec.bearerOnV2 == 0 || rec.basicOnV2 != 0 {
		t.Errorf("%d token requests, %d requests with a token, %d with basic auth: want tokens only", rec.tokens, rec.bearerOnV2, rec.basicOnV2)
	}
	rec.mu.Unlock()

	// bob, of team-b, cannot pull it; nor can an anonymous client.
	bob := client(&remote.Credentials{Username: "bob", Password: password})
	if _, err := bob.Manifest(ctx, host+"/team-a/app:1"); err == nil {
		t.Error("bob pulled team-a/app")
	}
	if _, err := client(nil).Manifest(ctx, host+"/team-a/app:1"); err == nil {
		t.Error("an anonymous client pulled team-a/app")
	}
	// A robot pushes into the public library, which an anonymous client pulls.
	_, secret, err := th.h.CreateRobot(ctx, Robot{Name: "ci", Permissions: []Permission{{Repository: "library/**", Actions: []string{"pull", "push"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client(&remote.Credentials{Username: "robot$ci", Password: secret}).Push(ctx, host+"/library/app:1", idx); err != nil {
		t.Fatal(err)
	}
	if _, err := client(&remote.Credentials{Username: "robot$ci", Password: secret}).Push(ctx, host+"/team-a/robot:1", idx); err == nil {
		t.Error("the robot pushed into team-a")
	}
	m, err = client(nil).Manifest(ctx, host+"/library/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if m.Descriptor.Digest != idx.Descriptor().Digest {
		t.Errorf("anonymous pull: %s, want %s", m.Descriptor.Digest, idx.Descriptor().Digest)
	}
}
