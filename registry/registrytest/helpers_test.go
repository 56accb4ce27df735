package registrytest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/registrytest"
)

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

// server is a test's HTTP server and a client for it.
type server struct {
	t   testing.TB
	URL string
	// auth, if set, is the Authorization header of every request.
	auth string
}

// serve serves h for the test's duration.
func serve(t testing.TB, h http.Handler) *server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &server{t: t, URL: srv.URL}
}

// newRegistry serves a new Registry with opts.
func newRegistry(t testing.TB, opts ...registrytest.Option) (*registrytest.Registry, *server) {
	t.Helper()
	reg := mustNew(t, opts...)
	return reg, serve(t, reg)
}

// mustNew returns a new Registry with opts, failing the test if New refuses them.
func mustNew(t testing.TB, opts ...registrytest.Option) *registrytest.Registry {
	t.Helper()
	reg, err := registrytest.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// mustTokenServer returns a new TokenServer with opts, failing the test if it refuses them.
func mustTokenServer(t testing.TB, opts ...registrytest.TokenOption) *registrytest.TokenServer {
	t.Helper()
	ts, err := registrytest.NewTokenServer(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// addFaults adds faults to p, failing the test if Add refuses one.
func addFaults(t testing.TB, p *registrytest.FaultProxy, faults ...registrytest.Fault) {
	t.Helper()
	if err := p.Add(faults...); err != nil {
		t.Fatal(err)
	}
}

// answer is a response with its body read.
type answer struct {
	*http.Response
	body []byte
}

// do sends a request; header is pairs of name and value.
func (s *server) do(method, path string, body []byte, header ...string) answer {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if s.auth != "" {
		req.Header.Set("Authorization", s.auth)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return answer{Response: resp, body: data}
}

// want fails the test unless a has status and, for an error, the error code.
func (a answer) want(t testing.TB, status int, code string) answer {
	t.Helper()
	if a.StatusCode != status {
		t.Fatalf("%s %s: %s (%s), want %d", a.Request.Method, a.Request.URL.Path, a.Status, a.body, status)
	}
	if code != "" {
		if got := errorCode(a.body); got != code {
			t.Fatalf("%s %s: error code %q (%s), want %q", a.Request.Method, a.Request.URL.Path, got, a.body, code)
		}
	}
	return a
}

// errorCode is the code of the first error of a spec error body.
func errorCode(body []byte) string {
	var e struct {
		Errors []struct{ Code string }
	}
	if json.Unmarshal(body, &e) != nil || len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

// pushBlob pushes data to repo monolithically and returns its digest.
func (s *server) pushBlob(repo string, data []byte) digest.Digest {
	s.t.Helper()
	d := digest.FromBytes(data)
	s.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), data).want(s.t, http.StatusCreated, "")
	return d
}

// image is a small image manifest whose blobs are pushed.
type image struct {
	manifest []byte
	digest   digest.Digest
	config   digest.Digest
	layer    digest.Digest
}

// pushImage pushes the blobs of a small image to repo and returns its manifest, not pushed;
// extra is added to the manifest (an artifactType, a subject).
func (s *server) pushImage(repo, seed string, extra map[string]any) image {
	s.t.Helper()
	config := []byte(`{"seed":"` + seed + `"}`)
	layer := []byte("layer " + seed)
	img := image{config: s.pushBlob(repo, config), layer: s.pushBlob(repo, layer)}
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     ocispec.MediaTypeImageManifest,
		"config":        ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: img.config, Size: int64(len(config))},
		"layers":        []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: img.layer, Size: int64(len(layer))}},
	}
	for k, v := range extra {
		m[k] = v
	}
	data, err := json.Marshal(m)
	if err != nil {
		s.t.Fatal(err)
	}
	img.manifest, img.digest = data, digest.FromBytes(data)
	return img
}

// putManifest pushes a manifest of media type mt to repo as ref.
func (s *server) putManifest(repo, ref, mt string, data []byte) answer {
	s.t.Helper()
	return s.do("PUT", "/v2/"+repo+"/manifests/"+ref, data, "Content-Type", mt)
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func descriptorOf(mt string, data []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(data), Size: int64(len(data))}
}

func specsVersioned() specs.Versioned { return specs.Versioned{SchemaVersion: 2} }
