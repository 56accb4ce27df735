package registrytest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/registrytest"
)

func TestManifestByTagAndDigest(t *testing.T) {
	t.Parallel()
	_, s := newRegistry(t)
	img := s.pushImage("app", "1", nil)
	a := s.putManifest("app", "v1", ocispec.MediaTypeImageManifest+"; charset=utf-8", img.manifest).want(t, http.StatusCreated, "")
	if a.Header.Get("Docker-Content-Digest") != img.digest.String() || a.Header.Get("Location") != "/v2/app/manifests/"+img.digest.String() {
		t.Errorf("PUT: digest %q, Location %q", a.Header.Get("Docker-Content-Digest"), a.Header.Get("Location"))
	}
	if a.Header.Get("OCI-Subject") != "" {
		t.Errorf("PUT without a subject: OCI-Subject %q", a.Header.Get("OCI-Subject"))
	}
	for _, ref := range []string{"v1", img.digest.String()} {
		a := s.do("GET", "/v2/app/manifests/"+ref, nil, "Accept", ocispec.MediaTypeImageManifest).want(t, http.StatusOK, "")
		if !bytes.Equal(a.body, img.manifest) || a.Header.Get("Content-Type") != ocispec.MediaTypeImageManifest ||
			a.Header.Get("Docker-Content-Digest") != img.digest.String() {
			t.Errorf("GET %s: type %q, digest %q, same bytes %v", ref, a.Header.Get("Content-Type"), a.Header.Get("Docker-Content-Digest"), bytes.Equal(a.body, img.manifest))
		}
		a = s.do("HEAD", "/v2/app/manifests/"+ref, nil).want(t, http.StatusOK, "")
		if a.ContentLength != int64(len(img.manifest)) || a.Header.Get("Docker-Content-Digest") != img.digest.String() {
			t.Errorf("HEAD %s: length %d, digest %q", ref, a.ContentLength, a.Header.Get("Docker-Content-Digest"))
		}
	}
	// A manifest is a blob of its repository too, as in Distribution.
	s.do("GET", "/v2/app/blobs/"+img.digest.String(), nil).want(t, http.StatusOK, "")

	// By digest, with tags.
	img2 := s.pushImage("app", "2", nil)
	a = s.putManifest("app", img2.digest.String()+"?tag=a&tag=b", ocispec.MediaTypeImageManifest, img2.manifest).want(t, http.StatusCreated, "")
	if got := a.Header.Get("OCI-Tag"); got != "a, b" {
		t.Errorf("OCI-Tag %q", got)
	}
	s.do("GET", "/v2/app/manifests/b", nil).want(t, http.StatusOK, "")
	s.putManifest("app", "v2?tag=x", ocispec.MediaTypeImageManifest, img2.manifest).want(t, http.StatusBadRequest, "MANIFEST_INVALID")
	s.putManifest("app", img2.digest.String()+"?tag=-x", ocispec.MediaTypeImageManifest, img2.manifest).want(t, http.StatusBadRequest, "MANIFEST_INVALID")
	// By a digest that is not its own.
	s.putManifest("app", img.digest.String(), ocispec.MediaTypeImageManifest, img2.manifest).want(t, http.StatusBadRequest, "DIGEST_INVALID")

	s.do("GET", "/v2/app/manifests/v3", nil).want(t, http.StatusNotFound, "MANIFEST_UNKNOWN")
	s.do("HEAD", "/v2/app/manifests/v3", nil).want(t, http.StatusNotFound, "")
	s.do("GET", "/v2/other/manifests/v1", nil).want(t, http.StatusNotFound, "MANIFEST_UNKNOWN")
	s.do("GET", "/v2/app/manifests/sha256:nothex", nil).want(t, http.StatusBadRequest, "DIGEST_INVALID")
	s.do("GET", "/v2/app/manifests/.bad", nil).want(t, http.StatusBadRequest, "MANIFEST_INVALID")

	// Deleting a tag leaves the manifest; deleting the manifest takes its tags.
	s.putManifest("app", "v1-again", ocispec.MediaTypeImageManifest, img.manifest).want(t, http.StatusCreated, "")
	s.do("DELETE", "/v2/app/manifests/v1", nil).want(t, http.StatusAccepted, "")
	s.do("GET", "/v2/app/manifests/v1", nil).want(t, http.StatusNotFound, "MANIFEST_UNKNOWN")
	s.do("GET", "/v2/app/manifests/"+img.digest.String(), nil).want(t, http.StatusOK, "")
	s.do("DELETE", "/v2/app/manifests/"+img.digest.String(), nil).want(t, http.StatusAccepted, "")
	s.do("GET", "/v2/app/manifests/v1-again", nil).want(t, http.StatusNotFound, "MANIFEST_UNKNOWN")
	s.do("GET", "/v2/app/manifests/"+img.digest.String(), nil).want(t, http.StatusNotFound, "MANIFEST_UNKNOWN")
	s.do("DELETE", "/v2/app/manifests/"+img.digest.String(), nil).want(t, http.StatusNotFound, "MANIFEST_UNKNOWN")
	s.do("DELETE", "/v2/nothere/manifests/v1", nil).want(t, http.StatusNotFound, "MANIFEST_UNKNOWN")
	s.do("POST", "/v2/app/manifests/v1", nil).want(t, http.StatusMethodNotAllowed, "UNSUPPORTED")
}

