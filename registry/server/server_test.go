package server_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/server"
)

func TestPushPullRoundTrip(t *testing.T) {
	h := newHub(t)
	layer := bytes.Repeat([]byte("layer"), 1000)
	raw, md := h.pushImage("team/app", "1.0", layer)

	got := h.do("GET", "/v2/team/app/manifests/1.0", nil).want(t, http.StatusOK, "")
	if !bytes.Equal(got.body, raw) {
		t.Fatalf("manifest changed: got %s, want %s", got.body, raw)
	}
	if ct := got.header.Get("Content-Type"); ct != ocispec.MediaTypeImageManifest {
		t.Errorf("Content-Type %q", ct)
	}
	if d := got.header.Get("Docker-Content-Digest"); d != md.String() {
		t.Errorf("Docker-Content-Digest %q, want %s", d, md)
	}
	ld := digest.FromBytes(layer)
	b := h.do("GET", "/v2/team/app/blobs/"+ld.String(), nil).want(t, http.StatusOK, "")
	if !bytes.Equal(b.body, layer) {
		t.Fatal("blob changed")
	}
	r := h.do("GET", "/v2/team/app/blobs/"+ld.String(), nil, "Range", "bytes=10-19").want(t, http.StatusPartialContent, "")
	if diff := cmp.Diff(string(layer[10:20]), string(r.body)); diff != "" {
		t.Errorf("range (-want +got):\n%s", diff)
	}
	if cr := r.header.Get("Content-Range"); cr != fmt.Sprintf("bytes 10-19/%d", len(layer)) {
		t.Errorf("Content-Range %q", cr)
	}
	h.do("GET", "/v2/team/app/blobs/"+ld.String(), nil, "Range", "bytes=99999-").want(t, http.StatusRequestedRangeNotSatisfiable, "")
	// Another repository does not see it.
	h.do("GET", "/v2/team/other/blobs/"+ld.String(), nil).want(t, http.StatusNotFound, "BLOB_UNKNOWN")
	// The manifest is content of the repository too.
	if mb := h.do("GET", "/v2/team/app/blobs/"+md.String(), nil).want(t, http.StatusOK, ""); !bytes.Equal(mb.body, raw) {
		t.Error("manifest served as a blob changed")
	}
}

