package remote

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestChunksLeaveAnEndpointTogether fetches a blob in parallel ranges through a mirror that
// breaks the first chunk's answers at their first byte and holds every other chunk's answer
// open without a byte, with no speed limit to cut them: only the first chunk gives the mirror
// up, and the others must go on from the registry with it, at once.
func TestChunksLeaveAnEndpointTogether(t *testing.T) {
	t.Parallel()
	blob := make([]byte, 1<<20)
	rand.Read(blob)
	desc := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	serve := func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(blob))
	}
	upstream := httptest.NewServer(http.HandlerFunc(serve))
	t.Cleanup(upstream.Close)
	mirror := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rng := r.Header.Get("Range")
		if rng == "" || !strings.Contains(r.URL.Path, "/blobs/") {
			serve(w, r)
			return
		}
		w.Header().Set("Content-Range", "bytes "+strings.TrimPrefix(rng, "bytes=")+"/"+strconv.FormatInt(desc.Size, 10))
		w.WriteHeader(http.StatusPartialContent)
		w.(http.Flusher).Flush()
		if strings.HasPrefix(rng, "bytes=0-") {
			panic(http.ErrAbortHandler) // the first chunk breaks, after its open succeeded
		}
		<-r.Context().Done() // the others stall
	}))
	t.Cleanup(mirror.Close)

	host := strings.TrimPrefix(upstream.URL, "http://")
	c, err := NewClient(
		WithHosts(map[string]HostConfig{host: {PlainHTTP: true, Mirrors: []Mirror{{URL: mirror.URL}}}}),
		WithRangeDownload(256<<10, 4),
		WithSpeedLimit(SpeedLimit{}),
		WithRetry(RetryPolicy{MaxAttempts: 3, MinDelay: time.Millisecond, MaxDelay: time.Millisecond, MaxRetryAfter: time.Second}),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := c.FetchBlob(ctx, host+"/app", desc)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("FetchBlob: %v", err)
	}
	if !bytes.Equal(got, blob) {
		t.Fatal("FetchBlob: content differs")
	}
}