func TestManifestValidation(t *testing.T) {
	t.Parallel()
	_, s := newRegistry(t)
	img := s.pushImage("app", "1", nil)
	missingLayer := strings.Replace(string(img.manifest), img.layer.String(), digest.FromString("absent").String(), 1)
	foreign := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"c","digest":%q,"size":1},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":%q,"size":1,"urls":["https://example.com/l"]}]}`,
		ocispec.MediaTypeImageManifest, img.config, digest.FromString("far away"))
	for _, tc := range []struct {
		name, ct, body string
		status         int
		code           string
	}{
		{"not JSON", ocispec.MediaTypeImageManifest, `{"schemaVersion":`, 400, "MANIFEST_INVALID"},
		{"no media type", "", `{"schemaVersion":2}`, 400, "MANIFEST_INVALID"},
		{"media type differs", ocispec.MediaTypeImageIndex, string(img.manifest), 400, "MANIFEST_INVALID"},
		{"bad Content-Type", "a/b; =", string(img.manifest), 400, "MANIFEST_INVALID"},
		{"schema 1", ocispec.MediaTypeImageManifest, `{"schemaVersion":1,"config":{"digest":"` + img.config.String() + `","size":1}}`, 400, "MANIFEST_INVALID"},
		{"no config", ocispec.MediaTypeImageManifest, `{"schemaVersion":2,"layers":[]}`, 400, "MANIFEST_INVALID"},
		{"bad digest", ocispec.MediaTypeImageManifest, `{"schemaVersion":2,"config":{"digest":"sha256:x","size":1}}`, 400, "MANIFEST_INVALID"},
		{"negative size", ocispec.MediaTypeImageManifest, `{"schemaVersion":2,"config":{"digest":"` + img.config.String() + `","size":-1}}`, 400, "MANIFEST_INVALID"},
		{"missing layer", ocispec.MediaTypeImageManifest, missingLayer, 400, "MANIFEST_BLOB_UNKNOWN"},
		{"missing child", ocispec.MediaTypeImageIndex, `{"schemaVersion":2,"manifests":[{"mediaType":"` + ocispec.MediaTypeImageManifest + `","digest":"` + img.digest.String() + `","size":1}]}`, 400, "MANIFEST_BLOB_UNKNOWN"},
		{"index with layers", ocispec.MediaTypeImageIndex, `{"schemaVersion":2,"manifests":[],"layers":[{"digest":"` + img.layer.String() + `","size":1}]}`, 400, "MANIFEST_INVALID"},
		{"foreign layer", ocispec.MediaTypeImageManifest, foreign, 201, ""},
		{"media type from the body", "", string(img.manifest), 201, ""},
		{"any other JSON document", "application/vnd.example+json", `{"anything":[1,2]}`, 201, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := s.putManifest("app", "t", tc.ct, []byte(tc.body)).want(t, tc.status, tc.code)
			if tc.status != 201 {
				return
			}
			g := s.do("GET", "/v2/app/manifests/"+a.Header.Get("Docker-Content-Digest"), nil).want(t, 200, "")
			want := tc.ct
			if want == "" {
				want = ocispec.MediaTypeImageManifest
			}
			if got := g.Header.Get("Content-Type"); got != want || string(g.body) != tc.body {
				t.Errorf("GET: Content-Type %q, want %q; body equal %v", got, want, string(g.body) == tc.body)
			}
		})
	}
	// An index of a manifest the repository holds is fine.
	s.putManifest("app", "img", ocispec.MediaTypeImageManifest, img.manifest).want(t, 201, "")
	ix := mustJSON(t, ocispec.Index{Versioned: specsV2, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{descriptorOf(ocispec.MediaTypeImageManifest, img.manifest)}})
	s.putManifest("app", "ix", ocispec.MediaTypeImageIndex, ix).want(t, 201, "")
	// But not in another repository, which lacks its manifest.
	s.putManifest("other", "ix", ocispec.MediaTypeImageIndex, ix).want(t, 400, "MANIFEST_BLOB_UNKNOWN")
	s.do("GET", "/v2/other/tags/list", nil).want(t, 404, "NAME_UNKNOWN")
}

