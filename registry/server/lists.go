package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// page applies the n and last parameters of a list to names (sorted): the names after
// last, at most n of them. more tells whether names were left off.
func page(r *http.Request, names []string) (out []string, n int, more bool, err error) {
	q := r.URL.Query()
	n = -1
	if ns := q.Get("n"); ns != "" {
		v, perr := strconv.Atoi(ns)
		if perr != nil || v < 0 {
			return nil, 0, false, newError(http.StatusBadRequest, codeUnsupported, "invalid n %q", ns)
		}
		n = v
	}
	out = names
	if last := q.Get("last"); last != "" {
		i := 0
		for i < len(out) && out[i] <= last {
			i++
		}
		out = out[i:]
	}
	if n >= 0 && len(out) > n {
		out, more = out[:n], true
	}
	if out == nil {
		out = []string{}
	}
	return out, n, more, nil
}

// linkNext sets the Link header to the next page, after the last of names.
func linkNext(w http.ResponseWriter, path string, names []string, n int) {
	if len(names) == 0 {
		return
	}
	v := url.Values{"last": {names[len(names)-1]}, "n": {strconv.Itoa(n)}}
	w.Header().Set("Link", "<"+path+"?"+v.Encode()+`>; rel="next"`)
}

func writeJSON(w http.ResponseWriter, r *http.Request, contentType string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
	return nil
}

// serveTags serves GET /v2/<name>/tags/list.
func (s *Server) serveTags(w http.ResponseWriter, r *http.Request, repo string) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return methodNotAllowed(r, "GET, HEAD")
	}
	if err := s.authorize(r, repo, ActionPull); err != nil {
		return err
	}
	tags, err := s.store.Tags(r.Context(), repo)
	if err != nil {
		return err
	}
	out, n, more, err := page(r, tags)
	if err != nil {
		return err
	}
	if more {
		linkNext(w, "/v2/"+repo+"/tags/list", out, n)
	}
	return writeJSON(w, r, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{repo, out})
}

// serveCatalog serves GET /v2/_catalog.
func (s *Server) serveCatalog(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return methodNotAllowed(r, "GET, HEAD")
	}
	if err := s.checkAccess(r, []Access{{Type: "registry", Name: "catalog", Actions: []string{ActionCatalog}}}); err != nil {
		return err
	}
	repos, err := s.store.Repositories(r.Context())
	if err != nil {
		return err
	}
	if s.catalogFilter != nil {
		kept := repos[:0:0]
		for _, repo := range repos {
			if s.catalogFilter(r, repo) {
				kept = append(kept, repo)
			}
		}
		repos = kept
	}
	out, n, more, err := page(r, repos)
	if err != nil {
		return err
	}
	if more {
		linkNext(w, "/v2/_catalog", out, n)
	}
	return writeJSON(w, r, "application/json", struct {
		Repositories []string `json:"repositories"`
	}{out})
}

// serveReferrers serves GET /v2/<name>/referrers/<digest>, with its artifactType filter.
func (s *Server) serveReferrers(w http.ResponseWriter, r *http.Request, repo, ref string) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return methodNotAllowed(r, "GET, HEAD")
	}
	if err := s.authorize(r, repo, ActionPull); err != nil {
		return err
	}
	subject, err := parseDigest(ref)
	if err != nil {
		return err
	}
	list, err := s.store.Referrers(r.Context(), repo, subject)
	if err != nil && !isNotFound(err) {
		return err
	}
	if at := r.URL.Query().Get("artifactType"); at != "" {
		kept := []ocispec.Descriptor{}
		for _, d := range list {
			if d.ArtifactType == at {
				kept = append(kept, d)
			}
		}
		list = kept
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	if list == nil {
		list = []ocispec.Descriptor{}
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: list}
	idx.SchemaVersion = 2
	return writeJSON(w, r, ocispec.MediaTypeImageIndex, idx)
}
