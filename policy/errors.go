package policy

import "errors"

// Sentinel errors. Placement filters return the refusal sentinels as they are (they are
// preallocated, so refusing a node costs no allocation); match them with errors.Is.
var (
	// ErrNodeNotReady refuses a node whose status is not ready.
	ErrNodeNotReady = errors.New("policy: node not ready")
	// ErrNodePaused refuses a node whose availability is pause.
	ErrNodePaused = errors.New("policy: node paused")
	// ErrNodeDraining refuses a node whose availability is drain.
	ErrNodeDraining = errors.New("policy: node draining")
	// ErrInsufficientCPU refuses a node without enough unallocated CPU for the task.
	ErrInsufficientCPU = errors.New("policy: insufficient cpu")
	// ErrInsufficientMemory refuses a node without enough unallocated memory for the task.
	ErrInsufficientMemory = errors.New("policy: insufficient memory")
	// ErrInsufficientPids refuses a node without enough unallocated pids for the task.
	ErrInsufficientPids = errors.New("policy: insufficient pids")
	// ErrHostPortInUse refuses a node where a host port the task publishes is taken.
	ErrHostPortInUse = errors.New("policy: host port in use")
	// ErrPlatform refuses a node whose platform is not one the service runs on.
	ErrPlatform = errors.New("policy: unsupported platform")
	// ErrMaxReplicasPerNode refuses a node that already runs the most tasks of the service
	// it may.
	ErrMaxReplicasPerNode = errors.New("policy: max replicas per node reached")
	// ErrRecentFailures refuses a node where the service failed too often recently.
	ErrRecentFailures = errors.New("policy: service failed recently on node")
	// ErrConstraint is matched by every *UnmetConstraint.
	ErrConstraint = errors.New("policy: constraint not met")

	// ErrUnschedulable is matched by every *PlacementError: no node may run the task.
	ErrUnschedulable = errors.New("policy: no suitable node")
	// ErrNotAdmitted is matched by every *AdmissionError.
	ErrNotAdmitted = errors.New("policy: not admitted")
	// ErrSyntax is matched by every *SyntaxError.
	ErrSyntax = errors.New("policy: syntax error")
	// ErrInvalidPolicy is returned (wrapped) by constructors and Validate methods given
	// settings that cannot work, such as a negative window.
	ErrInvalidPolicy = errors.New("policy: invalid policy")
)
