package server_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/opendao/dao/registry/server"
)

// TestMaxUploads checks the bounds of open upload sessions, per repository and in all,
// and that a session ended (committed, deleted, or removed behind the server's back)
// gives its place back.
func TestMaxUploads(t *testing.T) {
	h := newHub(t, server.WithMaxUploads(2, 3))
	a1 := h.do("POST", "/v2/a/blobs/uploads/", nil).want(t, http.StatusAccepted, "").header.Get("Location")
	h.do("POST", "/v2/a/blobs/uploads/", nil).want(t, http.StatusAccepted, "")
	h.do("POST", "/v2/a/blobs/uploads/", nil).want(t, http.StatusTooManyRequests, "TOOMANYREQUESTS")
	b1 := h.do("POST", "/v2/b/blobs/uploads/", nil).want(t, http.StatusAccepted, "").header.Get("Location")
	a := h.do("POST", "/v2/c/blobs/uploads/", nil).want(t, http.StatusTooManyRequests, "TOOMANYREQUESTS")
	if a.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	h.do("DELETE", a1, nil).want(t, http.StatusNoContent, "")
	c1 := h.do("POST", "/v2/c/blobs/uploads/", nil).want(t, http.StatusAccepted, "").header.Get("Location")
	// Committed: its place is back.
	data := []byte("blob")
	h.do("PUT", c1+"?digest="+digestOf(data), data).want(t, http.StatusCreated, "")
	h.do("POST", "/v2/c/blobs/uploads/", nil).want(t, http.StatusAccepted, "")
	h.do("POST", "/v2/c/blobs/uploads/", nil).want(t, http.StatusTooManyRequests, "TOOMANYREQUESTS")
	// Cancelled by the store directly (as a collection does): found out at the bound.
	id := b1[len("/v2/b/blobs/uploads/"):]
	up, err := h.store.Upload(t.Context(), "b", id)
	if err != nil {
		t.Fatal(err)
	}
	up.Cancel(t.Context())
	h.do("POST", "/v2/c/blobs/uploads/", nil).want(t, http.StatusAccepted, "")
	// Monolithic pushes open a session for a moment only.
	h1 := newHub(t, server.WithMaxUploads(1, 1))
	for i := range 10 {
		h1.pushBlob("d", []byte(fmt.Sprint(i)))
	}
	if _, err := server.New(h.store, server.WithMaxUploads(-1, 0)); err == nil {
		t.Error("WithMaxUploads(-1, 0) accepted")
	}
}

// TestRateLimitClientsBounded checks that many distinct clients do not grow the rate
// limit's table past its bound: the least recently seen is forgotten and starts again with
// a full bucket, while a recent one keeps its empty one.
func TestRateLimitClientsBounded(t *testing.T) {
	h := newHub(t, server.WithRateLimit(0.001, 1), server.WithRateLimitClients(3))
	get := func(addr string) int {
		req := mustRequest("GET", "/v2/", nil)
		req.RemoteAddr = addr + ":1234"
		return h.serve(req).status
	}
	for _, a := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
		if s := get(a); s != http.StatusOK {
			t.Fatalf("%s: %d", a, s)
		}
	}
	if s := get("10.0.0.3"); s != http.StatusTooManyRequests {
		t.Fatalf("10.0.0.3 again: %d, want 429", s)
	}
	get("10.0.0.4") // evicts 10.0.0.1, the least recently seen
	if s := get("10.0.0.1"); s != http.StatusOK {
		t.Errorf("10.0.0.1 after eviction: %d, want 200", s)
	}
	if s := get("10.0.0.3"); s != http.StatusTooManyRequests {
		t.Errorf("10.0.0.3, seen recently: %d, want 429", s)
	}
}

// TestCatalogAfterWrites checks that the catalog, kept after its first walk, sees
// repositories created later.
func TestCatalogAfterWrites(t *testing.T) {
	h := newHub(t)
	h.pushImage("one", "v1", []byte("1"))
	if got, _ := h.store.Repositories(t.Context()); !slices.Equal(got, []string{"one"}) {
		t.Fatalf("repositories %v", got)
	}
	h.pushBlob("two/sub", []byte("2"))
	h.pushImage("three", "v1", []byte("3"))
	got, _ := h.store.Repositories(t.Context())
	if want := []string{"one", "three", "two/sub"}; !slices.Equal(got, want) {
		t.Errorf("repositories %v, want %v", got, want)
	}
}

func digestOf(b []byte) string { return digest.FromBytes(b).String() }
