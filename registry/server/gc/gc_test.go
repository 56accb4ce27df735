package gc_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/server"
	"github.com/opendao/dao/registry/server/gc"
	"github.com/opendao/dao/registry/server/storage"
)

type answer struct {
	status int
	header http.Header
	body   []byte
}

func serve(h http.Handler, method, target string, body []byte, header ...string) answer {
	req := httptest.NewRequest(method, "http://hub.test"+target, bytes.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return answer{res.StatusCode, res.Header, b}
}

func (a answer) code() string {
	var b struct{ Errors []struct{ Code string } }
	if json.Unmarshal(a.body, &b) != nil || len(b.Errors) == 0 {
		return ""
	}
	return b.Errors[0].Code
}

// pushBlob pushes data monolithically.
func pushBlob(h http.Handler, repo string, data []byte) error {
	d := digest.FromBytes(data)
	if a := serve(h, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), data); a.status != http.StatusCreated {
		return fmt.Errorf("blob push: %d %s", a.status, a.body)
	}
	return nil
}

// pushImage pushes an image of a config and layers under tag; an error says which step
// failed and its code.
func pushImage(h http.Handler, repo, tag string, cfg []byte, layers ...[]byte) (digest.Digest, answer, error) {
	if err := pushBlob(h, repo, cfg); err != nil {
		return "", answer{}, err
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))}}
	m.SchemaVersion = 2
	for _, l := range layers {
		if err := pushBlob(h, repo, l); err != nil {
			return "", answer{}, err
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(l), Size: int64(len(l))})
	}
	raw, _ := json.Marshal(m)
	a := serve(h, "PUT", "/v2/"+repo+"/manifests/"+tag, raw, "Content-Type", ocispec.MediaTypeImageManifest)
	if a.status != http.StatusCreated {
		return "", a, fmt.Errorf("manifest put: %d %s", a.status, a.body)
	}
	return digest.FromBytes(raw), a, nil
}

