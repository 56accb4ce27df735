package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// specCodes are the error codes of the distribution spec.
var specCodes = map[string]bool{
	"BLOB_UNKNOWN": true, "BLOB_UPLOAD_INVALID": true, "BLOB_UPLOAD_UNKNOWN": true, "DIGEST_INVALID": true,
	"MANIFEST_BLOB_UNKNOWN": true, "MANIFEST_INVALID": true, "MANIFEST_UNKNOWN": true, "NAME_INVALID": true,
	"NAME_UNKNOWN": true, "SIZE_INVALID": true, "UNAUTHORIZED": true, "DENIED": true, "UNSUPPORTED": true,
	"TOOMANYREQUESTS": true,
}

// FuzzRequest sends arbitrary requests to a server with some content, and checks that it
// answers each without panicking, with an error in the spec's JSON format and codes, and
// that a blob it serves whole has the digest it was asked for.
func FuzzRequest(f *testing.F) {
	layer := []byte("fuzz layer")
	ld := digest.FromBytes(layer)
	f.Add("GET", "/v2/app/manifests/1", "", []byte(nil), "")
	f.Add("GET", "/v2/app/blobs/"+ld.String(), "", []byte(nil), "bytes=2-4")
	f.Add("PUT", "/v2/app/manifests/x", "", []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`), "")
	f.Add("POST", "/v2/app/blobs/uploads/", "digest="+digest.FromString("a").String(), []byte("a"), "")
	f.Add("POST", "/v2/app/blobs/uploads/", "mount="+ld.String()+"&from=app", []byte(nil), "")
	f.Add("PATCH", "/v2/app/blobs/uploads/0123456789abcdef0123456789abcdef", "", []byte("x"), "0-0")
	f.Add("GET", "/v2/app/tags/list", "n=1&last=0", []byte(nil), "")
	f.Add("GET", "/v2/_catalog", "n=0", []byte(nil), "")
	f.Add("GET", "/v2/app/referrers/"+ld.String(), "artifactType=a", []byte(nil), "")
	f.Add("DELETE", "/v2/a/../b/manifests/1", "", []byte(nil), "")
	hub := newHub(f)
	hub.pushImage("app", "1", layer)
	f.Fuzz(func(t *testing.T, method, path, query string, body []byte, rng string) {
		switch method {
		case "GET", "HEAD", "PUT", "POST", "PATCH", "DELETE":
		default:
			method = "GET"
		}
		req := httptest.NewRequest(method, "http://hub.test/", strings.NewReader(string(body)))
		req.URL.Path = path
		req.URL.RawQuery = query
		if rng != "" {
			req.Header.Set("Range", "bytes="+rng)
			req.Header.Set("Content-Range", rng)
		}
		req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		a := hub.serve(req)
		if a.status == http.StatusInternalServerError {
			t.Fatalf("%s %s?%s: %s", method, path, query, a.body)
		}
		if a.status < 200 || a.status > 599 {
			t.Fatalf("status %d", a.status)
		}
		if a.status >= 400 && method != "HEAD" {
			var b struct {
				Errors []struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"errors"`
			}
			if err := json.Unmarshal(a.body, &b); err != nil || len(b.Errors) != 1 || !specCodes[b.Errors[0].Code] {
				t.Fatalf("%s %s: error answer %d not in the spec's format: %q", method, path, a.status, a.body)
			}
		}
		if method == "GET" && a.status == http.StatusOK && strings.Contains(path, "/blobs/") {
			want := digest.Digest(a.header.Get("Docker-Content-Digest"))
			if want.Validate() == nil && want.Algorithm().FromBytes(a.body) != want {
				t.Fatalf("blob %s served with other content", want)
			}
		}
	})
}
