package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/containerd/errdefs"

	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/errclass"
	"github.com/opendao/dao/registry/server/storage"
)

// Errors of the server's options and hooks. An Authorizer or a Quota refuses with an
// error that matches ErrDenied (403 DENIED), ErrTooManyRequests (429 TOOMANYREQUESTS), or
// is a *ChallengeError (401 UNAUTHORIZED); any other error of theirs is a 403 DENIED too,
// its message the error's.
var (
	// ErrInvalidOption means an option or a Config field was given a value it does not
	// accept; the error names it. Class dao.ErrInvalid.
	ErrInvalidOption = errclass.New(dao.ErrInvalid, "registry server: invalid option")
	// ErrDenied means the caller may not do what it asked. Class
	// errdefs.ErrPermissionDenied.
	ErrDenied = errclass.New(errdefs.ErrPermissionDenied, "registry server: denied")
	// ErrUnauthorized means the caller must authenticate. Class errdefs.ErrUnauthenticated.
	ErrUnauthorized = errclass.New(errdefs.ErrUnauthenticated, "registry server: authentication required")
	// ErrTooManyRequests means a client went past its rate limit, or a quota asks it to
	// come back later. Class errdefs.ErrResourceExhausted.
	ErrTooManyRequests = errclass.New(errdefs.ErrResourceExhausted, "registry server: too many requests")
)

// ChallengeError is what an Authorizer returns to ask the client to authenticate: the
// server answers 401 UNAUTHORIZED with Challenge as its WWW-Authenticate header, such as
// `Basic realm="dao"` or `Bearer realm="https://auth.example/token",service="hub",
// scope="repository:team/app:pull"`. It matches ErrUnauthorized.
type ChallengeError struct {
	// Challenge is the WWW-Authenticate header's value.
	Challenge string
	// Message is the error's message for the client; "authentication required" if empty.
	Message string
}

// Error returns the message, prefixed with the package name.
func (e *ChallengeError) Error() string {
	if e.Message != "" {
		return "registry server: " + e.Message
	}
	return ErrUnauthorized.Error()
}

// Unwrap makes errors.Is(err, ErrUnauthorized) true.
func (e *ChallengeError) Unwrap() error { return ErrUnauthorized }

// The error codes of the distribution spec.
const (
	codeBlobUnknown         = "BLOB_UNKNOWN"
	codeBlobUploadInvalid   = "BLOB_UPLOAD_INVALID"
	codeBlobUploadUnknown   = "BLOB_UPLOAD_UNKNOWN"
	codeDigestInvalid       = "DIGEST_INVALID"
	codeManifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
	codeManifestInvalid     = "MANIFEST_INVALID"
	codeManifestUnknown     = "MANIFEST_UNKNOWN"
	codeNameInvalid         = "NAME_INVALID"
	codeNameUnknown         = "NAME_UNKNOWN"
	codeSizeInvalid         = "SIZE_INVALID"
	codeUnauthorized        = "UNAUTHORIZED"
	codeDenied              = "DENIED"
	codeUnsupported         = "UNSUPPORTED"
	codeTooManyRequests     = "TOOMANYREQUESTS"
	codeUnknown             = "UNKNOWN"
)

// apiError is an answer that is an error: a status, a spec code and a message, and headers.
type apiError struct {
	status  int
	code    string
	message string
	header  http.Header
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.code, e.message) }

func newError(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// withHeader sets a header on the error's answer.
func (e *apiError) withHeader(k, v string) *apiError {
	if e.header == nil {
		e.header = http.Header{}
	}
	e.header.Set(k, v)
	return e
}

// errorBody is the JSON body of an error answer.
type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    string `json:"code"`
	Message string `json:"message,omitempty"`
	Detail  any    `json:"detail,omitempty"`
}

// storeError maps an error of a Store to its answer: a not-found code given by the caller
// for ErrBlobUnknown-like errors, else by class.
func toAPIError(err error) *apiError {
	var ae *apiError
	var ce *ChallengeError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &ce):
		return newError(http.StatusUnauthorized, codeUnauthorized, "%s", ce.Error()).withHeader("WWW-Authenticate", ce.Challenge)
	case errors.Is(err, ErrTooManyRequests):
		return newError(http.StatusTooManyRequests, codeTooManyRequests, "%v", err)
	case errors.Is(err, ErrDenied):
		return newError(http.StatusForbidden, codeDenied, "%v", err)
	case errors.Is(err, storage.ErrBlobUnknown):
		return newError(http.StatusNotFound, codeBlobUnknown, "%v", err)
	case errors.Is(err, storage.ErrManifestUnknown):
		return newError(http.StatusNotFound, codeManifestUnknown, "%v", err)
	case errors.Is(err, storage.ErrNameUnknown):
		return newError(http.StatusNotFound, codeNameUnknown, "%v", err)
	case errors.Is(err, storage.ErrUploadUnknown):
		return newError(http.StatusNotFound, codeBlobUploadUnknown, "%v", err)
	case errors.Is(err, storage.ErrDigestInvalid):
		return newError(http.StatusBadRequest, codeDigestInvalid, "%v", err)
	case errors.Is(err, storage.ErrRangeInvalid):
		return newError(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid, "%v", err)
	}
	return newError(http.StatusInternalServerError, codeUnknown, "%v", err)
}

// writeError answers err.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := toAPIError(err)
	for k, v := range ae.header {
		w.Header()[k] = v
	}
	body, _ := json.Marshal(errorBody{Errors: []errorEntry{{Code: ae.code, Message: ae.message}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Del("Docker-Content-Digest")
	w.WriteHeader(ae.status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}