// checkStore fails the test unless every manifest linked into every repository is whole
// and everything it references is stored, whole, with its size.
func checkStore(t *testing.T, st *storage.FS) (manifests int) {
	t.Helper()
	ctx := t.Context()
	repos, err := st.Repositories(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, repo := range repos {
		ms, err := st.Manifests(ctx, repo)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ms {
			m, err := st.Manifest(ctx, repo, d)
			if err != nil {
				t.Errorf("%s@%s: %v", repo, d, err)
				continue
			}
			manifests++
			dm, err := oci.DecodeManifest(m.Descriptor.MediaType, m.Raw)
			if err != nil {
				t.Errorf("%s@%s: %v", repo, d, err)
				continue
			}
			descs := append([]ocispec.Descriptor{dm.Image.Config}, dm.Image.Layers...)
			for _, b := range descs {
				rc, size, err := st.OpenBlob(ctx, b.Digest)
				if err != nil {
					t.Errorf("%s@%s references %s: %v", repo, d, b.Digest, err)
					continue
				}
				got, _ := digest.FromReader(rc)
				rc.Close()
				if got != b.Digest || size != b.Size {
					t.Errorf("%s@%s references %s (%d bytes): stored %s (%d bytes)", repo, d, b.Digest, b.Size, got, size)
				}
			}
		}
	}
	return manifests
}

// TestCollectUnderLoad runs collections back to back, with a grace period far shorter
// than a push, while 50 clients push images (sharing a base layer, moving tags, so that
// manifests become untagged), leave garbage (blobs no manifest references) and pull each
// other's images. Afterwards every stored manifest's references resolve and hash right;
// a last collection deletes the garbage and the expired upload sessions.
func TestCollectUnderLoad(t *testing.T) {
	st, err := storage.OpenFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fence := gc.NewFence()
	h, err := server.New(st, server.WithFence(fence))
	if err != nil {
		t.Fatal(err)
	}
	const grace = 50 * time.Millisecond
	opts := []gc.Option{gc.WithFence(fence), gc.WithGrace(grace), gc.WithDeleteUntagged(true)}

	base := bytes.Repeat([]byte("base layer "), 20000)
	stop := make(chan struct{})
	var rounds, deleted, untagged atomic.Int64
	gcDone := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				gcDone <- nil
				return
			default:
			}
			rep, err := gc.Collect(t.Context(), st, opts...)
			if err != nil {
				gcDone <- err
				return
			}
			rounds.Add(1)
			deleted.Add(int64(rep.BlobsDeleted))
			untagged.Add(int64(len(rep.UntaggedDeleted)))
		}
	}()

	const clients, pushes = 50, 6
	var pushed, retried, pulls atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	deadline := time.Now().Add(2 * time.Minute)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo := fmt.Sprintf("team/app%d", i%10)
			for n := range pushes {
				cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","client":%d,"n":%d}`, i, n))
				own := bytes.Repeat([]byte(fmt.Sprintf("own %d %d ", i, n)), 500+rand.IntN(2000))
				for try := 0; ; try++ {
					_, a, err := pushImage(h, repo, fmt.Sprintf("v%d", i%3), cfg, base, own)
					if err == nil {
						pushed.Add(1)
						break
					}
					// The collector deleted a blob between its upload and the manifest put
					// (the grace is shorter than a push): the put is refused cleanly.
					if a.code() != "MANIFEST_BLOB_UNKNOWN" || time.Now().After(deadline) {
						errs <- fmt.Errorf("client %d push %d: %v", i, n, err)
						return
					}
					retried.Add(1)
				}
				// Garbage: a blob no manifest will reference.
				if err := pushBlob(h, repo, []byte(fmt.Sprintf("garbage %d %d", i, n))); err != nil {
					errs <- err
					return
				}
				// Pull another client's image.
				other := fmt.Sprintf("team/app%d", rand.IntN(10))
				a := serve(h, "GET", "/v2/"+other+"/manifests/v"+fmt.Sprint(rand.IntN(3)), nil)
				if a.status == http.StatusNotFound {
					continue
				}
				if a.status != http.StatusOK {
					errs <- fmt.Errorf("pull %s: %d %s", other, a.status, a.body)
					return
				}
				pulls.Add(1)
				var m ocispec.Manifest
				json.Unmarshal(a.body, &m)
				for _, b := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
					ba := serve(h, "GET", "/v2/"+other+"/blobs/"+b.Digest.String(), nil)
					if ba.status == http.StatusOK && digest.FromBytes(ba.body) == b.Digest {
						continue
					}
					// Only a manifest that was untagged and collected meanwhile may lose
					// its blobs.
					md := a.header.Get("Docker-Content-Digest")
					if ok, _ := st.ManifestLinked(t.Context(), other, digest.Digest(md)); ok {
						errs <- fmt.Errorf("pull %s@%s: blob %s: %d, though the manifest is linked", other, md, b.Digest, ba.status)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	if err := <-gcDone; err != nil {
		t.Fatal(err)
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d pushes (%d retried after a collection), %d pulls, %d collections: %d blobs deleted, %d untagged manifests", pushed.Load(), retried.Load(), pulls.Load(), rounds.Load(), deleted.Load(), untagged.Load())
	if rounds.Load() < 5 || deleted.Load() == 0 {
		t.Errorf("%d collections ran during the load, deleting %d blobs: want at least 5, deleting some", rounds.Load(), deleted.Load())
	}
	if n := checkStore(t, st); n == 0 {
		t.Fatal("no manifest stored")
	}

	// The garbage: an old upload session and the blobs no manifest references.
	up, err := st.NewUpload(t.Context(), "team/app0")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * grace) // the grace period to pass, by the store's real clock
	rep, err := gc.Collect(t.Context(), st, append(opts, gc.WithUploadTTL(grace))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("last collection: %d untagged manifests, %d blobs deleted (%d bytes), %d kept, %d uploads cancelled", len(rep.UntaggedDeleted), rep.BlobsDeleted, rep.BytesFreed, rep.BlobsKept, rep.UploadsCancelled)
	if rep.UploadsCancelled != 1 {
		t.Errorf("%d upload sessions cancelled, want 1", rep.UploadsCancelled)
	}
	if _, err := st.Upload(t.Context(), "team/app0", up.ID()); err == nil {
		t.Error("the expired session is still there")
	}
	for i := range clients {
		for n := range pushes {
			d := digest.FromString(fmt.Sprintf("garbage %d %d", i, n))
			if _, err := st.StatBlob(t.Context(), d); err == nil {
				t.Errorf("garbage blob %s is still stored", d)
			}
		}
	}
	checkStore(t, st)
	// Everything tagged is still there.
	for r := range 10 {
		for tag := range 3 {
			repo := fmt.Sprintf("team/app%d", r)
			if _, err := st.ResolveTag(t.Context(), repo, fmt.Sprintf("v%d", tag)); err != nil {
				continue
			}
			if a := serve(h, "GET", fmt.Sprintf("/v2/%s/manifests/v%d", repo, tag), nil); a.status != http.StatusOK {
				t.Errorf("%s:v%d: %d", repo, tag, a.status)
			}
		}
	}
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
