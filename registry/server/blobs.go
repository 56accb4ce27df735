package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/opendao/dao/registry/server/storage"
)

// serveBlob serves GET, HEAD and DELETE of /v2/<name>/blobs/<digest>.
func (s *Server) serveBlob(w http.ResponseWriter, r *http.Request, repo, ref string) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if err := s.authorize(r, repo, ActionPull); err != nil {
			return err
		}
	case http.MethodDelete:
		if err := s.authorize(r, repo, ActionDelete); err != nil {
			return err
		}
	default:
		return methodNotAllowed(r, "GET, HEAD, DELETE")
	}
	dgst, err := parseDigest(ref)
	if err != nil {
		return err
	}
	if r.Method == http.MethodDelete {
		if err := s.store.UnlinkBlob(r.Context(), repo, dgst); err != nil {
			return err
		}
		s.emit(r, Event{Action: EventDelete, Kind: "blob", Repository: repo, Digest: dgst})
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	if s.mirror != nil && s.mirror.covers(repo) {
		if err := s.mirrorBlob(r.Context(), repo, dgst); err != nil {
			return err
		}
	}
	linked, err := s.store.BlobLinked(r.Context(), repo, dgst)
	if err == nil && !linked {
		// A manifest is content of its repository too, as Distribution serves it.
		linked, err = s.store.ManifestLinked(r.Context(), repo, dgst)
	}
	if err != nil {
		return err
	}
	if !linked {
		return newError(http.StatusNotFound, codeBlobUnknown, "blob %s is not in %s", dgst, repo)
	}
	rc, size, err := s.store.OpenBlob(r.Context(), dgst)
	if err != nil {
		return err
	}
	defer rc.Close()
	h := w.Header()
	h.Set("Docker-Content-Digest", dgst.String())
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Accept-Ranges", "bytes")
	h.Set("ETag", `"`+dgst.String()+`"`)
	start, end, partial, err := parseRange(r.Header.Get("Range"), size)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if partial {
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, size))
	}
	h.Set("Content-Length", strconv.FormatInt(end-start, 10))
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return nil
	}
	if start > 0 {
		if _, err := rc.Seek(start, io.SeekStart); err != nil {
			return nil // the status is out; the client sees a short body
		}
	}
	_, _ = io.CopyN(w, rc, end-start)
	if !partial {
		s.emit(r, Event{Action: EventPull, Kind: "blob", Repository: repo, Digest: dgst, Size: size})
	}
	return nil
}

// parseRange reads a Range header of one range of bytes ("bytes=a-b", "bytes=a-",
// "bytes=-n") against a blob of size bytes and returns the half-open range to send. A
// header it does not read (several ranges, another unit) is ignored: the whole blob is
// sent. A range that does not overlap the blob is a 416.
func parseRange(h string, size int64) (start, end int64, partial bool, err error) {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if h == "" || !ok || strings.Contains(spec, ",") {
		return 0, size, false, nil
	}
	unsatisfiable := newError(http.StatusRequestedRangeNotSatisfiable, codeUnsupported, "range %q is not satisfiable for %d bytes", h, size).
		withHeader("Content-Range", fmt.Sprintf("bytes */%d", size))
	a, b, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0, 0, false, unsatisfiable
	}
	if a == "" { // suffix: the last b bytes
		n, perr := strconv.ParseInt(b, 10, 64)
		if perr != nil || n <= 0 {
			return 0, 0, false, unsatisfiable
		}
		return max(size-n, 0), size, true, nil
	}
	first, perr := strconv.ParseInt(a, 10, 64)
	if perr != nil || first < 0 || first >= size {
		return 0, 0, false, unsatisfiable
	}
	last := size - 1
	if b != "" {
		l, perr := strconv.ParseInt(b, 10, 64)
		if perr != nil || l < first {
			return 0, 0, false, unsatisfiable
		}
		last = min(l, size-1)
	}
	return first, last + 1, true, nil
}

// blobLocation is the URL of a blob of repo.
func blobLocation(repo string, dgst digest.Digest) string {
	return "/v2/" + repo + "/blobs/" + dgst.String()
}

// isNotFound reports whether err is a Store's not-found error.
func isNotFound(err error) bool {
	return errors.Is(err, storage.ErrBlobUnknown) || errors.Is(err, storage.ErrManifestUnknown) ||
		errors.Is(err, storage.ErrNameUnknown) || errors.Is(err, storage.ErrUploadUnknown)
}
