package server_test

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// TestConcurrentPushPull runs 50 clients that push images sharing a base layer (the same
// blob committed by many sessions at once, the same tag put by several) and pull each
// other's, then checks that every manifest and every blob it references is whole.
func TestConcurrentPushPull(t *testing.T) {
	h := newHub(t)
	base := bytes.Repeat([]byte("base layer "), 10000)
	const clients = 50
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo := fmt.Sprintf("team/app%d", i%5)
			own := bytes.Repeat([]byte(fmt.Sprintf("own %d ", i)), 1000)
			for _, data := range [][]byte{base, own} {
				d := digest.FromBytes(data)
				a := h.serve(mustRequest("POST", "/v2/"+repo+"/blobs/uploads/", nil))
				if a.status != http.StatusAccepted {
					errs <- fmt.Errorf("POST %d", a.status)
					return
				}
				loc := a.header.Get("Location")
				half := len(data) / 2
				if a := h.serve(mustRequest("PATCH", loc, data[:half], "Content-Range", fmt.Sprintf("0-%d", half-1))); a.status != http.StatusAccepted {
					errs <- fmt.Errorf("PATCH %d %s", a.status, a.body)
					return
				}
				if a := h.serve(mustRequest("PUT", loc+"?digest="+d.String(), data[half:])); a.status != http.StatusCreated {
					errs <- fmt.Errorf("PUT %d %s", a.status, a.body)
					return
				}
			}
			m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/octet-stream","digest":"%s","size":%d},"layers":[{"mediaType":"application/octet-stream","digest":"%s","size":%d}]}`,
				digest.FromBytes(own), len(own), digest.FromBytes(base), len(base))
			if a := h.serve(mustRequest("PUT", "/v2/"+repo+"/manifests/latest", []byte(m), "Content-Type", "application/vnd.oci.image.manifest.v1+json")); a.status != http.StatusCreated {
				errs <- fmt.Errorf("manifest PUT %d %s", a.status, a.body)
				return
			}
			// Pull whatever latest is now in another repository.
			other := fmt.Sprintf("team/app%d", (i+1)%5)
			if a := h.serve(mustRequest("GET", "/v2/"+other+"/manifests/latest", nil)); a.status != http.StatusOK && a.status != http.StatusNotFound {
				errs <- fmt.Errorf("manifest GET %d", a.status)
				return
			}
			if a := h.serve(mustRequest("GET", "/v2/"+repo+"/blobs/"+digest.FromBytes(base).String(), nil)); a.status != http.StatusOK || !bytes.Equal(a.body, base) {
				errs <- fmt.Errorf("base GET %d, %d bytes", a.status, len(a.body))
				return
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for r := 0; r < 5; r++ {
		repo := fmt.Sprintf("team/app%d", r)
		a := h.do("GET", "/v2/"+repo+"/manifests/latest", nil).want(t, http.StatusOK, "")
		if digest.FromBytes(a.body).String() != a.header.Get("Docker-Content-Digest") {
			t.Fatalf("%s: manifest does not match its digest", repo)
		}
		for _, d := range []string{digest.FromBytes(base).String()} {
			b := h.do("GET", "/v2/"+repo+"/blobs/"+d, nil).want(t, http.StatusOK, "")
			if digest.FromBytes(b.body).String() != d {
				t.Fatalf("%s: blob %s damaged", repo, d)
			}
		}
	}
	n := 0
	h.store.WalkUploads(t.Context(), func(string, string, int64, time.Time) error { n++; return nil })
	if n != 0 {
		t.Errorf("%d upload sessions left", n)
	}
}
