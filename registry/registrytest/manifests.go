package registrytest

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The manifest media types whose references the registry checks.
const (
	mediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// manifest is a manifest a repository holds, as it was pushed.
type manifest struct {
	mediaType string
	data      []byte
	digest    digest.Digest
	seq       uint64
	// subject, artifactType and annotations are what the referrers API lists.
	subject      digest.Digest
	artifactType string
	annotations  map[string]string
}

// manifestDoc is what the registry reads of a manifest: the fields of an image manifest and
// of an index that it checks or lists.
type manifestDoc struct {
	SchemaVersion int                  `json:"schemaVersion"`
	MediaType     string               `json:"mediaType"`
	ArtifactType  string               `json:"artifactType"`
	Config        *ocispec.Descriptor  `json:"config"`
	Layers        []ocispec.Descriptor `json:"layers"`
	Manifests     []ocispec.Descriptor `json:"manifests"`
	Subject       *ocispec.Descriptor  `json:"subject"`
	Annotations   map[string]string    `json:"annotations"`
}

// reference is the <tag-or-digest> of a manifest URL.
type reference struct {
	tag    string
	digest digest.Digest
}

// parseReference parses ref as a digest (it has a colon) or a tag.
func parseReference(ref string) (reference, error) {
	if strings.Contains(ref, ":") {
		d, err := parseDigest(ref)
		return reference{digest: d}, err
	}
	if !ValidTag(ref) {
		return reference{}, newError(http.StatusBadRequest, codeManifestInvalid, "invalid tag %q", ref)
	}
	return reference{tag: ref}, nil
}

// lookup finds the manifest ref of repository name. reg.mu must be held.
func (reg *Registry) lookup(name string, ref reference) (*manifest, error) {
	unknown := newError(http.StatusNotFound, codeManifestUnknown, "manifest %s%s unknown to repository %s", ref.tag, ref.digest, name)
	rp := reg.repo(name, false)
	if rp == nil {
		return nil, unknown
	}
	d := ref.digest
	if ref.tag != "" {
		var ok bool
		if d, ok = rp.tags[ref.tag]; !ok {
			return nil, unknown
		}
	}
	m := rp.manifests[d]
	if m == nil {
		return nil, unknown
	}
	return m, nil
}

func (reg *Registry) getManifest(w http.ResponseWriter, r *http.Request, name, refs string) error {
	ref, err := parseReference(refs)
	if err != nil {
		return err
	}
	reg.mu.Lock()
	m, err := reg.lookup(name, ref)
	reg.mu.Unlock()
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", m.mediaType)
	h.Set("Docker-Content-Digest", m.digest.String())
	h.Set("ETag", `"`+m.digest.String()+`"`)
	h.Set("Content-Length", strconv.Itoa(len(m.data)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(m.data)
	}
	return nil
}

// parseManifest checks data as a manifest pushed with Content-Type ct, and returns it as the
// registry keeps it; it does not look at the repository. It is what FuzzPutManifest runs.
func parseManifest(ct string, data []byte) (*manifest, *manifestDoc, error) {
	invalid := func(format string, args ...any) error {
		return newError(http.StatusBadRequest, codeManifestInvalid, format, args...)
	}
	mt := ""
	if ct != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(ct); err != nil {
			return nil, nil, invalid("invalid Content-Type %q: %v", ct, err)
		}
	}
	var doc manifestDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, invalid("manifest is not JSON: %v", err)
	}
	switch {
	case mt == "" && doc.MediaType == "":
		return nil, nil, invalid("manifest has neither a Content-Type nor a mediaType")
	case mt == "":
		mt = doc.MediaType
	case doc.MediaType != "" && doc.MediaType != mt:
		return nil, nil, invalid("manifest's mediaType %q is not its Content-Type %q", doc.MediaType, mt)
	}
	descs := append(append([]ocispec.Descriptor(nil), doc.Layers...), doc.Manifests...)
	if doc.Config != nil {
		descs = append(descs, *doc.Config)
	}
	if doc.Subject != nil {
		descs = append(descs, *doc.Subject)
	}
	for _, d := range descs {
		if err := d.Digest.Validate(); err != nil {
			return nil, nil, invalid("descriptor digest %q: %v", d.Digest, err)
		}
		if d.Size < 0 {
			return nil, nil, invalid("descriptor %s has size %d", d.Digest, d.Size)
		}
	}
	switch mt {
	case ocispec.MediaTypeImageManifest, mediaTypeDockerManifest:
		if doc.SchemaVersion != 2 {
			return nil, nil, invalid("schemaVersion %d, want 2", doc.SchemaVersion)
		}
		if doc.Config == nil {
			return nil, nil, invalid("image manifest has no config")
		}
		if len(doc.Manifests) > 0 {
			return nil, nil, invalid("image manifest has manifests")
		}
	case ocispec.MediaTypeImageIndex, mediaTypeDockerList:
		if doc.SchemaVersion != 2 {
			return nil, nil, invalid("schemaVersion %d, want 2", doc.SchemaVersion)
		}
		if doc.Config != nil || len(doc.Layers) > 0 {
			return nil, nil, invalid("index has a config or layers")
		}
	}
	m := &manifest{mediaType: mt, data: data, artifactType: doc.ArtifactType, annotations: doc.Annotations}
	if doc.Subject != nil {
		m.subject = doc.Subject.Digest
	}
	if m.artifactType == "" && doc.Config != nil && (mt == ocispec.MediaTypeImageManifest || mt == mediaTypeDockerManifest) {
		m.artifactType = doc.Config.MediaType
	}
	return m, &doc, nil
}