func TestManifestSizeLimit(t *testing.T) {
	t.Parallel()
	_, s := newRegistry(t, registrytest.WithMaxManifestSize(64))
	small := []byte(`{"a":1}`)
	s.putManifest("app", "small", "application/vnd.example+json", small).want(t, 201, "")
	big := []byte(`{"a":"` + strings.Repeat("x", 64) + `"}`)
	s.putManifest("app", "big", "application/vnd.example+json", big).want(t, http.StatusRequestEntityTooLarge, "MANIFEST_INVALID")

	// The default is 4 MiB.
	_, s = newRegistry(t)
	huge := []byte(`{"a":"` + strings.Repeat("x", registrytest.DefaultMaxManifestSize) + `"}`)
	s.putManifest("app", "huge", "application/vnd.example+json", huge).want(t, http.StatusRequestEntityTooLarge, "MANIFEST_INVALID")
}

func TestTagsPagination(t *testing.T) {
	t.Parallel()
	_, s := newRegistry(t)
	img := s.pushImage("app", "1", nil)
	all := []string{"1.0", "1.1", "2.0", "A", "a", "latest"}
	for _, tag := range all {
		s.putManifest("app", tag, ocispec.MediaTypeImageManifest, img.manifest).want(t, 201, "")
	}
	list := func(q string) ([]string, string) {
		t.Helper()
		a := s.do("GET", "/v2/app/tags/list"+q, nil).want(t, 200, "")
		var tl struct {
			Name string
			Tags []string
		}
		if err := json.Unmarshal(a.body, &tl); err != nil || tl.Name != "app" || tl.Tags == nil {
			t.Fatalf("tags/list%s: %s (%v)", q, a.body, err)
		}
		return tl.Tags, a.Header.Get("Link")
	}
	if got, link := list(""); !cmp.Equal(got, all) || link != "" {
		t.Errorf("all tags %q, Link %q", got, link)
	}
	// Walk with n=4 by the Link headers.
	var walked []string
	q := "?n=4"
	for i := 0; q != ""; i++ {
		got, link := list(q)
		walked = append(walked, got...)
		q = ""
		if link != "" {
			if !strings.HasPrefix(link, "</v2/app/tags/list?") || !strings.HasSuffix(link, `>; rel="next"`) {
				t.Fatalf("Link %q", link)
			}
			q = strings.TrimPrefix(strings.TrimSuffix(link, `>; rel="next"`), "</v2/app/tags/list")
		}
		if i > 3 {
			t.Fatal("pagination does not end")
		}
	}
	if !cmp.Equal(walked, all) {
		t.Errorf("walked %q, want %q", walked, all)
	}
	for q, want := range map[string][]string{
		"?n=0":              {},
		"?last=A":           {"a", "latest"},
		"?last=2.0&n=1":     {"A"},
		"?last=1.5":         {"2.0", "A", "a", "latest"},
		"?last=zzz":         {},
		"?n=6":              all,
		"?n=100&last=1.1":   {"2.0", "A", "a", "latest"},
		"?n=1&last=latest0": {},
	} {
		got, link := list(q)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("tags/list%s (-want +got):\n%s", q, diff)
		}
		if q == "?n=0" && link != "" {
			t.Errorf("n=0: Link %q", link)
		}
	}
	s.do("GET", "/v2/app/tags/list?n=-1", nil).want(t, 400, "UNSUPPORTED")
	s.do("GET", "/v2/app/tags/list?n=x", nil).want(t, 400, "UNSUPPORTED")
}

func TestCatalog(t *testing.T) {
	t.Parallel()
	_, s := newRegistry(t)
	for _, repo := range []string{"b", "a/x", "a", "c"} {
		s.pushBlob(repo, []byte(repo))
	}
	a := s.do("GET", "/v2/_catalog", nil).want(t, 200, "")
	var cl struct{ Repositories []string }
	json.Unmarshal(a.body, &cl)
	if want := []string{"a", "a/x", "b", "c"}; !cmp.Equal(cl.Repositories, want) {
		t.Errorf("catalog %q, want %q", cl.Repositories, want)
	}
	a = s.do("GET", "/v2/_catalog?n=2", nil).want(t, 200, "")
	json.Unmarshal(a.body, &cl)
	if want := []string{"a", "a/x"}; !cmp.Equal(cl.Repositories, want) || a.Header.Get("Link") != `</v2/_catalog?last=a%2Fx&n=2>; rel="next"` {
		t.Errorf("catalog?n=2: %q, Link %q", cl.Repositories, a.Header.Get("Link"))
	}
	a = s.do("GET", "/v2/_catalog?n=2&last=a%2Fx", nil).want(t, 200, "")
	json.Unmarshal(a.body, &cl)
	if want := []string{"b", "c"}; !cmp.Equal(cl.Repositories, want) || a.Header.Get("Link") != "" {
		t.Errorf("second page %q, Link %q", cl.Repositories, a.Header.Get("Link"))
	}
	// An emptied repository leaves the catalog.
	s.do("DELETE", "/v2/c/blobs/"+digest.FromString("c").String(), nil).want(t, 202, "")
	a = s.do("GET", "/v2/_catalog?last=b", nil).want(t, 200, "")
	json.Unmarshal(a.body, &cl)
	if len(cl.Repositories) != 0 {
		t.Errorf("after deleting c: %q", cl.Repositories)
	}
}

