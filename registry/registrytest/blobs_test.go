package registrytest_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/opendao/dao/registry/registrytest"
)

func TestPing(t *testing.T) {
	t.Parallel()
	_, s := newRegistry(t)
	for _, p := range []string{"/v2/", "/v2"} {
		a := s.do("GET", p, nil).want(t, http.StatusOK, "")
		if got := a.Header.Get("Docker-Distribution-API-Version"); got != "registry/2.0" {
			t.Errorf("GET %s: Docker-Distribution-API-Version %q", p, got)
		}
	}
	s.do("HEAD", "/v2/", nil).want(t, http.StatusOK, "")
	s.do("POST", "/v2/", nil).want(t, http.StatusMethodNotAllowed, "UNSUPPORTED")
	s.do("GET", "/v1/", nil).want(t, http.StatusNotFound, "UNSUPPORTED")
	s.do("GET", "/v2/app/nothing", nil).want(t, http.StatusNotFound, "UNSUPPORTED")
}

func TestNames(t *testing.T) {
	t.Parallel()
	_, s := newRegistry(t)
	for _, name := range []string{"app", "a/b/c", "a.b_c__d--e/f", "0"} {
		if !registrytest.ValidName(name) {
			t.Errorf("ValidName(%q) = false", name)
		}
		s.do("GET", "/v2/"+name+"/tags/list", nil).want(t, http.StatusNotFound, "NAME_UNKNOWN")
	}
	for _, name := range []string{"App", "a//b", "-a", "a-", "a___b", "a/", "a..b", strings.Repeat("a", 256)} {
		if registrytest.ValidName(name) {
			t.Errorf("ValidName(%q) = true", name)
		}
		if !strings.Contains(name, "//") && !strings.HasSuffix(name, "/") {
			s.do("GET", "/v2/"+name+"/tags/list", nil).want(t, http.StatusBadRequest, "NAME_INVALID")
		}
	}
	for tag, ok := range map[string]bool{"1": true, "_a.B-c": true, strings.Repeat("t", 128): true, ".a": false, "-a": false, strings.Repeat("t", 129): false, "a/b": false} {
		if registrytest.ValidTag(tag) != ok {
			t.Errorf("ValidTag(%q) = %v", tag, !ok)
		}
	}
}

