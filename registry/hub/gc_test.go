package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/server/gc"
	"github.com/opendao/dao/registry/server/storage"
)

// TestGCFreesQuota: a project at its quota refuses a push; once its tags are deleted, a
// collection removes the untagged manifests and the blobs only they referenced, the
// project's usage drops by them (a blob another project's image still references stays
// counted in both, as long as it is stored), the refused push fits, and the usage is the
// same after a restart.
func TestGCFreesQuota(t *testing.T) {
	th := newTestHub(t)
	ctx := context.Background()
	if err := th.h.SetQuota(ctx, "team-a", 64<<10); err != nil {
		t.Fatal(err)
	}
	alice, bob, mo := basic("alice", password), basic("bob", password), basic("mo", password)
	imgA := newImage(bytes.Repeat([]byte("a"), 40<<10), nil, map[string]string{"n": "a"})
	shared := newImage(bytes.Repeat([]byte("s"), 8<<10), nil, map[string]string{"n": "shared"})
	th.pushImage(alice, "team-a/app", "v1", imgA)
	th.pushImage(alice, "team-a/lib", "v1", shared)
	th.pushImage(bob, "team-b/app", "v1", shared)
	size := func(imgs ...image) (n int64) {
		for _, i := range imgs {
			n += int64(len(i.config) + len(i.layer) + len(i.manifest))
		}
		return n
	}
	usage := func(th *testHub, project string, want int64) {
		t.Helper()
		if used, _, _ := th.h.Usage(project); used != want {
			t.Fatalf("%s uses %d bytes, want %d", project, used, want)
		}
	}
	usage(th, "team-a", size(imgA, shared))
	usage(th, "team-b", size(shared))
	big := bytes.Repeat([]byte("b"), 40<<10)
	th.pushBlob(alice, "team-a/app", big).want(t, http.StatusForbidden, "DENIED")

	th.do(mo, "DELETE", "/v2/team-a/app/manifests/v1", nil).want(t, http.StatusAccepted, "")
	th.do(mo, "DELETE", "/v2/team-a/lib/manifests/v1", nil).want(t, http.StatusAccepted, "")
	usage(th, "team-a", size(imgA, shared)) // untagged, still stored
	time.Sleep(50 * time.Millisecond)
	rep, err := th.h.CollectGarbage(ctx, gc.WithGrace(10*time.Millisecond), gc.WithDeleteUntagged(true))
	if err != nil {
		t.Fatal(err)
	}
	wantUntagged := []string{"team-a/app@" + imgA.digest().String(), "team-a/lib@" + shared.digest().String()}
	if got := slices.Sorted(slices.Values(rep.UntaggedDeleted)); !slices.Equal(got, wantUntagged) {
		t.Errorf("untagged deleted %v, want %v", got, wantUntagged)
	}
	// imgA's config, layer and manifest are gone; the shared image's blobs are linked
	// into team-a/lib still, and stored for team-b: counted in both.
	if rep.BlobsDeleted != 3 || rep.BytesFreed != size(imgA) {
		t.Errorf("%d blobs (%d bytes) deleted, want 3 (%d bytes)", rep.BlobsDeleted, rep.BytesFreed, size(imgA))
	}
	usage(th, "team-a", int64(len(shared.config)+len(shared.layer)))
	usage(th, "team-b", size(shared))

	// The push refused fits now.
	imgB := newImage(big, nil, map[string]string{"n": "b"})
	th.pushImage(alice, "team-a/app", "v2", imgB)
	want := int64(len(shared.config)+len(shared.layer)) + size(imgB)
	usage(th, "team-a", want)

	root := th.root
	th.close()
	th2 := openTestHub(t, root)
	usage(th2, "team-a", want)
	usage(th2, "team-b", size(shared))

	// team-b deletes its image too: the shared blobs go, from both projects' usage.
	th2.do(basic("root", password), "DELETE", "/v2/team-b/app/manifests/"+shared.digest().String(), nil).want(t, http.StatusAccepted, "")
	time.Sleep(50 * time.Millisecond)
	if _, err := th2.h.CollectGarbage(ctx, gc.WithGrace(10*time.Millisecond), gc.WithDeleteUntagged(true)); err != nil {
		t.Fatal(err)
	}
	usage(th2, "team-a", size(imgB))
	usage(th2, "team-b", 0)
	th2.close()
	th3 := openTestHub(t, root)
	usage(th3, "team-a", size(imgB))
	usage(th3, "team-b", 0)
}

