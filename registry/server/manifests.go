package server

import (
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/server/storage"
)

// serveManifest serves GET, HEAD, PUT and DELETE of /v2/<name>/manifests/<reference>.
func (s *Server) serveManifest(w http.ResponseWriter, r *http.Request, repo, ref string) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if err := s.authorize(r, repo, ActionPull); err != nil {
			return err
		}
		return s.getManifest(w, r, repo, ref)
	case http.MethodPut:
		if err := s.authorize(r, repo, ActionPush); err != nil {
			return err
		}
		return s.putManifest(w, r, repo, ref)
	case http.MethodDelete:
		if err := s.authorize(r, repo, ActionDelete); err != nil {
			return err
		}
		return s.deleteManifest(w, r, repo, ref)
	}
	return methodNotAllowed(r, "GET, HEAD, PUT, DELETE")
}

// parseReference reads a manifest reference: a digest (it has a ":") or a tag.
func parseReference(ref string) (tag string, dgst digest.Digest, err error) {
	if strings.Contains(ref, ":") {
		dgst, err = parseDigest(ref)
		return "", dgst, err
	}
	if !tagRE.MatchString(ref) {
		return "", "", newError(http.StatusBadRequest, codeManifestInvalid, "invalid tag %q", ref)
	}
	return ref, "", nil
}

func (s *Server) getManifest(w http.ResponseWriter, r *http.Request, repo, ref string) error {
	tag, dgst, err := parseReference(ref)
	if err != nil {
		return err
	}
	if s.mirror != nil && s.mirror.covers(repo) {
		if tag != "" {
			err = s.mirrorTag(r.Context(), repo, tag)
		} else {
			err = s.mirrorManifestDigest(r.Context(), repo, dgst)
		}
		if err != nil {
			return err
		}
	}
	if tag != "" {
		if dgst, err = s.store.ResolveTag(r.Context(), repo, tag); err != nil {
			return err
		}
	}
	m, err := s.store.Manifest(r.Context(), repo, dgst)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", m.Descriptor.MediaType)
	h.Set("Content-Length", strconv.Itoa(len(m.Raw)))
	h.Set("Docker-Content-Digest", dgst.String())
	h.Set("ETag", `"`+dgst.String()+`"`)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	w.Write(m.Raw)
	s.emit(r, Event{Action: EventPull, Kind: "manifest", Repository: repo, Digest: dgst, MediaType: m.Descriptor.MediaType, Size: int64(len(m.Raw)), Tag: tag})
	return nil
}

// foreignLayer reports whether a layer's media type says it need not be pushed: the
// nondistributable layers of OCI and Docker's foreign layers.
func foreignLayer(mediaType string) bool {
	return strings.Contains(mediaType, ".nondistributable.") || strings.Contains(mediaType, ".foreign.")
}

