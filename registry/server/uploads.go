package server

import (
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"

	"github.com/opencontainers/go-digest"

	"github.com/opendao/dao/registry/server/storage"
)

// serveStartUpload serves POST /v2/<name>/blobs/uploads/: a mount, a monolithic upload
// (?digest=), or a new session.
func (s *Server) serveStartUpload(w http.ResponseWriter, r *http.Request, repo string) error {
	if r.Method != http.MethodPost {
		return methodNotAllowed(r, "POST")
	}
	q := r.URL.Query()
	if mount := q.Get("mount"); mount != "" {
		return s.mount(w, r, repo, mount, q.Get("from"))
	}
	if err := s.authorize(r, repo, ActionPush); err != nil {
		return err
	}
	var dgst digest.Digest
	if ds := q.Get("digest"); ds != "" {
		var err error
		if dgst, err = parseDigest(ds); err != nil {
			return err
		}
	}
	up, err := s.newUpload(r.Context(), repo)
	if err != nil {
		return err
	}
	if dgst == "" {
		return uploadAccepted(w, repo, up, http.StatusAccepted)
	}
	if err := s.appendChunk(r, repo, up); err != nil {
		_ = up.Cancel(r.Context())
		return err
	}
	return s.commit(w, r, repo, up, dgst)
}

// mount serves POST ?mount=<digest>[&from=<repo>]: the blob is linked when the source has
// it (or, with automatic mounts, when it is stored at all); else a session opens, as the
// spec asks of a registry that cannot mount.
func (s *Server) mount(w http.ResponseWriter, r *http.Request, repo, mount, from string) error {
	access := []Access{{Type: "repository", Name: repo, Actions: []string{ActionPush}}}
	if from != "" {
		if err := ValidateRepository(from); err != nil {
			return newError(http.StatusBadRequest, codeNameInvalid, "from: %v", err)
		}
		access = append(access, Access{Type: "repository", Name: from, Actions: []string{ActionPull}})
	}
	if err := s.checkAccess(r, access); err != nil {
		return err
	}
	dgst, err := parseDigest(mount)
	if err != nil {
		return err
	}
	var found bool
	switch {
	case from != "":
		found, err = s.store.BlobLinked(r.Context(), from, dgst)
	case s.automaticMount:
		_, err = s.store.StatBlob(r.Context(), dgst)
		found = err == nil
		if isNotFound(err) {
			err = nil
		}
	}
	if err != nil {
		return err
	}
	if found {
		size, err := s.store.StatBlob(r.Context(), dgst)
		if err != nil && !isNotFound(err) {
			return err
		}
		if err == nil {
			if err := s.admit(r, Usage{Repository: repo, Kind: "blob", Digest: dgst, Size: size}); err != nil {
				return err
			}
			err = s.store.LinkBlob(r.Context(), repo, dgst)
			if err == nil {
				s.emit(r, Event{Action: EventPush, Kind: "blob", Repository: repo, Digest: dgst, Size: size})
				return blobCreated(w, repo, dgst)
			}
			if !isNotFound(err) {
				return err
			}
		}
		// Deleted meanwhile: fall back to an upload.
	}
	up, err := s.newUpload(r.Context(), repo)
	if err != nil {
		return err
	}
	return uploadAccepted(w, repo, up, http.StatusAccepted)
}

// serveUpload serves GET, PATCH, PUT and DELETE of /v2/<name>/blobs/uploads/<id>.
func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request, repo, id string) error {
	switch r.Method {
	case http.MethodGet, http.MethodPatch, http.MethodPut, http.MethodDelete:
	default:
		return methodNotAllowed(r, "GET, PATCH, PUT, DELETE")
	}
	if err := s.authorize(r, repo, ActionPush); err != nil {
		return err
	}
	up, err := s.store.Upload(r.Context(), repo, id)
	if err != nil {
		return err
	}
	switch r.Method {
	case http.MethodGet:
		return uploadAccepted(w, repo, up, http.StatusNoContent)
	case http.MethodDelete:
		if err := up.Cancel(r.Context()); err != nil {
			return err
		}
		s.ended(id)
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusNoContent)
		return nil
	case http.MethodPatch:
		if err := s.appendChunk(r, repo, up); err != nil {
			return err
		}
		return uploadAccepted(w, repo, up, http.StatusAccepted)
	}
	// PUT ?digest=, with a last chunk or none.
	dgst, err := parseDigest(r.URL.Query().Get("digest"))
	if err != nil {
		return err
	}
	if err := s.appendChunk(r, repo, up); err != nil {
		return err
	}
	return s.commit(w, r, repo, up, dgst)
}

// contentRangeRE is a chunk's Content-Range: inclusive bounds, "bytes " tolerated.
var contentRangeRE = regexp.MustCompile(`^(?:bytes )?([0-9]+)-([0-9]+)$`)

