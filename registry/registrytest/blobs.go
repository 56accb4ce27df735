package registrytest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"time"

	// The digest algorithms a registry accepts.
	_ "crypto/sha256"
	_ "crypto/sha512"

	"github.com/opencontainers/go-digest"
)

// upload is an open blob upload session.
type upload struct {
	id   string
	name string
	data []byte
}

func blobLocation(name string, d digest.Digest) string { return "/v2/" + name + "/blobs/" + d.String() }

func uploadLocation(name, id string) string { return "/v2/" + name + "/blobs/uploads/" + id }

// readBody reads r's body, refusing one longer than limit bytes with 413 and code.
func readBody(r *http.Request, limit int64, code string) ([]byte, error) {
	tooLarge := newError(http.StatusRequestEntityTooLarge, code, "body larger than %d bytes", limit)
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, newError(http.StatusBadRequest, codeBlobUploadInvalid, "reading the body: %v", err)
	}
	if int64(len(data)) > limit {
		return nil, tooLarge
	}
	return data, nil
}

// getBlob serves GET and HEAD of a blob, with ranges.
func (reg *Registry) getBlob(w http.ResponseWriter, r *http.Request, name, ref string) error {
	d, err := parseDigest(ref)
	if err != nil {
		return err
	}
	reg.mu.Lock()
	data, ok := reg.linkedBlob(name, d)
	reg.mu.Unlock()
	if !ok {
		return newError(http.StatusNotFound, codeBlobUnknown, "blob %s unknown to repository %s", d, name)
	}
	h := w.Header()
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Type", "application/octet-stream")
	h.Set("ETag", `"`+d.String()+`"`)
	h.Set("Cache-Control", "max-age=31536000")
	// ServeContent answers Range requests (206, 416) and HEAD, and sets Content-Length.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	return nil
}

// linkedBlob returns the content of blob d if repository name links it. reg.mu must be held.
func (reg *Registry) linkedBlob(name string, d digest.Digest) ([]byte, bool) {
	rp := reg.repo(name, false)
	if rp == nil {
		return nil, false
	}
	if _, ok := rp.blobs[d]; !ok {
		return nil, false
	}
	data, ok := reg.blobs[d]
	return data, ok
}