func TestChunkedUpload(t *testing.T) {
	h := newHub(t)
	data := bytes.Repeat([]byte("0123456789"), 300)
	a := h.do("POST", "/v2/app/blobs/uploads/", nil).want(t, http.StatusAccepted, "")
	loc := a.header.Get("Location")
	a = h.do("PATCH", loc, data[:1000], "Content-Range", "0-999").want(t, http.StatusAccepted, "")
	if rg := a.header.Get("Range"); rg != "0-999" {
		t.Fatalf("Range %q, want 0-999", rg)
	}
	// A chunk that does not follow on is a 416 that says where to resume, and changes nothing.
	a = h.do("PATCH", loc, data[2000:], "Content-Range", "2000-2999").want(t, http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID")
	if rg := a.header.Get("Range"); rg != "0-999" {
		t.Fatalf("Range after 416 %q, want 0-999", rg)
	}
	h.do("PATCH", loc, data[:1000], "Content-Range", "0-999").want(t, http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID")
	h.do("PATCH", loc, data[1000:2000], "Content-Range", "1000-1999").want(t, http.StatusAccepted, "")
	st := h.do("GET", loc, nil).want(t, http.StatusNoContent, "")
	if rg := st.header.Get("Range"); rg != "0-1999" {
		t.Fatalf("status Range %q", rg)
	}
	d := digest.FromBytes(data)
	h.do("PUT", loc+"?digest="+d.String(), data[2000:], "Content-Range", "2000-2999").want(t, http.StatusCreated, "")
	got := h.do("GET", "/v2/app/blobs/"+d.String(), nil).want(t, http.StatusOK, "")
	if !bytes.Equal(got.body, data) {
		t.Fatal("chunked blob changed")
	}
	// The session is over.
	h.do("GET", loc, nil).want(t, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
}

func TestSHA512(t *testing.T) {
	h := newHub(t)
	data := []byte("sha512 content")
	d := digest.SHA512.FromBytes(data)
	h.do("POST", "/v2/app/blobs/uploads/?digest="+d.String(), data).want(t, http.StatusCreated, "")
	got := h.do("GET", "/v2/app/blobs/"+d.String(), nil).want(t, http.StatusOK, "")
	if got.header.Get("Docker-Content-Digest") != d.String() || !bytes.Equal(got.body, data) {
		t.Fatalf("sha512 blob: %v %q", got.header, got.body)
	}
	bad := digest.SHA512.FromBytes([]byte("other"))
	h.do("POST", "/v2/app/blobs/uploads/?digest="+bad.String(), data).want(t, http.StatusBadRequest, "DIGEST_INVALID")
}

func TestBadInput(t *testing.T) {
	h := newHub(t)
	h.pushImage("app", "1", []byte("layer"))
	missing := digest.FromString("missing")
	manifest := func(layers ...ocispec.Descriptor) []byte {
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Layers: layers,
			Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromString(`{"architecture":"amd64","os":"linux"}`), Size: 37}}
		m.SchemaVersion = 2
		b, _ := json.Marshal(m)
		return b
	}
	withMissing := manifest(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: missing, Size: 1})
	wrongSize := manifest(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("layer"), Size: 99})
	foreign := manifest(ocispec.Descriptor{MediaType: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", Digest: missing, Size: 1})
	ok := manifest()
	huge := append([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"a":"`), bytes.Repeat([]byte("a"), oci.MaxManifestSize)...)
	huge = append(huge, `"}}`...)
	mt := ocispec.MediaTypeImageManifest
	for _, tc := range []struct {
		name         string
		method, path string
		body         []byte
		header       []string
		status       int
		code         string
	}{
		{"not json", "PUT", "/v2/app/manifests/x", []byte("{nope"), []string{"Content-Type", mt}, 400, "MANIFEST_INVALID"},
		{"schema 1", "PUT", "/v2/app/manifests/x", []byte(`{"schemaVersion":1,"fsLayers":[]}`), nil, 400, "MANIFEST_INVALID"},
		{"unknown media type", "PUT", "/v2/app/manifests/x", ok, []string{"Content-Type", "application/vnd.example+json"}, 400, "MANIFEST_INVALID"},
		{"media type disagrees", "PUT", "/v2/app/manifests/x", ok, []string{"Content-Type", ocispec.MediaTypeImageIndex}, 400, "MANIFEST_INVALID"},
		{"missing layer", "PUT", "/v2/app/manifests/x", withMissing, []string{"Content-Type", mt}, 400, "MANIFEST_BLOB_UNKNOWN"},
		{"layer of another size", "PUT", "/v2/app/manifests/x", wrongSize, []string{"Content-Type", mt}, 400, "MANIFEST_INVALID"},
		{"nondistributable layer need not be pushed", "PUT", "/v2/app/manifests/nd", foreign, []string{"Content-Type", mt}, 201, ""},
		{"missing index child", "PUT", "/v2/app/manifests/x", []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + missing.String() + `","size":1}]}`), nil, 400, "MANIFEST_BLOB_UNKNOWN"},
		{"oversize manifest", "PUT", "/v2/app/manifests/x", huge, []string{"Content-Type", mt}, 413, "MANIFEST_INVALID"},
		{"wrong manifest digest", "PUT", "/v2/app/manifests/" + missing.String(), ok, []string{"Content-Type", mt}, 400, "DIGEST_INVALID"},
		{"malformed digest", "PUT", "/v2/app/manifests/sha256:baddigeststring", ok, []string{"Content-Type", mt}, 400, "DIGEST_INVALID"},
		{"unsupported algorithm", "GET", "/v2/app/blobs/md5:d41d8cd98f00b204e9800998ecf8427e", nil, nil, 400, "DIGEST_INVALID"},
		{"invalid tag", "GET", "/v2/app/manifests/-x", nil, nil, 400, "MANIFEST_INVALID"},
		{"invalid tag param", "PUT", "/v2/app/manifests/" + digest.FromBytes(ok).String() + "?tag=.bad", ok, []string{"Content-Type", mt}, 400, "MANIFEST_INVALID"},
		{"wrong blob digest", "POST", "/v2/app/blobs/uploads/?digest=" + missing.String(), []byte("data"), nil, 400, "DIGEST_INVALID"},
		{"unknown upload", "PATCH", "/v2/app/blobs/uploads/0123456789abcdef0123456789abcdef", []byte("x"), nil, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"upload id not ours", "GET", "/v2/app/blobs/uploads/..", nil, nil, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"upload of another repository", "GET", "/v2/other/blobs/uploads/0123456789abcdef0123456789abcdef", nil, nil, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"traversal", "GET", "/v2/../etc/manifests/latest", nil, nil, 400, "NAME_INVALID"},
		{"traversal inside", "GET", "/v2/app/../../x/manifests/latest", nil, nil, 400, "NAME_INVALID"},
		{"dot component", "GET", "/v2/app/./x/manifests/latest", nil, nil, 400, "NAME_INVALID"},
		{"empty component", "GET", "/v2/app//x/manifests/latest", nil, nil, 400, "NAME_INVALID"},
		{"upper case", "GET", "/v2/App/manifests/latest", nil, nil, 400, "NAME_INVALID"},
		{"leading separator", "GET", "/v2/_app/manifests/latest", nil, nil, 400, "NAME_INVALID"},
		{"store directory", "GET", "/v2/app/_tags/manifests/latest", nil, nil, 400, "NAME_INVALID"},
		{"name too long", "GET", "/v2/" + strings.Repeat("a", 256) + "/tags/list", nil, nil, 400, "NAME_INVALID"},
		{"no such endpoint", "GET", "/v2/app/nothing", nil, nil, 404, "NAME_UNKNOWN"},
		{"unknown manifest", "GET", "/v2/app/manifests/nope", nil, nil, 404, "MANIFEST_UNKNOWN"},
		{"unknown repository tags", "GET", "/v2/nope/tags/list", nil, nil, 404, "NAME_UNKNOWN"},
		{"method", "POST", "/v2/app/manifests/1", nil, nil, 405, "UNSUPPORTED"},
		{"bad n", "GET", "/v2/app/tags/list?n=-1", nil, nil, 400, "UNSUPPORTED"},
		{"mount from bad name", "POST", "/v2/app/blobs/uploads/?mount=" + missing.String() + "&from=../x", nil, nil, 400, "NAME_INVALID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := h.do(tc.method, tc.path, tc.body, tc.header...)
			a.want(t, tc.status, tc.code)
			if tc.status >= 400 && a.header.Get("Content-Type") != "application/json" {
				t.Errorf("error answered as %q", a.header.Get("Content-Type"))
			}
		})
	}
	// Nothing refused was stored: the only tags are those pushed.
	tags := h.do("GET", "/v2/app/tags/list", nil).want(t, http.StatusOK, "")
	if diff := cmp.Diff(`{"name":"app","tags":["1","nd"]}`, string(tags.body)); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
}

func TestTruncatedChunk(t *testing.T) {
	h := newHub(t)
	loc := h.do("POST", "/v2/app/blobs/uploads/", nil).want(t, http.StatusAccepted, "").header.Get("Location")
	// The Content-Range says 100 bytes, the body has 50: a client cut off midway.
	req, _ := http.NewRequest("PATCH", "http://hub.test"+loc, bytes.NewReader(bytes.Repeat([]byte("x"), 50)))
	req.Header.Set("Content-Range", "0-99")
	req.ContentLength = -1
	a := h.serve(req).want(t, http.StatusBadRequest, "SIZE_INVALID")
	// What arrived is kept, so that the client resumes after it.
	if rg := a.header.Get("Range"); rg != "0-49" {
		t.Fatalf("Range after a truncated chunk %q, want 0-49", rg)
	}
	// Content-Length that disagrees with Content-Range is refused before anything is read.
	h.do("PATCH", loc, []byte("abc"), "Content-Range", "50-59").want(t, http.StatusBadRequest, "SIZE_INVALID")
}

// TestRestartMidUpload kills a server between the chunks of an upload, leaving behind the
// tail of an append its state never recorded, and checks that a new server on the same
// root resumes the session and never serves the partial blob.
func TestRestartMidUpload(t *testing.T) {
	root := t.TempDir()
	data := bytes.Repeat([]byte("abcdefgh"), 4096)
	d := digest.FromBytes(data)
	h1 := openHub(t, root)
	loc := h1.do("POST", "/v2/app/blobs/uploads/", nil).want(t, http.StatusAccepted, "").header.Get("Location")
	h1.do("PATCH", loc, data[:10000], "Content-Range", "0-9999").want(t, http.StatusAccepted, "")
	id := loc[strings.LastIndex(loc, "/")+1:]
	// The crash: bytes of a second chunk reached the data file, its state did not.
	f, err := os.OpenFile(filepath.Join(root, "uploads", id, "data"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("garbage of a chunk the crash cut"))
	f.Close()

	h2 := openHub(t, root)
	h2.do("HEAD", "/v2/app/blobs/"+d.String(), nil).want(t, http.StatusNotFound, "")
	h2.do("GET", "/v2/app/blobs/"+d.String(), nil).want(t, http.StatusNotFound, "BLOB_UNKNOWN")
	st := h2.do("GET", loc, nil).want(t, http.StatusNoContent, "")
	if rg := st.header.Get("Range"); rg != "0-9999" {
		t.Fatalf("resumed Range %q, want 0-9999", rg)
	}
	// A commit now, with the wrong content, is refused and serves nothing.
	h2.do("PUT", loc+"?digest="+d.String(), nil).want(t, http.StatusBadRequest, "DIGEST_INVALID")
	h2.do("HEAD", "/v2/app/blobs/"+d.String(), nil).want(t, http.StatusNotFound, "")

	// A fresh session, interrupted the same way, then finished.
	loc = h2.do("POST", "/v2/app/blobs/uploads/", nil).want(t, http.StatusAccepted, "").header.Get("Location")
	h2.do("PATCH", loc, data[:10000], "Content-Range", "0-9999").want(t, http.StatusAccepted, "")
	h3 := openHub(t, root)
	h3.do("PATCH", loc, data[10000:], "Content-Range", fmt.Sprintf("10000-%d", len(data)-1)).want(t, http.StatusAccepted, "")
	h3.do("PUT", loc+"?digest="+d.String(), nil).want(t, http.StatusCreated, "")
	got := h3.do("GET", "/v2/app/blobs/"+d.String(), nil).want(t, http.StatusOK, "")
	if !bytes.Equal(got.body, data) {
		t.Fatal("resumed blob differs")
	}
}

func TestMount(t *testing.T) {
	h := newHub(t, server.WithAutomaticMount(false))
	d := h.pushBlob("src", []byte("shared"))
	h.do("POST", "/v2/dst/blobs/uploads/?mount="+d.String()+"&from=src", nil).want(t, http.StatusCreated, "")
	h.do("GET", "/v2/dst/blobs/"+d.String(), nil).want(t, http.StatusOK, "")
	// Without from, and automatic mounts off: a session, as for a missing blob.
	h.do("POST", "/v2/third/blobs/uploads/?mount="+d.String(), nil).want(t, http.StatusAccepted, "")
	h.do("POST", "/v2/third/blobs/uploads/?mount="+digest.FromString("nope").String()+"&from=src", nil).want(t, http.StatusAccepted, "")
	h.do("GET", "/v2/third/blobs/"+d.String(), nil).want(t, http.StatusNotFound, "BLOB_UNKNOWN")
}

func TestReferrersAndTagParams(t *testing.T) {
	h := newHub(t)
	_, subj := h.pushImage("app", "1", []byte("layer"))
	empty := h.pushBlob("app", []byte("{}"))
	ref := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.sbom","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2},"layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":1},"annotations":{"k":"v"}}`, empty, subj)
	rd := digest.FromString(ref)
	a := h.do("PUT", "/v2/app/manifests/"+rd.String()+"?tag=sbom&tag=sbom2", []byte(ref), "Content-Type", ocispec.MediaTypeImageManifest).want(t, http.StatusCreated, "")
	if a.header.Get("OCI-Subject") != subj.String() {
		t.Errorf("OCI-Subject %q", a.header.Get("OCI-Subject"))
	}
	if diff := cmp.Diff([]string{"sbom", "sbom2"}, a.header.Values("OCI-Tag")); diff != "" {
		t.Errorf("OCI-Tag (-want +got):\n%s", diff)
	}
	for _, q := range []string{"", "?artifactType=application/vnd.example.sbom", "?artifactType=other"} {
		l := h.do("GET", "/v2/app/referrers/"+subj.String()+q, nil).want(t, http.StatusOK, "")
		var idx ocispec.Index
		if err := json.Unmarshal(l.body, &idx); err != nil {
			t.Fatal(err)
		}
		want := 1
		if q == "?artifactType=other" {
			want = 0
		}
		if len(idx.Manifests) != want {
			t.Fatalf("referrers%s: %d, want %d: %s", q, len(idx.Manifests), want, l.body)
		}
		if want == 1 && (idx.Manifests[0].Digest != rd || idx.Manifests[0].ArtifactType != "application/vnd.example.sbom" || idx.Manifests[0].Annotations["k"] != "v") {
			t.Errorf("referrer entry %+v", idx.Manifests[0])
		}
		if (q != "") != (l.header.Get("OCI-Filters-Applied") == "artifactType") {
			t.Errorf("OCI-Filters-Applied %q for %q", l.header.Get("OCI-Filters-Applied"), q)
		}
	}
	h.do("DELETE", "/v2/app/manifests/"+rd.String(), nil).want(t, http.StatusAccepted, "")
	l := h.do("GET", "/v2/app/referrers/"+subj.String(), nil).want(t, http.StatusOK, "")
	if !strings.Contains(string(l.body), `"manifests":[]`) {
		t.Errorf("referrers after delete: %s", l.body)
	}
	h.do("GET", "/v2/app/manifests/sbom", nil).want(t, http.StatusNotFound, "MANIFEST_UNKNOWN")
}

func TestPagination(t *testing.T) {
	h := newHub(t)
	_, d := h.pushImage("app", "a", []byte("l"))
	m := h.do("GET", "/v2/app/manifests/a", nil)
	for _, tag := range []string{"b", "c", "d"} {
		h.do("PUT", "/v2/app/manifests/"+tag, m.body, "Content-Type", ocispec.MediaTypeImageManifest).want(t, http.StatusCreated, "")
	}
	p := h.do("GET", "/v2/app/tags/list?n=2", nil).want(t, http.StatusOK, "")
	if diff := cmp.Diff(`{"name":"app","tags":["a","b"]}`, string(p.body)); diff != "" {
		t.Errorf("page 1 (-want +got):\n%s", diff)
	}
	if link := p.header.Get("Link"); link != `</v2/app/tags/list?last=b&n=2>; rel="next"` {
		t.Errorf("Link %q", link)
	}
	p = h.do("GET", "/v2/app/tags/list?n=2&last=b", nil).want(t, http.StatusOK, "")
	if diff := cmp.Diff(`{"name":"app","tags":["c","d"]}`, string(p.body)); diff != "" {
		t.Errorf("page 2 (-want +got):\n%s", diff)
	}
	if p.header.Get("Link") != "" {
		t.Errorf("Link on the last page: %q", p.header.Get("Link"))
	}
	h.do("DELETE", "/v2/app/manifests/b", nil).want(t, http.StatusAccepted, "")
	h.do("GET", "/v2/app/manifests/b", nil).want(t, http.StatusNotFound, "MANIFEST_UNKNOWN")
	h.do("GET", "/v2/app/manifests/"+d.String(), nil).want(t, http.StatusOK, "")
	h.pushImage("zeta/app", "1", []byte("l"))
	c := h.do("GET", "/v2/_catalog?n=1", nil).want(t, http.StatusOK, "")
	if diff := cmp.Diff(`{"repositories":["app"]}`, string(c.body)); diff != "" {
		t.Errorf("catalog (-want +got):\n%s", diff)
	}
	if c.header.Get("Link") != `</v2/_catalog?last=app&n=1>; rel="next"` {
		t.Errorf("catalog Link %q", c.header.Get("Link"))
	}
}

func TestCatalogFilter(t *testing.T) {
	h := newHub(t, server.WithCatalogFilter(func(r *http.Request, repo string) bool { return strings.HasPrefix(repo, "public/") }))
	h.pushImage("public/app", "1", []byte("l"))
	h.pushImage("private/app", "1", []byte("l"))
	c := h.do("GET", "/v2/_catalog", nil).want(t, http.StatusOK, "")
	if diff := cmp.Diff(`{"repositories":["public/app"]}`, string(c.body)); diff != "" {
		t.Errorf("catalog (-want +got):\n%s", diff)
	}
}

func TestAuthorizer(t *testing.T) {
	h := newHub(t, server.WithAuthorizer(server.BasicAuth("hub", map[string]string{"ci": "secret"})))
	a := h.do("GET", "/v2/", nil).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
	if a.header.Get("WWW-Authenticate") != `Basic realm="hub"` {
		t.Errorf("WWW-Authenticate %q", a.header.Get("WWW-Authenticate"))
	}
	req, _ := http.NewRequest("GET", "http://hub.test/v2/", nil)
	req.SetBasicAuth("ci", "wrong")
	h.serve(req).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
	req.SetBasicAuth("ci", "secret")
	h.serve(req).want(t, http.StatusOK, "")

	// A policy: pulls of anything, pushes to team/ only; the mount needs pull on its source.
	var asked [][]server.Access
	var mu sync.Mutex
	policy := server.AuthorizerFunc(func(r *http.Request, access []server.Access) error {
		mu.Lock()
		asked = append(asked, access)
		mu.Unlock()
		for _, a := range access {
			for _, act := range a.Actions {
				if act != server.ActionPull && !strings.HasPrefix(a.Name, "team/") {
					return fmt.Errorf("%w: %s", server.ErrDenied, a.Scope())
				}
			}
		}
		return nil
	})
	h = newHub(t, server.WithAuthorizer(policy))
	h.do("POST", "/v2/other/blobs/uploads/", nil).want(t, http.StatusForbidden, "DENIED")
	d := h.pushBlob("team/a", []byte("x"))
	h.do("DELETE", "/v2/other/blobs/"+d.String(), nil).want(t, http.StatusForbidden, "DENIED")
	h.do("POST", "/v2/team/b/blobs/uploads/?mount="+d.String()+"&from=team/a", nil).want(t, http.StatusCreated, "")
	mu.Lock()
	last := asked[len(asked)-1]
	mu.Unlock()
	want := []server.Access{{Type: "repository", Name: "team/b", Actions: []string{"push"}}, {Type: "repository", Name: "team/a", Actions: []string{"pull"}}}
	if diff := cmp.Diff(want, last); diff != "" {
		t.Errorf("mount asked (-want +got):\n%s", diff)
	}
}

// An Authorizer's error of no known kind is a 403 DENIED, as its documentation says, not a
// 500, on every route that asks it.
func TestAuthorizerPlainErrorIsDenied(t *testing.T) {
	h := newHub(t, server.WithAuthorizer(server.AuthorizerFunc(func(*http.Request, []server.Access) error {
		return errors.New("not on this project")
	})))
	for _, c := range []struct{ method, path string }{
		{"GET", "/v2/"}, {"GET", "/v2/_catalog"}, {"GET", "/v2/team/app/tags/list"},
		{"POST", "/v2/team/app/blobs/uploads/"}, {"GET", "/v2/team/app/manifests/latest"},
	} {
		a := h.do(c.method, c.path, nil).want(t, http.StatusForbidden, "DENIED")
		if !strings.Contains(string(a.body), "not on this project") {
			t.Errorf("%s %s: the refusal does not say why: %s", c.method, c.path, a.body)
		}
	}
}

func TestQuotaRefusalStoresNothing(t *testing.T) {
	var usages []server.Usage
	quota := server.QuotaFunc(func(r *http.Request, u server.Usage) error {
		usages = append(usages, u)
		if u.Kind == "blob" && u.Size > 10 {
			return fmt.Errorf("project team: %d bytes is past the quota of 10", u.Size)
		}
		if u.Kind == "manifest" {
			return fmt.Errorf("%w: come back later", server.ErrTooManyRequests)
		}
		return nil
	})
	h := newHub(t, server.WithQuota(quota))
	big := bytes.Repeat([]byte("x"), 11)
	d := digest.FromBytes(big)
	a := h.do("POST", "/v2/team/app/blobs/uploads/?digest="+d.String(), big).want(t, http.StatusForbidden, "DENIED")
	if !strings.Contains(string(a.body), "past the quota") {
		t.Errorf("refusal does not say why: %s", a.body)
	}
	h.do("HEAD", "/v2/team/app/blobs/"+d.String(), nil).want(t, http.StatusNotFound, "")
	n := 0
	h.store.WalkBlobs(t.Context(), func(digest.Digest, int64, time.Time) error { n++; return nil })
	uploads := 0
	h.store.WalkUploads(t.Context(), func(string, string, int64, time.Time) error { uploads++; return nil })
	if n != 0 || uploads != 0 {
		t.Errorf("a refused push left %d blobs and %d uploads", n, uploads)
	}
	small := h.pushBlob("team/app", []byte("{}"))
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2},"layers":[]}`, small)
	h.do("PUT", "/v2/team/app/manifests/1", []byte(m), "Content-Type", ocispec.MediaTypeImageManifest).want(t, http.StatusTooManyRequests, "TOOMANYREQUESTS")
	h.do("GET", "/v2/team/app/manifests/1", nil).want(t, http.StatusNotFound, "MANIFEST_UNKNOWN")
	if len(usages) != 3 || usages[2].Kind != "manifest" || usages[2].Size != int64(len(m)) {
		t.Errorf("usages %+v", usages)
	}
}