func TestBlobMonolithicAndRange(t *testing.T) {
	t.Parallel()
	_, s := newRegistry(t)
	data := []byte("0123456789abcdef")
	d := digest.FromBytes(data)
	a := s.do("POST", "/v2/app/blobs/uploads/?digest="+d.String(), data).want(t, http.StatusCreated, "")
	if got, want := a.Header.Get("Location"), "/v2/app/blobs/"+d.String(); got != want {
		t.Errorf("Location %q, want %q", got, want)
	}
	if got := a.Header.Get("Docker-Content-Digest"); got != d.String() {
		t.Errorf("Docker-Content-Digest %q", got)
	}

	a = s.do("GET", "/v2/app/blobs/"+d.String(), nil).want(t, http.StatusOK, "")
	if !bytes.Equal(a.body, data) || a.Header.Get("Docker-Content-Digest") != d.String() || a.ContentLength != int64(len(data)) {
		t.Errorf("GET: %q, digest %q, length %d", a.body, a.Header.Get("Docker-Content-Digest"), a.ContentLength)
	}
	a = s.do("HEAD", "/v2/app/blobs/"+d.String(), nil).want(t, http.StatusOK, "")
	if a.ContentLength != int64(len(data)) || len(a.body) != 0 || a.Header.Get("Docker-Content-Digest") != d.String() {
		t.Errorf("HEAD: length %d, body %q, digest %q", a.ContentLength, a.body, a.Header.Get("Docker-Content-Digest"))
	}
	for rng, want := range map[string]string{"bytes=0-3": "0123", "bytes=10-": "abcdef", "bytes=-2": "ef", "bytes=15-100": "f"} {
		a := s.do("GET", "/v2/app/blobs/"+d.String(), nil, "Range", rng).want(t, http.StatusPartialContent, "")
		if string(a.body) != want {
			t.Errorf("Range %s: %q, want %q", rng, a.body, want)
		}
	}
	a = s.do("GET", "/v2/app/blobs/"+d.String(), nil, "Range", "bytes=16-").want(t, http.StatusRequestedRangeNotSatisfiable, "")
	if got := a.Header.Get("Content-Range"); got != "bytes */16" {
		t.Errorf("416 Content-Range %q", got)
	}

	other := digest.FromString("other")
	s.do("GET", "/v2/app/blobs/"+other.String(), nil).want(t, http.StatusNotFound, "BLOB_UNKNOWN")
	s.do("GET", "/v2/nothere/blobs/"+d.String(), nil).want(t, http.StatusNotFound, "BLOB_UNKNOWN")
	s.do("GET", "/v2/app/blobs/sha256:zz", nil).want(t, http.StatusBadRequest, "DIGEST_INVALID")
	s.do("GET", "/v2/app/blobs/md5:d41d8cd98f00b204e9800998ecf8427e", nil).want(t, http.StatusBadRequest, "DIGEST_INVALID")

	// A lying monolithic push is refused and stores nothing.
	s.do("POST", "/v2/app/blobs/uploads/?digest="+other.String(), []byte("not other")).want(t, http.StatusBadRequest, "DIGEST_INVALID")
	s.do("HEAD", "/v2/app/blobs/"+other.String(), nil).want(t, http.StatusNotFound, "")

	s.do("DELETE", "/v2/app/blobs/"+d.String(), nil).want(t, http.StatusAccepted, "")
	s.do("GET", "/v2/app/blobs/"+d.String(), nil).want(t, http.StatusNotFound, "BLOB_UNKNOWN")
	s.do("DELETE", "/v2/app/blobs/"+d.String(), nil).want(t, http.StatusNotFound, "BLOB_UNKNOWN")
	s.do("PUT", "/v2/app/blobs/"+d.String(), nil).want(t, http.StatusMethodNotAllowed, "UNSUPPORTED")
}

func TestBlobSHA512(t *testing.T) {
	t.Parallel()
	_, s := newRegistry(t)
	data := []byte("sha512 content")
	d := digest.SHA512.FromBytes(data)
	s.do("POST", "/v2/app/blobs/uploads/?digest="+d.String(), data).want(t, http.StatusCreated, "")
	if a := s.do("GET", "/v2/app/blobs/"+d.String(), nil).want(t, http.StatusOK, ""); !bytes.Equal(a.body, data) {
		t.Errorf("GET: %q", a.body)
	}
	s.do("POST", "/v2/app/blobs/uploads/?digest-algorithm=sha512", nil).want(t, http.StatusAccepted, "")
	s.do("POST", "/v2/app/blobs/uploads/?digest-algorithm=md5", nil).want(t, http.StatusBadRequest, "DIGEST_INVALID")
}

// startSession starts an upload session in repo and returns its location.
func startSession(t *testing.T, s *server, repo string) string {
	t.Helper()
	a := s.do("POST", "/v2/"+repo+"/blobs/uploads/", nil).want(t, http.StatusAccepted, "")
	loc := a.Header.Get("Location")
	if !strings.HasPrefix(loc, "/v2/"+repo+"/blobs/uploads/") || a.Header.Get("Docker-Upload-UUID") == "" {
		t.Fatalf("POST: Location %q, Docker-Upload-UUID %q", loc, a.Header.Get("Docker-Upload-UUID"))
	}
	return loc
}

