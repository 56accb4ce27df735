package pki

import (
	"github.com/containerd/errdefs"

	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/errclass"
)

// Errors of this package. Each is of a containerd errdefs class, so errdefs.IsUnauthorized,
// errdefs.IsPermissionDenied and so on work on every error the package returns, and each can
// still be told apart with errors.Is.
var (
	// ErrInvalidOption is returned for a bad option value; of class dao.ErrInvalid.
	ErrInvalidOption = errclass.New(dao.ErrInvalid, "pki: invalid option")
	// ErrInvalidNodeID is returned for a node ID that may not go in a certificate; of class
	// dao.ErrInvalid. See ValidateNodeID for the rule.
	ErrInvalidNodeID = errclass.New(dao.ErrInvalid, "pki: invalid node ID")
	// ErrInvalidCSR is returned for a certificate request that does not parse or whose
	// signature does not verify; of class dao.ErrInvalid.
	ErrInvalidCSR = errclass.New(dao.ErrInvalid, "pki: invalid certificate request")
	// ErrMalformedToken is returned by ParseJoinToken for a string that is not a join token;
	// of class dao.ErrInvalid. The error text names what is wrong.
	ErrMalformedToken = errclass.New(dao.ErrInvalid, "pki: malformed join token")
	// ErrInvalidCA is returned by LoadCA for files that do not hold a usable CA (a PEM block
	// missing or not parsing, a certificate that is not a CA, a key that does not match the
	// certificate); of class dao.ErrInvalid.
	ErrInvalidCA = errclass.New(dao.ErrInvalid, "pki: invalid CA files")

	// ErrCorruptState is returned by LoadCA for a state file (StateFile) that does not parse
	// or holds a bad value; the error text names the file and the field. Of class
	// errdefs.ErrDataLoss: the file was damaged or tampered with, and loading it again does
	// not help.
	ErrCorruptState = errclass.New(errdefs.ErrDataLoss, "pki: CA state file corrupt")

	// ErrInsecureKeyFile is returned by LoadCA when the CA's key file or its state file
	// (StateFile) may be read or written by anyone but its owner; of class
	// errdefs.ErrFailedPrecondition.
	ErrInsecureKeyFile = errclass.New(errdefs.ErrFailedPrecondition, "pki: key file is accessible to others")

	// ErrInvalidToken is returned when a join token's secret is not one the CA issued (or
	// was revoked); of class errdefs.ErrUnauthenticated. ErrTokenExpired is of this class.
	ErrInvalidToken = errclass.New(errdefs.ErrUnauthenticated, "pki: invalid join token")
	// ErrTokenExpired is returned for a join token past its expiry; of class ErrInvalidToken
	// (and so errdefs.ErrUnauthenticated).
	ErrTokenExpired = errclass.New(ErrInvalidToken, "pki: join token expired")
	// ErrCAPinMismatch is returned by VerifyCAPin when the CA certificate a node was shown is
	// not the one its join token pins; of class errdefs.ErrUnauthenticated.
	ErrCAPinMismatch = errclass.New(errdefs.ErrUnauthenticated, "pki: CA certificate does not match the join token's pin")

	// ErrUnknownAuthority is returned for a certificate not signed by the CA (or missing);
	// of class errdefs.ErrUnauthenticated.
	ErrUnknownAuthority = errclass.New(errdefs.ErrUnauthenticated, "pki: certificate not issued by this CA")
	// ErrExpired is returned for a certificate outside its validity period (expired or not
	// yet valid); of class errdefs.ErrUnauthenticated.
	ErrExpired = errclass.New(errdefs.ErrUnauthenticated, "pki: certificate expired or not yet valid")
	// ErrRevoked is returned for a certificate whose serial number the CA revoked; of class
	// errdefs.ErrPermissionDenied.
	ErrRevoked = errclass.New(errdefs.ErrPermissionDenied, "pki: certificate revoked")
	// ErrNodeRemoved is returned for a certificate naming a node removed from the cluster;
	// of class errdefs.ErrPermissionDenied.
	ErrNodeRemoved = errclass.New(errdefs.ErrPermissionDenied, "pki: node removed")
	// ErrWrongRole is returned when a certificate of this CA is presented in the wrong place:
	// a node certificate where the control plane's is expected, or the reverse; of class
	// errdefs.ErrPermissionDenied.
	ErrWrongRole = errclass.New(errdefs.ErrPermissionDenied, "pki: certificate of the wrong role")
)