func TestEvents(t *testing.T) {
	var mu sync.Mutex
	var got []string
	h := newHub(t, server.WithEvents(func(e server.Event) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, fmt.Sprintf("%s %s %s %s", e.Action, e.Kind, e.Repository, e.Tag))
	}))
	_, d := h.pushImage("app", "1", []byte("l"))
	h.do("GET", "/v2/app/manifests/1", nil).want(t, http.StatusOK, "")
	h.do("HEAD", "/v2/app/manifests/1", nil).want(t, http.StatusOK, "")
	h.do("DELETE", "/v2/app/manifests/1", nil).want(t, http.StatusAccepted, "")
	h.do("DELETE", "/v2/app/manifests/"+d.String(), nil).want(t, http.StatusAccepted, "")
	want := []string{"push blob app ", "push blob app ", "push manifest app 1", "pull manifest app 1", "delete tag app 1", "delete manifest app "}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestRateLimit(t *testing.T) {
	now := time.Unix(1000, 0)
	h := newHub(t, server.WithRateLimit(1, 2), server.WithClock(func() time.Time { return now }))
	h.do("GET", "/v2/", nil).want(t, http.StatusOK, "")
	h.do("GET", "/v2/", nil).want(t, http.StatusOK, "")
	a := h.do("GET", "/v2/", nil).want(t, http.StatusTooManyRequests, "TOOMANYREQUESTS")
	if a.header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q", a.header.Get("Retry-After"))
	}
	// Another client has its own bucket.
	req, _ := http.NewRequest("GET", "http://hub.test/v2/", nil)
	req.RemoteAddr = "192.0.2.9:1234"
	h.serve(req).want(t, http.StatusOK, "")
	now = now.Add(time.Second)
	h.do("GET", "/v2/", nil).want(t, http.StatusOK, "")
}