var specsV2 = specsVersioned()

func TestReferrers(t *testing.T) {
	t.Parallel()
	_, s := newRegistry(t)
	subject := s.pushImage("app", "subject", nil)
	subjectDesc := descriptorOf(ocispec.MediaTypeImageManifest, subject.manifest)
	sbom := s.pushImage("app", "sbom", map[string]any{"artifactType": "application/vnd.example.sbom", "subject": subjectDesc, "annotations": map[string]string{"k": "v"}})
	sig := s.pushImage("app", "sig", map[string]any{"subject": subjectDesc}) // artifactType from the config

	// Referrers may come before their subject.
	a := s.putManifest("app", sbom.digest.String(), ocispec.MediaTypeImageManifest, sbom.manifest).want(t, 201, "")
	if got := a.Header.Get("OCI-Subject"); got != subject.digest.String() {
		t.Errorf("OCI-Subject %q, want %s", got, subject.digest)
	}
	s.putManifest("app", sig.digest.String(), ocispec.MediaTypeImageManifest, sig.manifest).want(t, 201, "")
	ix := mustJSON(t, map[string]any{"schemaVersion": 2, "mediaType": ocispec.MediaTypeImageIndex, "manifests": []ocispec.Descriptor{}, "subject": subjectDesc})
	s.putManifest("app", "ix", ocispec.MediaTypeImageIndex, ix).want(t, 201, "")
	s.putManifest("app", "subject", ocispec.MediaTypeImageManifest, subject.manifest).want(t, 201, "")

	get := func(q string) (ocispec.Index, answer) {
		t.Helper()
		a := s.do("GET", "/v2/app/referrers/"+subject.digest.String()+q, nil).want(t, 200, "")
		var got ocispec.Index
		if err := json.Unmarshal(a.body, &got); err != nil || a.Header.Get("Content-Type") != ocispec.MediaTypeImageIndex {
			t.Fatalf("referrers: %s, %q (%v)", a.body, a.Header.Get("Content-Type"), err)
		}
		return got, a
	}
	got, a := get("")
	want := []ocispec.Descriptor{
		{MediaType: ocispec.MediaTypeImageManifest, Digest: sbom.digest, Size: int64(len(sbom.manifest)), ArtifactType: "application/vnd.example.sbom", Annotations: map[string]string{"k": "v"}},
		{MediaType: ocispec.MediaTypeImageManifest, Digest: sig.digest, Size: int64(len(sig.manifest)), ArtifactType: ocispec.MediaTypeImageConfig},
		{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(ix), Size: int64(len(ix))},
	}
	if diff := cmp.Diff(want, got.Manifests); diff != "" || got.SchemaVersion != 2 || a.Header.Get("OCI-Filters-Applied") != "" {
		t.Errorf("referrers (-want +got):\n%s", diff)
	}
	got, a = get("?artifactType=application/vnd.example.sbom")
	if diff := cmp.Diff(want[:1], got.Manifests); diff != "" || a.Header.Get("OCI-Filters-Applied") != "artifactType" {
		t.Errorf("filtered referrers (-want +got), OCI-Filters-Applied %q:\n%s", a.Header.Get("OCI-Filters-Applied"), diff)
	}
	// No referrers, an unknown repository: an empty index, never 404.
	for _, p := range []string{"/v2/app/referrers/" + sbom.digest.String(), "/v2/nothere/referrers/" + sbom.digest.String()} {
		a := s.do("GET", p, nil).want(t, 200, "")
		if !strings.Contains(string(a.body), `"manifests":[]`) {
			t.Errorf("GET %s: %s", p, a.body)
		}
	}
	s.do("GET", "/v2/app/referrers/notadigest", nil).want(t, 400, "DIGEST_INVALID")
	// A deleted referrer is no longer listed.
	s.do("DELETE", "/v2/app/manifests/"+sbom.digest.String(), nil).want(t, 202, "")
	if got, _ := get(""); len(got.Manifests) != 2 {
		t.Errorf("after deleting the sbom: %d referrers, want 2", len(got.Manifests))
	}
}
