package remote

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/errclass"
	"github.com/opendao/dao/registry/oci"
)

// Errors of the registry client, beside those of the image model that it returns too
// (oci.ErrDigestMismatch and oci.ErrSizeMismatch for content that does not match its
// descriptor, oci.ErrInvalidImage, oci.ErrTooLarge, oci.ErrNoPlatform) and
// name.ErrInvalidName. A registry's error answer is a *ResponseError, which matches the
// sentinel of its status and error codes with errors.Is. Each sentinel is of one of
// containerd's error classes (github.com/containerd/errdefs), which its comment names, so
// that errdefs.IsNotFound(err) holds for a missing manifest, blob or repository.
var (
	// ErrNotFound means a registry answered 404 Not Found. Class errdefs.ErrNotFound.
	ErrNotFound = errclass.New(errdefs.ErrNotFound, "registry: not found")
	// ErrUnauthorized means the registry wants credentials that the client does not have,
	// or refused those it sent (HTTP 401, code UNAUTHORIZED). Class
	// errdefs.ErrUnauthenticated.
	ErrUnauthorized = errclass.New(errdefs.ErrUnauthenticated, "registry: unauthorized")
	// ErrDenied means the credentials are valid but may not do this (HTTP 403, code DENIED).
	// Class errdefs.ErrPermissionDenied.
	ErrDenied = errclass.New(errdefs.ErrPermissionDenied, "registry: denied")
	// ErrManifestUnknown means the registry has no manifest of that tag or digest
	// (code MANIFEST_UNKNOWN, or a 404 for a manifest). Class errdefs.ErrNotFound.
	ErrManifestUnknown = errclass.New(errdefs.ErrNotFound, "registry: manifest unknown")
	// ErrBlobUnknown means the registry has no blob of that digest in the repository
	// (code BLOB_UNKNOWN, or a 404 for a blob). It also matches oci.ErrBlobNotFound (class
	// errdefs.ErrNotFound).
	ErrBlobUnknown = errclass.New(oci.ErrBlobNotFound, "registry: blob unknown")
	// ErrNameUnknown means the repository is not known to the registry (code NAME_UNKNOWN).
	// Class errdefs.ErrNotFound.
	ErrNameUnknown = errclass.New(errdefs.ErrNotFound, "registry: repository name unknown")
	// ErrTooManyRequests means the registry kept answering 429 beyond the retry policy, or
	// asked to wait longer than it allows (code TOOMANYREQUESTS). Class
	// errdefs.ErrResourceExhausted.
	ErrTooManyRequests = errclass.New(errdefs.ErrResourceExhausted, "registry: too many requests")
	// ErrUnsupported means the registry does not support the operation (HTTP 405 or 501,
	// code UNSUPPORTED), such as deleting by tag on a registry that deletes only by digest.
	// Class errdefs.ErrNotImplemented.
	ErrUnsupported = errclass.New(errdefs.ErrNotImplemented, "registry: unsupported operation")
	// ErrNotMounted means the registry declined to mount a blob from another repository.
	// Class errdefs.ErrFailedPrecondition.
	ErrNotMounted = errclass.New(errdefs.ErrFailedPrecondition, "registry: blob not mounted")
	// ErrInvalidResponse means a registry's answer breaks the distribution protocol: a
	// missing upload location, a range it was not asked for, a malformed token answer. Class
	// errdefs.ErrDataLoss: the answer cannot be used, and asking again does not help.
	ErrInvalidResponse = errclass.New(errdefs.ErrDataLoss, "registry: invalid response")
	// ErrUnreachable means the client could not connect to a registry, a mirror or a token
	// server: its name does not resolve, nothing listens on its port, or the network does
	// not get there (a *ConnectError says which). Class errdefs.ErrUnavailable.
	ErrUnreachable = errclass.New(errdefs.ErrUnavailable, "registry: unreachable")
	// ErrPlainHTTP means a registry answered HTTPS in plain HTTP: it is reached over plain
	// HTTP only if HostConfig.PlainHTTP says so, or if it is on a loopback address. Class
	// errdefs.ErrFailedPrecondition.
	ErrPlainHTTP = errclass.New(errdefs.ErrFailedPrecondition, "registry: plain HTTP registry")
	// ErrUntrusted means a registry's certificate is not trusted: signed by an authority
	// the client does not know (HostConfig.RootCAs), for another name, or expired. Class
	// errdefs.ErrFailedPrecondition.
	ErrUntrusted = errclass.New(errdefs.ErrFailedPrecondition, "registry: untrusted certificate")
	// ErrCredentialHelper means a docker credential helper named by the docker config
	// (credsStore, credHelpers) is not installed or failed (a *CredentialHelperError says
	// how). Class errdefs.ErrFailedPrecondition.
	ErrCredentialHelper = errclass.New(errdefs.ErrFailedPrecondition, "registry: credential helper failed")
	// ErrInvalidOption means an option was given a value it does not accept. Class
	// dao.ErrInvalid (errdefs.IsInvalidArgument).
	ErrInvalidOption = errclass.New(dao.ErrInvalid, "registry: invalid option")
)

// ResponseError is a registry's answer with an unexpected status, as the distribution
// specification describes it: the status and the error codes of the body. It matches the
// sentinels ErrUnauthorized, ErrDenied, ErrNotFound, ErrManifestUnknown, ErrBlobUnknown,
// oci.ErrBlobNotFound, ErrNameUnknown, ErrTooManyRequests and ErrUnsupported with errors.Is.
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
	case ErrBlobUnknown, oci.ErrBlobNotFound:
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

// Unwrap returns the sentinels the answer matches (see Is), so that errors.Is finds their
// classes too: errdefs.IsNotFound holds for a 404.
func (e *ResponseError) Unwrap() []error {
	var errs []error
	for _, s := range []error{ErrUnauthorized, ErrDenied, ErrManifestUnknown, ErrBlobUnknown, ErrNameUnknown, ErrTooManyRequests, ErrUnsupported, ErrNotFound} {
		if e.Is(s) {
			errs = append(errs, s)
		}
	}
	return errs
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

// FallbackError is the error of a call that fell back from mirrors to the registry itself
// and failed there too: Err is the registry's error (the last endpoint's, which decides the
// answer, as Upstream returns it), Mirrors the errors of the mirrors tried before, in order.
// errors.Is and errors.As see every one of them, the registry's first: errors.As for a
// *ResponseError finds the registry's answer, and errors.Is(err, ErrUnauthorized) holds if
// any endpoint refused the credentials.
type FallbackError struct {
	Err     error
	Mirrors []error
}

// Error returns the registry's error, then each mirror's: "...: 404 Not Found; mirror:
// ...: 503 Service Unavailable".
func (e *FallbackError) Error() string {
	var b strings.Builder
	b.WriteString(e.Err.Error())
	for _, m := range e.Mirrors {
		b.WriteString("; mirror: " + m.Error())
	}
	return b.String()
}

// Unwrap returns the registry's error and then the mirrors'.
func (e *FallbackError) Unwrap() []error {
	return append([]error{e.Err}, e.Mirrors...)
}

// Upstream returns, of an error of the client, what the registry itself answered: the Err
// of the *FallbackError within err, or err as it is if it holds none. Use it to judge a
// call by the registry's answer rather than by a mirror's (a mirror that lacks an image is
// no proof that the registry lacks it):
//
//	if errors.Is(remote.Upstream(err), remote.ErrManifestUnknown) { ... }
func Upstream(err error) error {
	var fe *FallbackError
	if !errors.As(err, &fe) {
		return err
	}
	return fe.Err
}