func TestOptionsRefuseBadValues(t *testing.T) {
	st := newHub(t).store
	for _, o := range []server.Option{
		server.WithRateLimit(0, 1), server.WithRateLimit(1, 0), server.WithMaxManifestSize(10),
		server.WithAuthorizer(nil), server.WithQuota(nil), server.WithEvents(nil), server.WithCatalogFilter(nil),
		server.WithRateLimitKey(nil), server.WithClock(nil),
	} {
		if _, err := server.New(st, o); err == nil || !strings.Contains(err.Error(), "With") {
			t.Errorf("option accepted or unnamed: %v", err)
		}
	}
	if _, err := server.New(nil); err == nil {
		t.Error("New(nil) accepted")
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "hub.yaml")
	os.WriteFile(p, []byte("addr: 127.0.0.1:0\nroot: "+dir+"\nrateLimit: {perSecond: 5, burst: 10}\nusers: {ci: secret}\n"), 0o644)
	c, err := server.LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:0" || c.RateLimit.Burst != 10 || c.Users["ci"] != "secret" {
		t.Errorf("config %+v", c)
	}
	os.WriteFile(p, []byte("root: x\nrootz: y\n"), 0o644)
	if _, err := server.LoadConfig(p); err == nil || !strings.Contains(err.Error(), "rootz") {
		t.Errorf("unknown field: %v", err)
	}
	os.WriteFile(p, []byte("addr: x\n"), 0o644)
	if c, err := server.LoadConfig(p); err != nil || c.Validate() == nil {
		t.Errorf("config without root: %v, then validated", err)
	}
}

