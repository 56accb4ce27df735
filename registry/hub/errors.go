package hub

import (
	"fmt"

	"github.com/containerd/errdefs"

	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/errclass"
	"github.com/opendao/dao/registry/server"
)

// Errors of the hub. Those its Authorizer and Quota return to the registry server are
// answered in the distribution spec's JSON format: ErrDenied and ErrQuotaExceeded as 403
// DENIED, an authentication error as 401 UNAUTHORIZED with a Bearer challenge.
var (
	// ErrInvalidOption means an option, a Config field or an argument of a management call
	// was given a value it does not take; the error names it. Class dao.ErrInvalid.
	ErrInvalidOption = errclass.New(dao.ErrInvalid, "hub: invalid option")
	// ErrNotFound means a project, user or robot account does not exist. Class
	// errdefs.ErrNotFound.
	ErrNotFound = errclass.New(errdefs.ErrNotFound, "hub: not found")
	// ErrExists means a project, user or robot account of that name exists already. Class
	// errdefs.ErrAlreadyExists.
	ErrExists = errclass.New(errdefs.ErrAlreadyExists, "hub: already exists")
	// ErrDenied means the caller may not do what it asked. Class
	// errdefs.ErrPermissionDenied.
	ErrDenied = errclass.New(errdefs.ErrPermissionDenied, "hub: denied")
	// ErrUnauthenticated means the caller's credentials or token were refused, or it gave
	// none where some are needed. Class errdefs.ErrUnauthenticated.
	ErrUnauthenticated = errclass.New(errdefs.ErrUnauthenticated, "hub: authentication required")
	// ErrInvalidToken means a token did not verify: a bad signature or algorithm, another
	// audience or issuer, expired or not yet valid, malformed. It matches
	// ErrUnauthenticated.
	ErrInvalidToken = errclass.New(ErrUnauthenticated, "hub: invalid token")
	// ErrInvalidScope means a token scope ("repository:team/app:pull,push") is malformed.
	// Class dao.ErrInvalid.
	ErrInvalidScope = errclass.New(dao.ErrInvalid, "hub: invalid scope")
	// ErrQuotaExceeded means a push would take a project past its storage quota; the
	// error is a *QuotaError. Class errdefs.ErrResourceExhausted.
	ErrQuotaExceeded = errclass.New(errdefs.ErrResourceExhausted, "hub: quota exceeded")
)

// deniedError is a refusal of the hub's Authorizer. It matches ErrDenied and also
// server.ErrDenied, which the registry server needs to answer 403 DENIED (it answers
// other errors of an Authorizer 500).
type deniedError struct{ msg string }

func denied(format string, args ...any) error {
	return &deniedError{msg: fmt.Sprintf(format, args...)}
}

func (e *deniedError) Error() string { return "hub: denied: " + e.msg }

// Unwrap makes errors.Is(err, ErrDenied) true, and errdefs.IsPermissionDenied.
func (e *deniedError) Unwrap() error { return ErrDenied }

// Is makes errors.Is(err, server.ErrDenied) true.
func (e *deniedError) Is(target error) bool { return target == server.ErrDenied }