func (s *Server) putManifest(w http.ResponseWriter, r *http.Request, repo, ref string) error {
	tag, refDigest, err := parseReference(ref)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	tags := q["tag"]
	for _, t := range tags {
		if !tagRE.MatchString(t) {
			return newError(http.StatusBadRequest, codeManifestInvalid, "invalid tag %q", t)
		}
	}
	if tag != "" {
		tags = append([]string{tag}, tags...)
	}
	if r.ContentLength > s.maxManifestSize {
		return newError(http.StatusRequestEntityTooLarge, codeManifestInvalid, "manifest of %d bytes, more than the %d allowed", r.ContentLength, s.maxManifestSize)
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, s.maxManifestSize+1))
	if err != nil {
		return newError(http.StatusBadRequest, codeManifestInvalid, "reading the manifest: %v", err)
	}
	if int64(len(raw)) > s.maxManifestSize {
		return newError(http.StatusRequestEntityTooLarge, codeManifestInvalid, "manifest of more than the %d bytes allowed", s.maxManifestSize)
	}
	alg := digest.Canonical
	if refDigest != "" {
		alg = refDigest.Algorithm()
	}
	dgst := alg.FromBytes(raw)
	if refDigest != "" && dgst != refDigest {
		return newError(http.StatusBadRequest, codeDigestInvalid, "the manifest has digest %s, not %s", dgst, refDigest)
	}
	// JSON of schema version 2, a media type of an OCI or Docker schema 2 manifest or index
	// that agrees with the document, well-formed descriptors; the media type it returns is
	// the one the manifest is stored and served with.
	m, err := oci.DecodeManifest(r.Header.Get("Content-Type"), raw)
	if err != nil {
		return newError(http.StatusBadRequest, codeManifestInvalid, "%v", err)
	}
	desc := ocispec.Descriptor{MediaType: m.Descriptor.MediaType, Digest: dgst, Size: int64(len(raw))}
	if s.fence != nil {
		// From the check of the references to the tags: see package gc.
		leave := s.fence.Enter(repo)
		defer leave()
	}
	if err := s.checkReferences(r, repo, m); err != nil {
		return err
	}
	if err := s.admit(r, Usage{Repository: repo, Kind: "manifest", Digest: dgst, Size: desc.Size}); err != nil {
		return err
	}
	sm := storage.Manifest{Descriptor: desc, Raw: raw}
	if subj := m.Subject(); subj != nil {
		sm.Subject = subj.Digest
		sm.Referrer = m.Referrer(desc)
		if _, err := parseDigest(subj.Digest.String()); err != nil {
			return newError(http.StatusBadRequest, codeManifestInvalid, "subject: %v", err)
		}
	}
	if err := s.store.PutManifest(r.Context(), repo, sm); err != nil {
		return err
	}
	for _, t := range tags {
		if err := s.store.Tag(r.Context(), repo, t, dgst); err != nil {
			return err
		}
	}
	for _, t := range tags {
		s.emit(r, Event{Action: EventPush, Kind: "manifest", Repository: repo, Digest: dgst, MediaType: desc.MediaType, Size: desc.Size, Tag: t})
	}
	if len(tags) == 0 {
		s.emit(r, Event{Action: EventPush, Kind: "manifest", Repository: repo, Digest: dgst, MediaType: desc.MediaType, Size: desc.Size})
	}
	h := w.Header()
	h.Set("Location", "/v2/"+repo+"/manifests/"+dgst.String())
	h.Set("Docker-Content-Digest", dgst.String())
	if sm.Subject != "" {
		h.Set("OCI-Subject", sm.Subject.String())
	}
	if refDigest != "" {
		for _, t := range q["tag"] {
			h.Add("OCI-Tag", t)
		}
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// checkReferences refuses a manifest that refers to what the repository lacks: for an
// image its config and its layers (but nondistributable ones), with their sizes, for an
// index its manifests. A subject need not exist.
func (s *Server) checkReferences(r *http.Request, repo string, m *oci.Manifest) error {
	if s.sparse {
		return nil
	}
	ctx := r.Context()
	var blobs []ocispec.Descriptor
	switch {
	case m.Image != nil:
		blobs = append(blobs, m.Image.Config)
		for _, l := range m.Image.Layers {
			if !foreignLayer(l.MediaType) {
				blobs = append(blobs, l)
			}
		}
	case m.Index != nil:
		for _, c := range m.Index.Manifests {
			if _, err := parseDigest(c.Digest.String()); err != nil {
				return newError(http.StatusBadRequest, codeManifestInvalid, "manifest %s: %v", c.Digest, err)
			}
			ok, err := s.store.ManifestLinked(ctx, repo, c.Digest)
			if err != nil {
				return err
			}
			if !ok {
				return newError(http.StatusBadRequest, codeManifestBlobUnknown, "the index refers to manifest %s, which is not in %s", c.Digest, repo)
			}
		}
		return nil
	}
	for _, b := range blobs {
		if _, err := parseDigest(b.Digest.String()); err != nil {
			return newError(http.StatusBadRequest, codeManifestInvalid, "blob %s: %v", b.Digest, err)
		}
		ok, err := s.store.BlobLinked(ctx, repo, b.Digest)
		if err != nil {
			return err
		}
		if !ok {
			return newError(http.StatusBadRequest, codeManifestBlobUnknown, "the manifest refers to blob %s, which is not in %s", b.Digest, repo)
		}
		size, err := s.store.StatBlob(ctx, b.Digest)
		if err != nil {
			if isNotFound(err) {
				return newError(http.StatusBadRequest, codeManifestBlobUnknown, "the manifest refers to blob %s, which is not in %s", b.Digest, repo)
			}
			return err
		}
		if size != b.Size {
			return newError(http.StatusBadRequest, codeManifestInvalid, "blob %s has %d bytes, the manifest says %d", b.Digest, size, b.Size)
		}
	}
	return nil
}

func (s *Server) deleteManifest(w http.ResponseWriter, r *http.Request, repo, ref string) error {
	tag, dgst, err := parseReference(ref)
	if err != nil {
		return err
	}
	if tag != "" {
		d, err := s.store.ResolveTag(r.Context(), repo, tag)
		if err != nil {
			return err
		}
		if err := s.store.Untag(r.Context(), repo, tag); err != nil {
			return err
		}
		s.emit(r, Event{Action: EventDelete, Kind: "tag", Repository: repo, Digest: d, Tag: tag})
	} else {
		if err := s.store.DeleteManifest(r.Context(), repo, dgst); err != nil {
			return err
		}
		s.emit(r, Event{Action: EventDelete, Kind: "manifest", Repository: repo, Digest: dgst})
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}