// TestGCUnderConcurrentPushes runs the hub's collections back to back (from its GCConfig,
// with a grace period far shorter than a push) while 50 clients with tokens push images
// into two projects (sharing a base layer across them, moving tags so that manifests
// become untagged), leave blobs no manifest references and pull each other's images.
// Afterwards every manifest linked into every repository is whole and every digest it
// references is stored and hashes right, pulled through the hub; the usage the hub kept
// is the one a recount finds; and a last collection removes the garbage.
func TestGCUnderConcurrentPushes(t *testing.T) {
	var rounds, deleted, untagged atomic.Int64
	var gcErr atomic.Value
	th := newTestHub(t, func(c *Config) {
		c.GC = GCConfig{Interval: time.Millisecond,
			Options: []gc.Option{gc.WithGrace(50 * time.Millisecond), gc.WithDeleteUntagged(true)},
			Report: func(rep gc.Report, err error) {
				if err != nil {
					gcErr.Store(err)
				}
				rounds.Add(1)
				deleted.Add(int64(rep.BlobsDeleted))
				untagged.Add(int64(len(rep.UntaggedDeleted)))
			}}
	})
	ctx := context.Background()
	for _, p := range []string{"team-a", "team-b"} {
		if err := th.h.SetQuota(ctx, p, 1<<30); err != nil {
			t.Fatal(err)
		}
	}
	type client struct {
		user, project string
	}
	users := []client{{"alice", "team-a"}, {"bob", "team-b"}}
	// do sends a request and reads the answer, without failing the test: it runs on the
	// clients' goroutines.
	do := func(tok, method, target string, body []byte, ctype string) (answer, error) {
		req, err := http.NewRequest(method, th.url+target, bytes.NewReader(body))
		if err != nil {
			return answer{}, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		res, err := th.srv.Client().Do(req)
		if err != nil {
			return answer{}, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return answer{status: res.StatusCode, header: res.Header, body: b}, err
	}
	pushBlob := func(tok, repo string, data []byte) error {
		a, err := do(tok, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+digest.FromBytes(data).String(), data, "application/octet-stream")
		if err == nil && a.status != http.StatusCreated {
			err = fmt.Errorf("blob push to %s: %d %s", repo, a.status, a.body)
		}
		return err
	}
	base := bytes.Repeat([]byte("base layer "), 20000)
	const clients, pushes, repos = 50, 4, 5
	var pushed, retried, pulls atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	deadline := time.Now().Add(2 * time.Minute)
	for i := range clients {
		c := users[i%2]
		var scopes []string
		for r := range repos {
			scopes = append(scopes, fmt.Sprintf("repository:%s/app%d:pull,push", c.project, r))
		}
		tok := th.token(basic(c.user, password), scopes...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo := fmt.Sprintf("%s/app%d", c.project, i%repos)
			for n := range pushes {
				cfg := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","client":%d,"n":%d}`, i, n)
				own := bytes.Repeat(fmt.Appendf(nil, "own %d %d ", i, n), 500+rand.IntN(2000))
				m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
					Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))}}
				m.SchemaVersion = 2
				for _, l := range [][]byte{base, own} {
					m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(l), Size: int64(len(l))})
				}
				raw, _ := json.Marshal(m)
				for {
					var err error
					for _, b := range [][]byte{cfg, base, own} {
						if err = pushBlob(tok, repo, b); err != nil {
							break
						}
					}
					if err != nil {
						errs <- fmt.Errorf("client %d: %v", i, err)
						return
					}
					a, err := do(tok, "PUT", fmt.Sprintf("/v2/%s/manifests/v%d", repo, i%3), raw, ocispec.MediaTypeImageManifest)
					if err != nil {
						errs <- err
						return
					}
					if a.status == http.StatusCreated {
						pushed.Add(1)
						break
					}
					// A collection deleted a blob between its upload and the manifest put
					// (the grace is shorter than a push): the put is refused cleanly.
					if a.code() != "MANIFEST_BLOB_UNKNOWN" || time.Now().After(deadline) {
						errs <- fmt.Errorf("client %d push %d: %d %s", i, n, a.status, a.body)
						return
					}
					retried.Add(1)
				}
				if err := pushBlob(tok, repo, fmt.Appendf(nil, "garbage %d %d", i, n)); err != nil {
					errs <- err
					return
				}
				// Pull an image of the project, of another client maybe.
				other := fmt.Sprintf("%s/app%d", c.project, rand.IntN(repos))
				a, err := do(tok, "GET", fmt.Sprintf("/v2/%s/manifests/v%d", other, rand.IntN(3)), nil, "")
				if err != nil {
					errs <- err
					return
				}
				if a.status != http.StatusOK {
					continue // not pushed yet, or untagged and collected
				}
				var pm ocispec.Manifest
				if err := json.Unmarshal(a.body, &pm); err != nil {
					errs <- err
					return
				}
				for _, l := range append([]ocispec.Descriptor{pm.Config}, pm.Layers...) {
					b, err := do(tok, "GET", "/v2/"+other+"/blobs/"+l.Digest.String(), nil, "")
					if err != nil {
						errs <- err
						return
					}
					// A tag moved and its old manifest was collected between the GETs: a
					// blob may be gone; one served must be whole.
					if b.status == http.StatusOK && digest.FromBytes(b.body) != l.Digest {
						errs <- fmt.Errorf("pulled %s@%s: got %s", other, l.Digest, digest.FromBytes(b.body))
						return
					}
				}
				pulls.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	th.h.stopGC()
	if err, _ := gcErr.Load().(error); err != nil {
		t.Fatalf("a collection failed: %v", err)
	}
	t.Logf("%d pushes (%d retried), %d pulls, %d collections deleted %d blobs and %d untagged manifests",
		pushed.Load(), retried.Load(), pulls.Load(), rounds.Load(), deleted.Load(), untagged.Load())
	if rounds.Load() < 2 {
		t.Errorf("only %d collections ran during the pushes", rounds.Load())
	}

	checkHub := func() {
		t.Helper()
		fs := th.h.Store().(*storage.FS)
		repoNames, err := fs.Repositories(ctx)
		if err != nil {
			t.Fatal(err)
		}
		manifests := 0
		for _, repo := range repoNames {
			tok := th.token(basic("root", password), "repository:"+repo+":pull")
			ms, err := fs.Manifests(ctx, repo)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ms {
				a, err := do(tok, "GET", "/v2/"+repo+"/manifests/"+d.String(), nil, "")
				if err != nil || a.status != http.StatusOK || digest.FromBytes(a.body) != d {
					t.Errorf("%s@%s: %v %d", repo, d, err, a.status)
					continue
				}
				manifests++
				dm, err := oci.DecodeManifest(a.header.Get("Content-Type"), a.body)
				if err != nil || dm.Image == nil {
					t.Errorf("%s@%s: %v", repo, d, err)
					continue
				}
				for _, l := range append([]ocispec.Descriptor{dm.Image.Config}, dm.Image.Layers...) {
					b, err := do(tok, "GET", "/v2/"+repo+"/blobs/"+l.Digest.String(), nil, "")
					if err != nil || b.status != http.StatusOK || digest.FromBytes(b.body) != l.Digest || int64(len(b.body)) != l.Size {
						t.Errorf("%s@%s references %s: %v %d", repo, d, l.Digest, err, b.status)
					}
				}
			}
		}
		if manifests == 0 {
			t.Error("no manifest left")
		}
		// The usage the hub kept through the collections is the one the store gives.
		kept := map[string]int64{}
		for _, p := range users {
			kept[p.project], _, _ = th.h.Usage(p.project)
		}
		if err := th.h.Recount(ctx); err != nil {
			t.Fatal(err)
		}
		for _, p := range users {
			if used, _, _ := th.h.Usage(p.project); used != kept[p.project] {
				t.Errorf("%s: the hub counted %d bytes, a recount %d", p.project, kept[p.project], used)
			}
		}
	}
	checkHub()
	time.Sleep(60 * time.Millisecond)
	rep, err := th.h.CollectGarbage(ctx, gc.WithGrace(50*time.Millisecond), gc.WithDeleteUntagged(true), gc.WithUploadTTL(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("last collection: %d blobs deleted, %d untagged, %d kept", rep.BlobsDeleted, len(rep.UntaggedDeleted), rep.BlobsKept)
	checkHub()
	// Nothing is left that no manifest references: each garbage blob is gone.
	for i := range clients {
		for n := range pushes {
			if _, err := th.h.Store().StatBlob(ctx, digest.FromBytes(fmt.Appendf(nil, "garbage %d %d", i, n))); err == nil {
				t.Errorf("garbage %d %d is still stored", i, n)
			}
		}
	}
}
