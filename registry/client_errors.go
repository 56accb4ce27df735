package registry

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// Errors of the registry client, beside those of errors.go that it shares with the builder
// (ErrDigestMismatch, ErrNotFound, ErrBlobNotFound, ErrInvalidName, ErrInvalidImage,
// ErrInvalidOption). A registry's error answer is a *ResponseError, which matches the
// sentinel of its status and error codes with errors.Is.
var (
	// ErrUnauthorized means the registry wants credentials that the client does not have,
	// or refused those it sent (HTTP 401, code UNAUTHORIZED).
	ErrUnauthorized = errors.New("registry: unauthorized")
	// ErrDenied means the credentials are valid but may not do this (HTTP 403, code DENIED).
	ErrDenied = errors.New("registry: denied")
	// ErrManifestUnknown means the registry has no manifest of that tag or digest
	// (code MANIFEST_UNKNOWN, or a 404 for a manifest).
	ErrManifestUnknown = errors.New("registry: manifest unknown")
	// ErrBlobUnknown means the registry has no blob of that digest in the repository
	// (code BLOB_UNKNOWN, or a 404 for a blob). It also matches ErrBlobNotFound.
	ErrBlobUnknown = errors.New("registry: blob unknown")
	// ErrNameUnknown means the repository is not known to the registry (code NAME_UNKNOWN).
	ErrNameUnknown = errors.New("registry: repository name unknown")
	// ErrTooManyRequests means the registry kept answering 429 beyond the retry policy, or
	// asked to wait longer than it allows (code TOOMANYREQUESTS).
	ErrTooManyRequests = errors.New("registry: too many requests")
	// ErrUnsupported means the registry does not support the operation (HTTP 405 or 501,
	// code UNSUPPORTED), such as deleting by tag on a registry that deletes only by digest.
	ErrUnsupported = errors.New("registry: unsupported operation")
	// ErrSizeMismatch means a blob is shorter or longer than its descriptor says. It also
	// matches ErrDigestMismatch.
	ErrSizeMismatch error = &subError{msg: "registry: size mismatch", parent: ErrDigestMismatch}
	// ErrNoPlatform means an index lists no manifest for the requested platform.
	ErrNoPlatform = errors.New("registry: no manifest for the platform")
	// ErrNotMounted means the registry declined to mount a blob from another repository.
	ErrNotMounted = errors.New("registry: blob not mounted")
	// ErrInvalidResponse means a registry's answer breaks the distribution protocol: a
	// missing upload location, a range it was not asked for, a malformed token answer.
	ErrInvalidResponse = errors.New("registry: invalid response")
	// ErrTooLarge means something is larger than the client takes: a manifest or index of
	// more than 4 MiB or a config of more than 16 MiB (errors that also match
	// ErrInvalidImage), an answer of more than its reader reads (a token of 1 MiB, a list
	// page of 16 MiB), or the layers of a pull, unpacked, more than WithPullUnpackLimit
	// allows.
	ErrTooLarge = errors.New("registry: too large")
	// ErrNotImage means a manifest is not that of a container image: its config's media type
	// is not an image config's (OCI or Docker), as with artifacts such as signatures, SBOMs
	// or Helm charts. Pull, which makes an image to run containers from, refuses it;
	// PullLayout, Copy, FetchManifest and FetchBlob take any artifact. It also matches
	// ErrInvalidImage.
	ErrNotImage error = &subError{msg: "registry: not a container image", parent: ErrInvalidImage}
)

// subError is a sentinel that also matches a broader one.
type subError struct {
	msg    string
	parent error
}

func (e *subError) Error() string { return e.msg }
func (e *subError) Unwrap() error { return e.parent }

// ResponseError is a registry's answer with an unexpected status, as the distribution
// specification describes it: the status and the error codes of the body. It matches the
// sentinels ErrUnauthorized, ErrDenied, ErrNotFound, ErrManifestUnknown, ErrBlobUnknown,
// ErrBlobNotFound, ErrNameUnknown, ErrTooManyRequests and ErrUnsupported with errors.Is.
type ResponseError struct {
	// Method and URL are those of the request, without the URL's query, which may hold
	// upload state.
	Method, URL string
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// Errors are the error codes of the answer's body; they may be none.
	Errors []ErrorInfo
}

// ErrorInfo is one entry of the "errors" list of a registry's error body.
type ErrorInfo struct {
	// Code is the error code, such as "MANIFEST_UNKNOWN".
	Code string `json:"code"`
	// Message is the registry's explanation.
	Message string `json:"message,omitempty"`
	// Detail is whatever the registry added, as it sent it.
	Detail json.RawMessage `json:"detail,omitempty"`
}

// Error returns the request, the status and the codes, such as "registry: GET
// https://r.example/v2/app/manifests/1: 404 Not Found: MANIFEST_UNKNOWN: manifest unknown".
func (e *ResponseError) Error() string {
	var b strings.Builder
	b.WriteString("registry: " + e.Method + " " + e.URL + ": " + strconv.Itoa(e.StatusCode))
	if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteString(" " + t)
	}
	for i, ei := range e.Errors {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(ei.Code)
		if ei.Message != "" {
			b.WriteString(": " + ei.Message)
		}
	}
	return b.String()
}

// Is reports whether the answer means target.
func (e *ResponseError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized || e.hasCode("UNAUTHORIZED")
	case ErrDenied:
		return e.StatusCode == http.StatusForbidden || e.hasCode("DENIED")
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrManifestUnknown:
		return e.hasCode("MANIFEST_UNKNOWN") || e.StatusCode == http.StatusNotFound && len(e.Errors) == 0 && strings.Contains(e.URL, "/manifests/")
	case ErrBlobUnknown, ErrBlobNotFound:
		return e.hasCode("BLOB_UNKNOWN") || e.StatusCode == http.StatusNotFound && len(e.Errors) == 0 && strings.Contains(e.URL, "/blobs/")
	case ErrNameUnknown:
		return e.hasCode("NAME_UNKNOWN")
	case ErrTooManyRequests:
		return e.StatusCode == http.StatusTooManyRequests || e.hasCode("TOOMANYREQUESTS")
	case ErrUnsupported:
		return e.StatusCode == http.StatusMethodNotAllowed || e.StatusCode == http.StatusNotImplemented || e.hasCode("UNSUPPORTED")
	}
	return false
}

func (e *ResponseError) hasCode(code string) bool {
	for _, ei := range e.Errors {
		if ei.Code == code {
			return true
		}
	}
	return false
}

// newResponseError reads the error body of resp (at most 64 KiB) into a ResponseError.
func newResponseError(resp *http.Response, body []byte) *ResponseError {
	u := *resp.Request.URL
	u.RawQuery, u.User = "", nil
	e := &ResponseError{Method: resp.Request.Method, URL: u.String(), StatusCode: resp.StatusCode}
	var doc struct {
		Errors []ErrorInfo `json:"errors"`
	}
	if json.Unmarshal(body, &doc) == nil {
		e.Errors = doc.Errors
	}
	return e
}