func TestChunkedUpload(t *testing.T) {
	t.Parallel()
	_, s := newRegistry(t)
	data := []byte("chunk one|chunk two|last")
	d := digest.FromBytes(data)
	loc := startSession(t, s, "app")

	a := s.do("PATCH", loc, data[:10], "Content-Range", "0-9", "Content-Type", "application/octet-stream").want(t, http.StatusAccepted, "")
	if got := a.Header.Get("Range"); got != "0-9" {
		t.Errorf("PATCH: Range %q, want 0-9", got)
	}
	loc = a.Header.Get("Location")

	// A chunk that does not follow on is refused with 416, and the state is told.
	a = s.do("PATCH", loc, data[12:20], "Content-Range", "12-19").want(t, http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID")
	if got := a.Header.Get("Range"); got != "0-9" {
		t.Errorf("416: Range %q, want 0-9", got)
	}
	s.do("PATCH", loc, data[0:10], "Content-Range", "0-9").want(t, http.StatusRequestedRangeNotSatisfiable, "")
	a = s.do("GET", loc, nil).want(t, http.StatusNoContent, "")
	if got := a.Header.Get("Range"); got != "0-9" || a.Header.Get("Location") != loc {
		t.Errorf("status: Range %q, Location %q", got, a.Header.Get("Location"))
	}
	s.do("PATCH", loc, data[10:15], "Content-Range", "10-20").want(t, http.StatusBadRequest, "SIZE_INVALID")
	s.do("PATCH", loc, data[10:15], "Content-Range", "ten-20").want(t, http.StatusBadRequest, "BLOB_UPLOAD_INVALID")

	// A chunk without Content-Range is appended (a streamed upload).
	a = s.do("PATCH", loc, data[10:20], "Content-Type", "application/octet-stream").want(t, http.StatusAccepted, "")
	if got := a.Header.Get("Range"); got != "0-19" {
		t.Errorf("PATCH: Range %q, want 0-19", got)
	}
	// The last chunk comes with the closing PUT, out of order first.
	s.do("PUT", loc+"?digest="+d.String(), data[21:], "Content-Range", "21-23").want(t, http.StatusRequestedRangeNotSatisfiable, "")
	s.do("PUT", loc, data[20:], "Content-Range", "20-23").want(t, http.StatusBadRequest, "DIGEST_INVALID")
	a = s.do("PUT", loc+"?digest="+d.String(), data[20:], "Content-Range", "20-23").want(t, http.StatusCreated, "")
	if got := a.Header.Get("Location"); got != "/v2/app/blobs/"+d.String() {
		t.Errorf("PUT: Location %q", got)
	}
	if a := s.do("GET", "/v2/app/blobs/"+d.String(), nil).want(t, http.StatusOK, ""); !bytes.Equal(a.body, data) {
		t.Errorf("GET: %q, want %q", a.body, data)
	}
	// The session is over.
	s.do("GET", loc, nil).want(t, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	s.do("PATCH", loc, []byte("x"), "Content-Range", "0-0").want(t, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
}

func TestPostThenPut(t *testing.T) {
	t.Parallel()
	_, s := newRegistry(t)
	data := []byte("monolithic after a POST")
	d := digest.FromBytes(data)
	loc := startSession(t, s, "app")
	s.do("PUT", loc+"?digest="+d.String(), data).want(t, http.StatusCreated, "")
	s.do("HEAD", "/v2/app/blobs/"+d.String(), nil).want(t, http.StatusOK, "")

	// An empty blob, closed with no body at all.
	empty := digest.FromBytes(nil)
	loc = startSession(t, s, "app")
	if a := s.do("GET", loc, nil).want(t, http.StatusNoContent, ""); a.Header.Get("Range") != "0-0" {
		t.Errorf("empty session: Range %q", a.Header.Get("Range"))
	}
	s.do("PUT", loc+"?digest="+empty.String(), nil).want(t, http.StatusCreated, "")
	if a := s.do("GET", "/v2/app/blobs/"+empty.String(), nil).want(t, http.StatusOK, ""); len(a.body) != 0 {
		t.Errorf("empty blob: %q", a.body)
	}
}

func TestDigestMismatchStoresNothing(t *testing.T) {
	t.Parallel()
	_, s := newRegistry(t)
	data := []byte("what the client sends")
	claimed := digest.FromString("what it says it sends")
	loc := startSession(t, s, "app")
	s.do("PATCH", loc, data, "Content-Range", fmt.Sprintf("0-%d", len(data)-1)).want(t, http.StatusAccepted, "")
	s.do("PUT", loc+"?digest="+claimed.String(), nil).want(t, http.StatusBadRequest, "DIGEST_INVALID")
	s.do("HEAD", "/v2/app/blobs/"+claimed.String(), nil).want(t, http.StatusNotFound, "")
	s.do("HEAD", "/v2/app/blobs/"+digest.FromBytes(data).String(), nil).want(t, http.StatusNotFound, "")
	// The session ended: a retry starts again.
	s.do("GET", loc, nil).want(t, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	s.do("GET", "/v2/_catalog", nil).want(t, http.StatusOK, "")
	s.do("PUT", "/v2/app/blobs/uploads/nosuchsession?digest="+claimed.String(), nil).want(t, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	s.do("PUT", startSession(t, s, "app")+"?digest=sha256:nothex", nil).want(t, http.StatusBadRequest, "DIGEST_INVALID")
}

func TestUploadCancelAndIsolation(t *testing.T) {
	t.Parallel()
	_, s := newRegistry(t)
	loc := startSession(t, s, "app")
	// Another repository does not see the session.
	other := strings.Replace(loc, "/v2/app/", "/v2/other/", 1)
	s.do("GET", other, nil).want(t, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	s.do("DELETE", other, nil).want(t, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	s.do("DELETE", loc, nil).want(t, http.StatusNoContent, "")
	s.do("GET", loc, nil).want(t, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	s.do("POST", loc, nil).want(t, http.StatusMethodNotAllowed, "UNSUPPORTED")
}

func TestMount(t *testing.T) {
	t.Parallel()
	_, s := newRegistry(t)
	d := s.pushBlob("src", []byte("shared layer"))
	a := s.do("POST", "/v2/dst/blobs/uploads/?mount="+d.String()+"&from=src", nil).want(t, http.StatusCreated, "")
	if a.Header.Get("Location") != "/v2/dst/blobs/"+d.String() || a.Header.Get("Docker-Content-Digest") != d.String() {
		t.Errorf("mount: Location %q, digest %q", a.Header.Get("Location"), a.Header.Get("Docker-Content-Digest"))
	}
	s.do("GET", "/v2/dst/blobs/"+d.String(), nil).want(t, http.StatusOK, "")
	// Deleting it from one repository leaves the other's.
	s.do("DELETE", "/v2/src/blobs/"+d.String(), nil).want(t, http.StatusAccepted, "")
	s.do("GET", "/v2/dst/blobs/"+d.String(), nil).want(t, http.StatusOK, "")

	// A blob the source does not have, or no source: an upload session starts.
	missing := digest.FromString("missing")
	for _, q := range []string{"?mount=" + missing.String() + "&from=dst", "?mount=" + d.String() + "&from=src", "?mount=" + d.String()} {
		a := s.do("POST", "/v2/third/blobs/uploads/"+q, nil).want(t, http.StatusAccepted, "")
		if !strings.HasPrefix(a.Header.Get("Location"), "/v2/third/blobs/uploads/") {
			t.Errorf("mount %s: Location %q", q, a.Header.Get("Location"))
		}
	}
	s.do("GET", "/v2/third/blobs/"+d.String(), nil).want(t, http.StatusNotFound, "BLOB_UNKNOWN")
	s.do("POST", "/v2/third/blobs/uploads/?mount=bad&from=dst", nil).want(t, http.StatusBadRequest, "DIGEST_INVALID")
}

func TestBlobSizeLimit(t *testing.T) {
	t.Parallel()
	_, s := newRegistry(t, registrytest.WithMaxBlobSize(10))
	big := []byte("eleven byte")
	s.do("POST", "/v2/app/blobs/uploads/?digest="+digest.FromBytes(big).String(), big).want(t, http.StatusRequestEntityTooLarge, "SIZE_INVALID")
	loc := startSession(t, s, "app")
	s.do("PATCH", loc, big[:6], "Content-Range", "0-5").want(t, http.StatusAccepted, "")
	s.do("PATCH", loc, big[6:], "Content-Range", "6-10").want(t, http.StatusRequestEntityTooLarge, "SIZE_INVALID")
	if a := s.do("GET", loc, nil).want(t, http.StatusNoContent, ""); a.Header.Get("Range") != "0-5" {
		t.Errorf("after a refused chunk: Range %q", a.Header.Get("Range"))
	}
	s.pushBlob("app", big[:10])
}

// TestConcurrentPushes pushes the same and different blobs, and manifests, to the same and
// different repositories from many goroutines; run with -race.
func TestConcurrentPushes(t *testing.T) {
	t.Parallel()
	_, s := newRegistry(t)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo := fmt.Sprintf("repo%d", i%4)
			img := s.pushImage(repo, fmt.Sprint(i%3), nil)
			loc := startSession(t, s, repo)
			chunk := bytes.Repeat([]byte{byte(i)}, 1000)
			for j := range 4 {
				s.do("PATCH", loc, chunk, "Content-Range", fmt.Sprintf("%d-%d", j*1000, j*1000+999)).want(t, http.StatusAccepted, "")
			}
			s.do("PUT", loc+"?digest="+digest.FromBytes(bytes.Repeat(chunk, 4)).String(), nil).want(t, http.StatusCreated, "")
			s.putManifest(repo, fmt.Sprint("t", i), "application/vnd.oci.image.manifest.v1+json", img.manifest).want(t, http.StatusCreated, "")
			s.do("GET", "/v2/"+repo+"/manifests/"+img.digest.String(), nil).want(t, http.StatusOK, "")
			s.do("GET", "/v2/"+repo+"/tags/list", nil).want(t, http.StatusOK, "")
		}()
	}
	wg.Wait()
	var tags struct{ Tags []string }
	for r := range 4 {
		a := s.do("GET", fmt.Sprintf("/v2/repo%d/tags/list", r), nil).want(t, http.StatusOK, "")
		if err := jsonDecode(bytes.NewReader(a.body), &tags); err != nil || len(tags.Tags) != 4 {
			t.Errorf("repo%d: tags %v (%v), want 4", r, tags.Tags, err)
		}
	}
}

// TestUploadSessionLimit opens upload sessions until the registry refuses one with 429, and
// finds room again once one is closed.
func TestUploadSessionLimit(t *testing.T) {
	t.Parallel()
	reg := mustNew(t)
	var last string
	for i := range 1024 {
		rec := call(reg, "POST", "/v2/app/blobs/uploads/", "", "", nil)
		if rec.Code != http.StatusAccepted {
			t.Fatalf("session %d: %d", i, rec.Code)
		}
		last = rec.Header().Get("Location")
	}
	rec := call(reg, "POST", "/v2/app/blobs/uploads/", "", "", nil)
	if rec.Code != http.StatusTooManyRequests || errorCode(rec.Body.Bytes()) != "TOOMANYREQUESTS" || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("session 1025: %d %s, Retry-After %q", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}
	if rec := call(reg, "DELETE", last, "", "", nil); rec.Code != http.StatusNoContent {
		t.Fatalf("DELETE %s: %d", last, rec.Code)
	}
	if rec := call(reg, "POST", "/v2/app/blobs/uploads/", "", "", nil); rec.Code != http.StatusAccepted {
		t.Fatalf("after closing one: %d", rec.Code)
	}
}
