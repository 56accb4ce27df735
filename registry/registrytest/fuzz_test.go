package registrytest_test

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/registrytest"
)

// specCodes are the error codes of the distribution spec.
var specCodes = map[string]bool{
	"BLOB_UNKNOWN": true, "BLOB_UPLOAD_INVALID": true, "BLOB_UPLOAD_UNKNOWN": true, "DIGEST_INVALID": true,
	"MANIFEST_BLOB_UNKNOWN": true, "MANIFEST_INVALID": true, "MANIFEST_UNKNOWN": true, "NAME_INVALID": true,
	"NAME_UNKNOWN": true, "SIZE_INVALID": true, "UNAUTHORIZED": true, "DENIED": true, "UNSUPPORTED": true,
	"TOOMANYREQUESTS": true,
}

// call serves one request in process.
func call(h http.Handler, method, path, rawQuery, ct string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "/", bytes.NewReader(body))
	req.URL.Path, req.URL.RawQuery = path, rawQuery
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// checkError fails t unless rec is a 4xx answer with a spec error body.
func checkError(t *testing.T, what string, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code < 400 || rec.Code >= 500 {
		t.Fatalf("%s: status %d: %s", what, rec.Code, rec.Body)
	}
	if code := errorCode(rec.Body.Bytes()); !specCodes[code] {
		t.Fatalf("%s: %d with error code %q: %s", what, rec.Code, code, rec.Body)
	}
}

// FuzzPutManifest pushes any manifest with any reference and Content-Type to a registry
// whose repository "app" holds one blob: the registry stores exactly what it accepts,
// returns it as pushed, and refuses the rest with a spec error, never a 5xx.
func FuzzPutManifest(f *testing.F) {
	config := []byte(`{}`)
	cd := digest.FromBytes(config)
	image := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + cd.String() + `","size":2},"layers":[]}`
	f.Add("app", "latest", ocispec.MediaTypeImageManifest, []byte(image))
	f.Add("app", digest.FromString(image).String(), "", []byte(image))
	f.Add("app", "1", ocispec.MediaTypeImageIndex, []byte(`{"schemaVersion":2,"manifests":[]}`))
	f.Add("app", "x", "application/vnd.example+json; p=1", []byte(`{"subject":{"digest":"`+cd.String()+`","size":2}}`))
	f.Add("App", "latest", ocispec.MediaTypeImageManifest, []byte(image))
	f.Add("app", "sha256:zz", ocispec.MediaTypeImageManifest, []byte(image))
	f.Add("a/b", "-x", "", []byte(`{"mediaType":"a"}`))
	f.Fuzz(func(t *testing.T, repo, ref, ct string, body []byte) {
		reg := mustNew(t, registrytest.WithMaxManifestSize(1<<16))
		if rec := call(reg, "POST", "/v2/app/blobs/uploads/", "digest="+cd.String(), "", config); rec.Code != 201 {
			t.Fatalf("pushing the config: %d", rec.Code)
		}
		path := "/v2/" + repo + "/manifests/" + ref
		rec := call(reg, "PUT", path, "", ct, body)
		if rec.Code != http.StatusCreated {
			checkError(t, "PUT "+path, rec)
			if rec.Code == 400 && errorCode(rec.Body.Bytes()) == "NAME_INVALID" && registrytest.ValidName(repo) {
				t.Fatalf("PUT %s: NAME_INVALID for a valid name", path)
			}
			return
		}
		if !registrytest.ValidName(repo) {
			t.Fatalf("PUT %s: accepted an invalid name", path)
		}
		d, err := digest.Parse(rec.Header().Get("Docker-Content-Digest"))
		if err != nil {
			t.Fatalf("PUT %s: Docker-Content-Digest %q: %v", path, rec.Header().Get("Docker-Content-Digest"), err)
		}
		if strings.Contains(ref, ":") {
			if d.String() != ref {
				t.Fatalf("PUT %s: stored as %s", path, d)
			}
		} else if !registrytest.ValidTag(ref) {
			t.Fatalf("PUT %s: accepted an invalid tag", path)
		}
		if d.Algorithm().FromBytes(body) != d {
			t.Fatalf("PUT %s: digest %s is not the body's", path, d)
		}
		if !json.Valid(body) {
			t.Fatalf("PUT %s: accepted a body that is not JSON", path)
		}
		wantType := ""
		if ct != "" {
			wantType, _, _ = mime.ParseMediaType(ct)
		} else {
			var doc struct{ MediaType string }
			json.Unmarshal(body, &doc)
			wantType = doc.MediaType
		}
		for _, r := range []string{ref, d.String()} {
			get := call(reg, "GET", "/v2/"+repo+"/manifests/"+r, "", "", nil)
			if get.Code != 200 || !bytes.Equal(get.Body.Bytes(), body) || get.Header().Get("Content-Type") != wantType {
				t.Fatalf("GET %s after PUT %s: %d, Content-Type %q (want %q), same bytes %v", r, path, get.Code, get.Header().Get("Content-Type"), wantType, bytes.Equal(get.Body.Bytes(), body))
			}
		}
	})
}

// FuzzRequest sends any method, path and query to a registry holding an image: it answers
// each within the spec's vocabulary, never with a 5xx.
func FuzzRequest(f *testing.F) {
	for _, seed := range []struct{ method, path, query string }{
		{"GET", "/v2/", ""},
		{"GET", "/v2/app/tags/list", "n=1&last=a"},
		{"HEAD", "/v2/app/manifests/latest", ""},
		{"GET", "/v2/app/blobs/sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", ""},
		{"POST", "/v2/app/blobs/uploads/", "mount=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a&from=app"},
		{"PATCH", "/v2/app/blobs/uploads/x", ""},
		{"GET", "/v2/_catalog", "n=-1"},
		{"GET", "/v2/app/referrers/sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "artifactType=a"},
		{"DELETE", "/v2/a/b/manifests/sha256:0", ""},
	} {
		f.Add(seed.method, seed.path, seed.query, []byte(nil))
	}
	f.Fuzz(func(t *testing.T, method, path, query string, body []byte) {
		if !validMethod(method) {
			return
		}
		reg := mustNew(t, registrytest.WithMaxBlobSize(1<<16), registrytest.WithMaxManifestSize(1<<16))
		config := []byte(`{}`)
		call(reg, "POST", "/v2/app/blobs/uploads/", "digest="+digest.FromBytes(config).String(), "", config)
		rec := call(reg, method, path, query, "application/octet-stream", body)
		if rec.Code >= 400 && method != "HEAD" {
			checkError(t, method+" "+path+"?"+query, rec)
		}
		if rec.Code >= 500 {
			t.Fatalf("%s %s?%s: %d", method, path, query, rec.Code)
		}
	})
}

// validMethod reports whether m is a token net/http would send.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?={}`, c) {
			return false
		}
	}
	return true
}