func TestMaxBlobSize(t *testing.T) {
	h := newHub(t, server.WithMaxBlobSize(100))
	data := bytes.Repeat([]byte("x"), 101)
	h.do("POST", "/v2/app/blobs/uploads/?digest="+digest.FromBytes(data).String(), data).want(t, http.StatusRequestEntityTooLarge, "SIZE_INVALID")
	loc := h.do("POST", "/v2/app/blobs/uploads/", nil).want(t, http.StatusAccepted, "").header.Get("Location")
	h.do("PATCH", loc, data[:60], "Content-Range", "0-59").want(t, http.StatusAccepted, "")
	// A streamed chunk, without Content-Length, past the limit.
	req := mustRequest("PATCH", loc, data[60:])
	req.ContentLength = -1
	h.serve(req).want(t, http.StatusRequestEntityTooLarge, "SIZE_INVALID")
	h.do("GET", loc, nil).want(t, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	h.pushBlob("app", data[:100])
}

func TestLoadConfigGCAndNotifications(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "hub.yaml")
	os.WriteFile(p, []byte(`root: `+dir+`
gc: {interval: 30m, grace: 2h, uploadTTL: 12h, deleteUntagged: true}
notifications:
  - url: http://127.0.0.1:9/hook
    events: [push, delete]
    headers: {Authorization: Bearer x}
    timeout: 3s
`), 0o644)
	c, err := server.LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.GC.Interval != 30*time.Minute || c.GC.Grace != 2*time.Hour || c.GC.UploadTTL != 12*time.Hour || !c.GC.DeleteUntagged {
		t.Errorf("gc %+v", c.GC)
	}
	if len(c.Notifications) != 1 || c.Notifications[0].Timeout != 3*time.Second || c.Notifications[0].Headers["Authorization"] != "Bearer x" {
		t.Errorf("notifications %+v", c.Notifications)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	c.Notifications[0].Events = []string{"pushed"}
	if err := c.Validate(); err == nil {
		t.Error("event pushed validated")
	}
}