// appendChunk appends the request's body to up; with a Content-Range, it must start where
// the upload ends (416 otherwise, with the upload's Range) and be as long as it says. An
// upload that would grow past the largest blob is cancelled (413).
func (s *Server) appendChunk(r *http.Request, repo string, up storage.Upload) error {
	offset := up.Size()
	body := io.Reader(r.Body)
	want := int64(-1)
	if cr := r.Header.Get("Content-Range"); cr != "" {
		m := contentRangeRE.FindStringSubmatch(cr)
		if m == nil {
			return newError(http.StatusBadRequest, codeBlobUploadInvalid, "invalid Content-Range %q", cr)
		}
		start, err1 := strconv.ParseInt(m[1], 10, 64)
		end, err2 := strconv.ParseInt(m[2], 10, 64)
		if err1 != nil || err2 != nil || end < start {
			return newError(http.StatusBadRequest, codeBlobUploadInvalid, "invalid Content-Range %q", cr)
		}
		if start != offset {
			return outOfOrder(repo, up, cr)
		}
		want = end - start + 1
		if r.ContentLength >= 0 && r.ContentLength != want {
			return newError(http.StatusBadRequest, codeSizeInvalid, "Content-Range %q is %d bytes, Content-Length %d", cr, want, r.ContentLength)
		}
		body = io.LimitReader(r.Body, want)
	}
	var limited *io.LimitedReader
	if s.maxBlobSize > 0 {
		if want >= 0 && offset+want > s.maxBlobSize || r.ContentLength > 0 && offset+r.ContentLength > s.maxBlobSize {
			return s.tooLarge(r, up)
		}
		limited = &io.LimitedReader{R: body, N: s.maxBlobSize - offset + 1}
		body = limited
	}
	n, err := up.Append(r.Context(), offset, body)
	if limited != nil && limited.N == 0 {
		return s.tooLarge(r, up)
	}
	if errors.Is(err, storage.ErrRangeInvalid) {
		return outOfOrder(repo, up, r.Header.Get("Content-Range"))
	}
	if err != nil {
		return uploadError(repo, up, newError(http.StatusBadRequest, codeBlobUploadInvalid, "chunk cut off after %d bytes: %v", n, err))
	}
	if want >= 0 && n != want {
		return uploadError(repo, up, newError(http.StatusBadRequest, codeSizeInvalid, "chunk of %d bytes, its Content-Range says %d", n, want))
	}
	return nil
}

// tooLarge cancels an upload that would grow past the largest blob.
func (s *Server) tooLarge(r *http.Request, up storage.Upload) error {
	_ = up.Cancel(r.Context())
	return newError(http.StatusRequestEntityTooLarge, codeSizeInvalid, "a blob may have %d bytes at most", s.maxBlobSize)
}

// outOfOrder is the 416 of a chunk that does not start where the upload ends; its headers
// tell the client where to resume.
func outOfOrder(repo string, up storage.Upload, cr string) error {
	return uploadError(repo, up, newError(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid,
		"chunk %q does not start at %d, where the upload ends", cr, up.Size()))
}

// uploadError adds the session's Location and Range to an error answer.
func uploadError(repo string, up storage.Upload, e *apiError) *apiError {
	return e.withHeader("Location", uploadLocation(repo, up.ID())).
		withHeader("Range", uploadRange(up.Size())).
		withHeader("Docker-Upload-UUID", up.ID())
}

// commit ends an upload whose content is complete: the quota, then the digest verified and
// the blob stored, then linked.
func (s *Server) commit(w http.ResponseWriter, r *http.Request, repo string, up storage.Upload, dgst digest.Digest) error {
	size := up.Size()
	if err := s.admit(r, Usage{Repository: repo, Kind: "blob", Digest: dgst, Size: size}); err != nil {
		_ = up.Cancel(r.Context())
		return err
	}
	if err := up.Commit(r.Context(), dgst); err != nil {
		if errors.Is(err, storage.ErrDigestInvalid) {
			_ = up.Cancel(r.Context())
		}
		return err
	}
	s.ended(up.ID())
	if err := s.store.LinkBlob(r.Context(), repo, dgst); err != nil {
		return err
	}
	s.emit(r, Event{Action: EventPush, Kind: "blob", Repository: repo, Digest: dgst, Size: size})
	return blobCreated(w, repo, dgst)
}

func blobCreated(w http.ResponseWriter, repo string, dgst digest.Digest) error {
	h := w.Header()
	h.Set("Location", blobLocation(repo, dgst))
	h.Set("Docker-Content-Digest", dgst.String())
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

func uploadLocation(repo, id string) string { return "/v2/" + repo + "/blobs/uploads/" + id }

// uploadRange is the Range header of a session of size bytes: "0-<last byte>", and "0-0"
// for an empty one, as Distribution answers.
func uploadRange(size int64) string { return "0-" + strconv.FormatInt(max(size-1, 0), 10) }

// uploadAccepted answers the state of a session.
func uploadAccepted(w http.ResponseWriter, repo string, up storage.Upload, status int) error {
	h := w.Header()
	h.Set("Location", uploadLocation(repo, up.ID()))
	h.Set("Range", uploadRange(up.Size()))
	h.Set("Docker-Upload-UUID", up.ID())
	h.Set("Content-Length", "0")
	w.WriteHeader(status)
	return nil
}
