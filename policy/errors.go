package policy

import (
	"github.com/containerd/errdefs"

	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/errclass"
)

// Sentinel errors. Placement filters return the refusal sentinels as they are (they are
// preallocated, so refusing a node costs no allocation); match them with errors.Is.
//
// Each is of one of containerd's error classes (github.com/containerd/errdefs), so that a
// caller may ask errdefs.IsFailedPrecondition(err) and the like of any of them: a node that
// is not fit to run a task now (not ready, paused, draining, of another platform, refused
// by a constraint) is a failed precondition; a node without the room a task asks for (cpu,
// memory, pids, a host port, its replicas per node) is out of a resource; a service that is
// not admitted is denied permission; a syntax error or an invalid policy is an invalid
// argument (of class dao.ErrInvalid).
var (
	// ErrNodeNotReady refuses a node whose status is not ready (errdefs.ErrFailedPrecondition).
	ErrNodeNotReady = errclass.New(errdefs.ErrFailedPrecondition, "policy: node not ready")
	// ErrNodePaused refuses a node whose availability is pause (errdefs.ErrFailedPrecondition).
	ErrNodePaused = errclass.New(errdefs.ErrFailedPrecondition, "policy: node paused")
	// ErrNodeDraining refuses a node whose availability is drain
	// (errdefs.ErrFailedPrecondition).
	ErrNodeDraining = errclass.New(errdefs.ErrFailedPrecondition, "policy: node draining")
	// ErrInsufficientCPU refuses a node without enough unallocated CPU for the task
	// (errdefs.ErrResourceExhausted).
	ErrInsufficientCPU = errclass.New(errdefs.ErrResourceExhausted, "policy: insufficient cpu")
	// ErrInsufficientMemory refuses a node without enough unallocated memory for the task
	// (errdefs.ErrResourceExhausted).
	ErrInsufficientMemory = errclass.New(errdefs.ErrResourceExhausted, "policy: insufficient memory")
	// ErrInsufficientPids refuses a node without enough unallocated pids for the task
	// (errdefs.ErrResourceExhausted).
	ErrInsufficientPids = errclass.New(errdefs.ErrResourceExhausted, "policy: insufficient pids")
	// ErrHostPortInUse refuses a node where a host port the task publishes is taken
	// (errdefs.ErrResourceExhausted: the port is a resource of the node that is used up).
	ErrHostPortInUse = errclass.New(errdefs.ErrResourceExhausted, "policy: host port in use")
	// ErrPlatform refuses a node whose platform is not one the service runs on
	// (errdefs.ErrFailedPrecondition).
	ErrPlatform = errclass.New(errdefs.ErrFailedPrecondition, "policy: unsupported platform")
	// ErrMaxReplicasPerNode refuses a node that already runs the most tasks of the service
	// it may (errdefs.ErrResourceExhausted).
	ErrMaxReplicasPerNode = errclass.New(errdefs.ErrResourceExhausted, "policy: max replicas per node reached")
	// ErrRecentFailures refuses a node where the service failed too often recently
	// (errdefs.ErrFailedPrecondition).
	ErrRecentFailures = errclass.New(errdefs.ErrFailedPrecondition, "policy: service failed recently on node")
	// ErrConstraint is matched by every *UnmetConstraint (errdefs.ErrFailedPrecondition).
	ErrConstraint = errclass.New(errdefs.ErrFailedPrecondition, "policy: constraint not met")

	// ErrUnschedulable is matched by every *PlacementError: no node may run the task
	// (errdefs.ErrFailedPrecondition: the cluster is not in a state to run it; it may be
	// later).
	ErrUnschedulable = errclass.New(errdefs.ErrFailedPrecondition, "policy: no suitable node")
	// ErrNotAdmitted is matched by every *AdmissionError (errdefs.ErrPermissionDenied: the
	// cluster's rules do not let the service run as it is).
	ErrNotAdmitted = errclass.New(errdefs.ErrPermissionDenied, "policy: not admitted")
	// ErrSyntax is matched by every *SyntaxError (dao.ErrInvalid, so
	// errdefs.ErrInvalidArgument).
	ErrSyntax = errclass.New(dao.ErrInvalid, "policy: syntax error")
	// ErrInvalidPolicy is returned (wrapped) by constructors, options and Validate methods
	// given settings that cannot work, such as a negative window (dao.ErrInvalid, so
	// errdefs.ErrInvalidArgument).
	ErrInvalidPolicy = errclass.New(dao.ErrInvalid, "policy: invalid policy")
)