// deleteBlob unlinks a blob from a repository, and forgets its content when no repository
// links it any more.
func (reg *Registry) deleteBlob(w http.ResponseWriter, name, ref string) error {
	d, err := parseDigest(ref)
	if err != nil {
		return err
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	rp := reg.repo(name, false)
	if rp == nil {
		return newError(http.StatusNotFound, codeBlobUnknown, "blob %s unknown to repository %s", d, name)
	}
	if _, ok := rp.blobs[d]; !ok {
		return newError(http.StatusNotFound, codeBlobUnknown, "blob %s unknown to repository %s", d, name)
	}
	delete(rp.blobs, d)
	reg.collect(d)
	reg.dropIfEmpty(name)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// collect forgets the content of d if no repository links it. reg.mu must be held.
func (reg *Registry) collect(d digest.Digest) {
	for _, rp := range reg.repos {
		if _, ok := rp.blobs[d]; ok {
			return
		}
	}
	delete(reg.blobs, d)
}

// dropIfEmpty forgets repository name once it holds nothing. reg.mu must be held.
func (reg *Registry) dropIfEmpty(name string) {
	if rp := reg.repos[name]; rp != nil && rp.empty() {
		delete(reg.repos, name)
	}
}

// storeBlob keeps data as blob d of repository name. reg.mu must be held.
func (reg *Registry) storeBlob(name string, d digest.Digest, data []byte) {
	if _, ok := reg.blobs[d]; !ok {
		reg.blobs[d] = data
	}
	reg.repo(name, true).blobs[d] = struct{}{}
}

// verify checks that data has digest d; it refuses it with 400 DIGEST_INVALID otherwise.
func verify(d digest.Digest, data []byte) error {
	if got := d.Algorithm().FromBytes(data); got != d {
		return newError(http.StatusBadRequest, codeDigestInvalid, "content has digest %s, not %s", got, d)
	}
	return nil
}

// blobCreated answers a blob stored.
func blobCreated(w http.ResponseWriter, name string, d digest.Digest) {
	h := w.Header()
	h.Set("Location", blobLocation(name, d))
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// startUpload serves POST /v2/<name>/blobs/uploads/: a mount, a monolithic upload or the
// start of a session.
func (reg *Registry) startUpload(w http.ResponseWriter, r *http.Request, name string) error {
	q := r.URL.Query()
	if mount := q.Get("mount"); mount != "" {
		d, err := parseDigest(mount)
		if err != nil {
			return err
		}
		from := q.Get("from")
		if ValidName(from) && reg.mayPull(r, from) {
			reg.mu.Lock()
			_, ok := reg.linkedBlob(from, d)
			if ok {
				reg.repo(name, true).blobs[d] = struct{}{}
			}
			reg.mu.Unlock()
			if ok {
				blobCreated(w, name, d)
				return nil
			}
		}
		// Not mountable: an upload session starts, as the spec says.
	} else if ds := q.Get("digest"); ds != "" {
		d, err := parseDigest(ds)
		if err != nil {
			return err
		}
		data, err := readBody(r, reg.o.maxBlob, codeSizeInvalid)
		if err != nil {
			return err
		}
		if err := verify(d, data); err != nil {
			return err
		}
		reg.mu.Lock()
		reg.storeBlob(name, d, data)
		reg.mu.Unlock()
		blobCreated(w, name, d)
		return nil
	}
	if alg := q.Get("digest-algorithm"); alg != "" && !digest.Algorithm(alg).Available() {
		return newError(http.StatusBadRequest, codeDigestInvalid, "digest algorithm %q unsupported", alg)
	}
	var idb [16]byte
	rand.Read(idb[:])
	u := &upload{id: hex.EncodeToString(idb[:]), name: name}
	reg.mu.Lock()
	if len(reg.uploads) >= reg.o.maxUploads {
		reg.mu.Unlock()
		e := newError(http.StatusTooManyRequests, codeTooManyRequests, "%d uploads open", reg.o.maxUploads)
		e.header = http.Header{"Retry-After": {"1"}}
		return e
	}
	reg.uploads[u.id] = u
	reg.mu.Unlock()
	uploadAccepted(w, u, http.StatusAccepted)
	return nil
}

// uploadAccepted answers with the state of u.
func uploadAccepted(w http.ResponseWriter, u *upload, status int) {
	h := w.Header()
	h.Set("Location", uploadLocation(u.name, u.id))
	h.Set("Docker-Upload-UUID", u.id)
	h.Set("Range", "0-"+strconv.Itoa(max(len(u.data)-1, 0)))
	h.Set("Content-Length", "0")
	w.WriteHeader(status)
}

// session returns the upload id of repository name. reg.mu must be held.
func (reg *Registry) session(name, id string) (*upload, error) {
	u := reg.uploads[id]
	if u == nil || u.name != name {
		return nil, newError(http.StatusNotFound, codeBlobUploadUnknown, "upload %s unknown to repository %s", id, name)
	}
	return u, nil
}

func (reg *Registry) uploadStatus(w http.ResponseWriter, name, id string) error {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	u, err := reg.session(name, id)
	if err != nil {
		return err
	}
	uploadAccepted(w, u, http.StatusNoContent)
	return nil
}

func (reg *Registry) cancelUpload(w http.ResponseWriter, name, id string) error {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if _, err := reg.session(name, id); err != nil {
		return err
	}
	delete(reg.uploads, id)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// contentRangeRE is the Content-Range of a chunk: inclusive, and "bytes " tolerated.
var contentRangeRE = regexp.MustCompile(`^(?:bytes )?([0-9]+)-([0-9]+)$`)

// chunk reads the body of a PATCH or a closing PUT of upload id and appends it, checking its
// Content-Range, if any, against what the session holds: 416 when it does not start where
// the session ends.
func (reg *Registry) chunk(r *http.Request, name, id string) (*upload, error) {
	reg.mu.Lock()
	u, err := reg.session(name, id)
	var have int64
	if err == nil {
		have = int64(len(u.data))
	}
	reg.mu.Unlock()
	if err != nil {
		return nil, err
	}
	start, end := int64(-1), int64(-1)
	if cr := r.Header.Get("Content-Range"); cr != "" {
		m := contentRangeRE.FindStringSubmatch(cr)
		if m == nil {
			return nil, newError(http.StatusBadRequest, codeBlobUploadInvalid, "invalid Content-Range %q", cr)
		}
		start, _ = strconv.ParseInt(m[1], 10, 64)
		end, _ = strconv.ParseInt(m[2], 10, 64)
		if end < start {
			return nil, newError(http.StatusBadRequest, codeBlobUploadInvalid, "invalid Content-Range %q", cr)
		}
		if start != have {
			return nil, reg.outOfOrder(name, id, cr)
		}
	}
	data, err := readBody(r, max(reg.o.maxBlob-have, 0), codeSizeInvalid)
	if err != nil {
		return nil, err
	}
	if start >= 0 && int64(len(data)) != end-start+1 {
		return nil, newError(http.StatusBadRequest, codeSizeInvalid, "Content-Range %d-%d is %d bytes, the body %d", start, end, end-start+1, len(data))
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	u, err = reg.session(name, id)
	if err != nil {
		return nil, err
	}
	if start >= 0 && start != int64(len(u.data)) { // another chunk came first
		return nil, reg.outOfOrderLocked(u, r.Header.Get("Content-Range"))
	}
	if int64(len(u.data)+len(data)) > reg.o.maxBlob {
		return nil, newError(http.StatusRequestEntityTooLarge, codeSizeInvalid, "blob larger than %d bytes", reg.o.maxBlob)
	}
	u.data = append(u.data, data...)
	return u, nil
}

func (reg *Registry) outOfOrder(name, id, cr string) error {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	u, err := reg.session(name, id)
	if err != nil {
		return err
	}
	return reg.outOfOrderLocked(u, cr)
}

// outOfOrderLocked is the 416 of a chunk that does not start where u ends, with u's state.
func (reg *Registry) outOfOrderLocked(u *upload, cr string) error {
	e := newError(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid, "chunk %s does not start at %d, where the upload ends", cr, len(u.data))
	e.header = http.Header{
		"Location":           {uploadLocation(u.name, u.id)},
		"Range":              {"0-" + strconv.Itoa(max(len(u.data)-1, 0))},
		"Docker-Upload-Uuid": {u.id},
	}
	return e
}

func (reg *Registry) patchUpload(w http.ResponseWriter, r *http.Request, name, id string) error {
	u, err := reg.chunk(r, name, id)
	if err != nil {
		return err
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	uploadAccepted(w, u, http.StatusAccepted)
	return nil
}

// finishUpload closes a session with PUT ?digest=, with a last chunk or none: the blob is
// stored only if its content has the digest. The session ends either way.
func (reg *Registry) finishUpload(w http.ResponseWriter, r *http.Request, name, id string) error {
	ds := r.URL.Query().Get("digest")
	if ds == "" {
		return newError(http.StatusBadRequest, codeDigestInvalid, "the closing PUT has no digest")
	}
	d, err := parseDigest(ds)
	if err != nil {
		return err
	}
	// The last chunk is read into the session only when it is in order; a chunk that is not
	// leaves the session for the client to ask where it is.
	if _, err := reg.chunk(r, name, id); err != nil {
		return err
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	u, err := reg.session(name, id)
	if err != nil {
		return err
	}
	delete(reg.uploads, id)
	if err := verify(d, u.data); err != nil {
		return err
	}
	reg.storeBlob(name, d, u.data)
	blobCreated(w, name, d)
	return nil
}