// missing lists what an image manifest or index refers to that repository rp lacks: blobs
// for an image manifest, manifests for an index. A subject need not exist. reg.mu must be
// held.
func (reg *Registry) missing(rp *repository, mt string, doc *manifestDoc) []string {
	var out []string
	switch mt {
	case ocispec.MediaTypeImageManifest, mediaTypeDockerManifest:
		for _, d := range append([]ocispec.Descriptor{*doc.Config}, doc.Layers...) {
			if len(d.URLs) > 0 {
				continue // a foreign layer lives elsewhere
			}
			if _, ok := rp.blobs[d.Digest]; !ok {
				out = append(out, d.Digest.String())
			}
		}
	case ocispec.MediaTypeImageIndex, mediaTypeDockerList:
		for _, d := range doc.Manifests {
			if rp.manifests[d.Digest] == nil {
				out = append(out, d.Digest.String())
			}
		}
	}
	return out
}

// putManifest serves PUT of a manifest by tag or by digest (with ?tag= for more tags).
func (reg *Registry) putManifest(w http.ResponseWriter, r *http.Request, name, refs string) error {
	ref, err := parseReference(refs)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	extra := q["tag"]
	if len(extra) > 0 && ref.digest == "" {
		return newError(http.StatusBadRequest, codeManifestInvalid, "tag parameters with a push by tag")
	}
	if len(extra) > 16 {
		return newError(http.StatusRequestURITooLong, codeManifestInvalid, "more than 16 tags")
	}
	for _, t := range extra {
		if !ValidTag(t) {
			return newError(http.StatusBadRequest, codeManifestInvalid, "invalid tag %q", t)
		}
	}
	data, err := readBody(r, reg.o.maxManifest, codeManifestInvalid)
	if err != nil {
		return err
	}
	m, doc, err := parseManifest(r.Header.Get("Content-Type"), data)
	if err != nil {
		return err
	}
	m.digest = digest.FromBytes(data)
	if ref.digest != "" {
		if err := verify(ref.digest, data); err != nil {
			return err
		}
		m.digest = ref.digest
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	rp := reg.repo(name, false)
	if rp == nil {
		rp = &repository{blobs: map[digest.Digest]struct{}{}, manifests: map[digest.Digest]*manifest{}, tags: map[string]digest.Digest{}}
	}
	if miss := reg.missing(rp, m.mediaType, doc); len(miss) > 0 {
		return newError(http.StatusBadRequest, codeManifestBlobUnknown, "manifest refers to what repository %s does not hold: %s", name, strings.Join(miss, ", "))
	}
	reg.repos[name] = rp
	if old := rp.manifests[m.digest]; old != nil {
		m.seq = old.seq
	} else {
		reg.seq++
		m.seq = reg.seq
	}
	rp.manifests[m.digest] = m
	reg.storeBlob(name, m.digest, data)
	if ref.tag != "" {
		rp.tags[ref.tag] = m.digest
	}
	for _, t := range extra {
		rp.tags[t] = m.digest
	}
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/manifests/"+m.digest.String())
	h.Set("Docker-Content-Digest", m.digest.String())
	if m.subject != "" {
		h.Set("OCI-Subject", m.subject.String())
	}
	if len(extra) > 0 {
		h.Set("OCI-Tag", strings.Join(extra, ", "))
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// deleteManifest deletes a tag, or a manifest and every tag of it.
func (reg *Registry) deleteManifest(w http.ResponseWriter, name, refs string) error {
	ref, err := parseReference(refs)
	if err != nil {
		return err
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if _, err := reg.lookup(name, ref); err != nil {
		return err
	}
	rp := reg.repos[name]
	if ref.tag != "" {
		delete(rp.tags, ref.tag)
	} else {
		delete(rp.manifests, ref.digest)
		for t, d := range rp.tags {
			if d == ref.digest {
				delete(rp.tags, t)
			}
		}
		delete(rp.blobs, ref.digest)
		reg.collect(ref.digest)
	}
	reg.dropIfEmpty(name)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// page returns the part of sorted list that n and last of q ask for, and the Link to the
// next page, if any, for the API at path.
func page(list []string, q url.Values, path string) ([]string, string, error) {
	if last := q.Get("last"); last != "" {
		i := sort.SearchStrings(list, last)
		if i < len(list) && list[i] == last {
			i++
		}
		list = list[i:]
	}
	ns := q.Get("n")
	if ns == "" {
		return list, "", nil
	}
	n, err := strconv.Atoi(ns)
	if err != nil || n < 0 {
		return nil, "", newError(http.StatusBadRequest, codeUnsupported, "invalid n %q", ns)
	}
	if n >= len(list) {
		return list, "", nil
	}
	list = list[:n]
	if n == 0 {
		return list, "", nil
	}
	next := url.Values{"n": {ns}, "last": {list[n-1]}}
	return list, fmt.Sprintf(`<%s?%s>; rel="next"`, path, next.Encode()), nil
}

// writeJSON answers v as JSON of media type ct.
func writeJSON(w http.ResponseWriter, ct string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
	return nil
}

// tagList is the answer of tags/list.
type tagList struct {
	Name string   `json:"name"`
	Tags []string `json:"tags"`
}

func (reg *Registry) tags(w http.ResponseWriter, r *http.Request, name string) error {
	reg.mu.Lock()
	rp := reg.repo(name, false)
	var all []string
	if rp != nil {
		for t := range rp.tags {
			all = append(all, t)
		}
	}
	reg.mu.Unlock()
	if rp == nil {
		return newError(http.StatusNotFound, codeNameUnknown, "repository %s unknown", name)
	}
	sort.Strings(all)
	list, link, err := page(all, r.URL.Query(), "/v2/"+name+"/tags/list")
	if err != nil {
		return err
	}
	if link != "" {
		w.Header().Set("Link", link)
	}
	return writeJSON(w, "application/json", tagList{Name: name, Tags: append([]string{}, list...)})
}

// catalogList is the answer of _catalog.
type catalogList struct {
	Repositories []string `json:"repositories"`
}

func (reg *Registry) catalog(w http.ResponseWriter, r *http.Request) error {
	reg.mu.Lock()
	var all []string
	for name := range reg.repos {
		all = append(all, name)
	}
	reg.mu.Unlock()
	sort.Strings(all)
	list, link, err := page(all, r.URL.Query(), "/v2/_catalog")
	if err != nil {
		return err
	}
	if link != "" {
		w.Header().Set("Link", link)
	}
	return writeJSON(w, "application/json", catalogList{Repositories: append([]string{}, list...)})
}

// referrers serves the referrers API: the manifests of repository name whose subject is
// the digest, in the order they were pushed, filtered by artifactType if asked.
func (reg *Registry) referrers(w http.ResponseWriter, r *http.Request, name, ds string) error {
	d, err := parseDigest(ds)
	if err != nil {
		return err
	}
	filter := r.URL.Query().Get("artifactType")
	var found []*manifest
	reg.mu.Lock()
	if rp := reg.repo(name, false); rp != nil {
		for _, m := range rp.manifests {
			if m.subject == d && (filter == "" || m.artifactType == filter) {
				found = append(found, m)
			}
		}
	}
	reg.mu.Unlock()
	sort.Slice(found, func(i, j int) bool { return found[i].seq < found[j].seq })
	ix := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	ix.SchemaVersion = 2
	for _, m := range found {
		ix.Manifests = append(ix.Manifests, ocispec.Descriptor{
			MediaType: m.mediaType, Digest: m.digest, Size: int64(len(m.data)),
			ArtifactType: m.artifactType, Annotations: m.annotations,
		})
	}
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	return writeJSON(w, ocispec.MediaTypeImageIndex, ix)
}
