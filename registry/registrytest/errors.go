package registrytest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/errclass"
)

var (
	// ErrInvalidOption is matched (with errors.Is) by the error New, NewTokenServer and
	// NewFaultProxyURL return for an option they refuse; it is of class dao.ErrInvalid.
	ErrInvalidOption = errclass.New(dao.ErrInvalid, "registrytest: invalid option")
	// ErrInvalidFault is matched by the error FaultProxy.Add returns when it is given a
	// fault it cannot apply; it is of class dao.ErrInvalid.
	ErrInvalidFault = errclass.New(dao.ErrInvalid, "registrytest: invalid fault")
)

// optionError names the option and why it was refused.
func optionError(option, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidOption, option, fmt.Sprintf(format, args...))
}

// The error codes of the distribution spec, and one of ours for a body too large.
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

// regError is an answer of the registry that is an error: a status and a spec error body.
type regError struct {
	status  int
	code    string
	message string
	// header is set on the answer (WWW-Authenticate, Range, Location).
	header http.Header
}

func (e *regError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.code, e.message) }

func newError(status int, code, format string, args ...any) *regError {
	return &regError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// errorBody is the JSON body of an error answer, as the distribution spec has it.
type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    string `json:"code"`
	Message string `json:"message,omitempty"`
	Detail  any    `json:"detail,omitempty"`
}

// writeError writes err, a *regError or anything else (a 500 UNKNOWN), to w.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var re *regError
	if !errors.As(err, &re) {
		re = newError(http.StatusInternalServerError, codeUnknown, "%v", err)
	}
	for k, v := range re.header {
		w.Header()[k] = v
	}
	body, _ := json.Marshal(errorBody{Errors: []errorEntry{{Code: re.code, Message: re.message}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(re.status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}
