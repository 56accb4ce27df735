package cluster

import (
	"fmt"

	"github.com/containerd/errdefs"

	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/errclass"
)

// Errors of the cluster package, each of one of containerd's error classes (package
// github.com/containerd/errdefs). The errors the control plane sends back arrive at the
// agent as errors of the same class (through errgrpc), with the control plane's text; the
// pki package's errors (a bad token, a revoked certificate) keep their class across the
// wire too.
var (
	// ErrInvalidOption (dao.ErrInvalid): an option was given a value it cannot take.
	ErrInvalidOption = errclass.New(dao.ErrInvalid, "cluster: invalid option")
	// ErrNotConnected (errdefs.ErrUnavailable): the node's session is not open, so an
	// assignment cannot reach it now; it is sent again when the node reconnects.
	ErrNotConnected = errclass.New(errdefs.ErrUnavailable, "cluster: node not connected")
	// ErrMessageTooLarge (errdefs.ErrResourceExhausted): a message is larger than the
	// limit (DefaultMaxMessageBytes, or WithMaxMessageBytes).
	ErrMessageTooLarge = errclass.New(errdefs.ErrResourceExhausted, "cluster: message too large")
	// ErrNodeIDInUse (errdefs.ErrAlreadyExists): a join names a node ID that a node still
	// holds: it is connected, or known to the control plane and not down. Remove that node
	// first, or wait until it is down, or join under another ID.
	ErrNodeIDInUse = errclass.New(errdefs.ErrAlreadyExists, "cluster: node ID in use")
	// ErrNotYourTask (errdefs.ErrPermissionDenied): a node reported the status of a task
	// that is not assigned to it. The update is refused; nothing changes.
	ErrNotYourTask = errclass.New(errdefs.ErrPermissionDenied, "cluster: task of another node")
	// ErrProtocol (errdefs.ErrInvalidArgument): a peer broke the protocol: a session that
	// does not start with a hello, a hello naming another node than the certificate, an
	// empty or unknown message.
	ErrProtocol = errclass.New(dao.ErrInvalid, "cluster: protocol violation")
	// ErrReplaced (errdefs.ErrAborted): a newer connection of the same node replaced this
	// session. Two agents that share one identity keep replacing each other; the agent
	// says so in its log.
	ErrReplaced = errclass.New(errdefs.ErrAborted, "cluster: session replaced by a newer connection of the node")
	// ErrNoIdentity (errdefs.ErrNotFound): a state directory holds no identity: the node
	// has not joined.
	ErrNoIdentity = errclass.New(errdefs.ErrNotFound, "cluster: no node identity")
	// ErrCorruptIdentity (errdefs.ErrDataLoss): a state directory's identity files do
	// not decode, or do not belong together.
	ErrCorruptIdentity = errclass.New(errdefs.ErrDataLoss, "cluster: node identity corrupt")
	// ErrNotLeader (errdefs.ErrUnavailable): the control plane reached is a standby
	// replica (Server.Follow); it names the leader, to which the agent goes.
	ErrNotLeader = errclass.New(errdefs.ErrUnavailable, "cluster: not the leader")
	// ErrClosed (errdefs.ErrUnavailable): the Server or Client was closed.
	ErrClosed = errclass.New(errdefs.ErrUnavailable, "cluster: closed")
)

func optionError(option, reason string) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidOption, option, reason)
}
