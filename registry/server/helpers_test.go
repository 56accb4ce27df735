package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/server"
	"github.com/opendao/dao/registry/server/storage"
)

// hub is a server on a temporary root, served by the handler directly (no sockets), so
// that paths reach it exactly as written.
type hub struct {
	t     testing.TB
	root  string
	store *storage.FS
	srv   *server.Server
}

func newHub(t testing.TB, opts ...server.Option) *hub {
	t.Helper()
	root := t.TempDir()
	return openHub(t, root, opts...)
}

// openHub opens a server on root, as a restarted process would.
func openHub(t testing.TB, root string, opts ...server.Option) *hub {
	t.Helper()
	st, err := storage.OpenFS(root)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(st, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &hub{t: t, root: root, store: st, srv: srv}
}

// answer is a recorded answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// code returns the spec error code of an error answer, "" if there is none.
func (a answer) code() string {
	var b struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	if json.Unmarshal(a.body, &b) != nil || len(b.Errors) == 0 {
		return ""
	}
	return b.Errors[0].Code
}

// do sends a request to the handler; header is pairs of names and values.
func (h *hub) do(method, target string, body []byte, header ...string) answer {
	h.t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, "http://hub.test"+target, r)
	if strings.Contains(target, "/../") || strings.Contains(target, "//") || strings.HasSuffix(target, "/..") {
		req.URL.Path = strings.SplitN(target, "?", 2)[0] // as sent, not cleaned
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	return h.serve(req)
}

func (h *hub) serve(req *http.Request) answer {
	rec := httptest.NewRecorder()
	h.srv.ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return answer{status: res.StatusCode, header: res.Header, body: b}
}

// want fails the test unless the answer has the status (and, for an error, the code).
func (a answer) want(t testing.TB, status int, code string) answer {
	t.Helper()
	if a.status != status || (code != "" && a.code() != code) {
		t.Fatalf("got %d %q, want %d %q: %s", a.status, a.code(), status, code, a.body)
	}
	return a
}

// pushBlob pushes data to repo monolithically and returns its digest.
func (h *hub) pushBlob(repo string, data []byte) digest.Digest {
	h.t.Helper()
	d := digest.FromBytes(data)
	h.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), data).want(h.t, http.StatusCreated, "")
	return d
}

// pushImage pushes a config, one layer and a manifest to repo under tag and returns the
// manifest's bytes and digest.
func (h *hub) pushImage(repo, tag string, layer []byte) ([]byte, digest.Digest) {
	h.t.Helper()
	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	cd := h.pushBlob(repo, cfg)
	ld := h.pushBlob(repo, layer)
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd, Size: int64(len(cfg))},
		Layers:    []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: ld, Size: int64(len(layer))}},
	}
	m.SchemaVersion = 2
	raw, _ := json.Marshal(m)
	h.do("PUT", "/v2/"+repo+"/manifests/"+tag, raw, "Content-Type", ocispec.MediaTypeImageManifest).want(h.t, http.StatusCreated, "")
	return raw, digest.FromBytes(raw)
}

// mustRequest makes a request for the handler; header is pairs of names and values.
func mustRequest(method, target string, body []byte, header ...string) *http.Request {
	req := httptest.NewRequest(method, "http://hub.test"+target, bytes.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return req
}
