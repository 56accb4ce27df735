package hub

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// The registry server asks the Quota only when an upload is committed, so the bytes of
// chunked uploads (PATCH) would pile up in upload sessions past a project's quota until
// then. guardUpload bounds them: a request that appends to an upload of a project with a
// quota, from a caller who may push there, is refused 403 DENIED before it is read when
// its Content-Length would take the session past what the quota has left, and a body
// without a length is cut off there (the server then answers BLOB_UPLOAD_INVALID and
// keeps what was appended, which fits the quota). Sessions are bounded one by one: many
// sessions at once may each hold up to what is left.

// uploadTarget returns the repository and session id of an upload request ("" for a
// POST that starts one).
func uploadTarget(path string) (repo, id string, ok bool) {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return "", "", false
	}
	i := strings.LastIndex(rest, "/blobs/uploads")
	if i <= 0 {
		return "", "", false
	}
	repo, tail := rest[:i], strings.TrimPrefix(rest[i+len("/blobs/uploads"):], "/")
	if strings.Contains(tail, "/") {
		return "", "", false
	}
	return repo, tail, true
}

// guardUpload returns the request to serve, with its body bounded, or false after it has
// answered a refusal itself.
func (h *Hub) guardUpload(w http.ResponseWriter, r *http.Request, id identity) (*http.Request, bool) {
	if r.Method != http.MethodPatch && r.Method != http.MethodPut && r.Method != http.MethodPost {
		return r, true
	}
	repo, sid, ok := uploadTarget(r.URL.Path)
	if !ok || id.err != nil || (r.Method == http.MethodPost && r.URL.Query().Get("mount") != "") {
		return r, true
	}
	st := h.state()
	proj := projectOf(repo)
	p, ok := st.Projects[proj]
	if !ok || p.Quota == 0 || !containsAction(allowed(st, id.who, repo), "push") {
		return r, true
	}
	if d := r.URL.Query().Get("digest"); d != "" && h.usage.holds(proj, d) {
		return r, true // the project holds it already: the push adds nothing
	}
	var size int64
	if sid != "" {
		up, err := h.store.Upload(r.Context(), repo, sid)
		if err != nil {
			return r, true // the server answers BLOB_UPLOAD_UNKNOWN
		}
		size = up.Size()
	}
	used := h.usage.committed(proj)
	left := p.Quota - used - size
	if r.ContentLength > 0 && r.ContentLength > left {
		writeDenied(w, r, &QuotaError{Project: proj, Quota: p.Quota, Used: used + size, Adds: r.ContentLength})
		return nil, false
	}
	if r.ContentLength < 0 && r.Body != nil {
		r.Body = &quotaBody{ReadCloser: r.Body, left: max(left, 0), err: &QuotaError{Project: proj, Quota: p.Quota, Used: used + size}}
	}
	return r, true
}

// quotaBody fails a read past left bytes.
type quotaBody struct {
	io.ReadCloser
	left int64
	read int64
	err  *QuotaError
}

func (b *quotaBody) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left-b.read+1 {
		p = p[:b.left-b.read+1]
	}
	n, err := b.ReadCloser.Read(p)
	b.read += int64(n)
	if b.read > b.left {
		b.err.Adds = b.read
		return n - int(b.read-b.left), b.err
	}
	return n, err
}

// writeDenied answers err as the distribution spec's 403 DENIED.
func writeDenied(w http.ResponseWriter, r *http.Request, err error) {
	body, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"code": "DENIED", "message": err.Error()}}})
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusForbidden)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}
