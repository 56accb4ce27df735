package cluster

import (
	"fmt"

	"google.golang.org/grpc"

	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/cborenc"
)

// The wire: one gRPC service over HTTP/2 and mutual TLS, with CBOR messages.
//
// gRPC is already in the module's graph through containerd's client, and gives what the
// protocol needs without code of our own: multiplexed streams with flow control, deadlines,
// status codes that map onto errdefs classes (errgrpc), message size limits, and TLS. The
// messages are CBOR (RFC 8949) through a codec of our own rather than protobuf: they are
// the dao types the rest of the module already speaks, with their JSON field names
// (internal/cborenc, which the etcd store writes too), and no code generator is needed to
// read or change them. CBOR rather than JSON because an assignment of 10 tasks encodes in
// half the time, decodes in a third and is a fifth smaller, and a fan-out to a thousand
// nodes is that many times over.

// ServiceName is the gRPC service of the node protocol, versioned so that a later protocol
// can be served beside this one.
const ServiceName = "dao.node.v1.Node"

// DefaultMaxMessageBytes is the largest message either side takes or sends by default: 16
// MiB, a full assignment of some 5,000 tasks of typical size. A larger message is refused
// with ResourceExhausted, and the side that would have sent it gets an error instead.
const DefaultMaxMessageBytes = 16 << 20

// maxUpdatesPerBatch bounds the status updates of one message.
const maxUpdatesPerBatch = 1024

const (
	methodJoin    = "/" + ServiceName + "/Join"
	methodRenew   = "/" + ServiceName + "/Renew"
	methodSession = "/" + ServiceName + "/Session"
)

// joinRequest asks for a node certificate with a join token. It is the one call made
// without a client certificate.
type joinRequest struct {
	Token  string `json:"token"`
	NodeID string `json:"nodeID"`
	// CSR is a PKCS #10 certificate request in DER (pki.NewCSR).
	CSR []byte `json:"csr"`
}

// joinResponse carries the node's certificate and the CA's, both in DER.
type joinResponse struct {
	Certificate []byte `json:"certificate"`
	CA          []byte `json:"ca"`
}

// renewRequest asks, over the node's authenticated connection, for a new certificate for
// the key of CSR. The node ID is the one of the certificate the call is made with.
type renewRequest struct {
	CSR []byte `json:"csr"`
}

type renewResponse struct {
	Certificate []byte `json:"certificate"`
}

// agentMessage is what an agent sends on its session; exactly one field is set.
type agentMessage struct {
	Hello     *hello     `json:"hello,omitempty"`
	Heartbeat *heartbeat `json:"heartbeat,omitempty"`
	Updates   *updates   `json:"updates,omitempty"`
	Assigned  *assigned  `json:"assigned,omitempty"`
}

// hello opens a session: the node's registration, and the last status of every task it
// runs, so that the control plane accepts what is running rather than recreating it.
type hello struct {
	Node  dao.Node         `json:"node"`
	Tasks []dao.TaskUpdate `json:"tasks,omitempty"`
}

// heartbeat says the agent is alive; the control plane answers each with one, so that
// the agent notices a dead connection too.
type heartbeat struct {
	Seq uint64 `json:"seq"`
}

// updates is a batch of status changes, numbered: the control plane acknowledges the
// highest Seq it took, and the agent sends again, after a reconnection, what was not
// acknowledged.
type updates struct {
	Seq     uint64           `json:"seq"`
	Updates []dao.TaskUpdate `json:"updates"`
}

// assigned says how the node took an assignment.
type assigned struct {
	Epoch    string `json:"epoch,omitempty"`
	Revision uint64 `json:"revision"`
	Error    string `json:"error,omitempty"`
}

// controlMessage is what the control plane sends on a session; exactly one field is set.
type controlMessage struct {
	Welcome *welcome `json:"welcome,omitempty"`
	// Assignment is the node's full assignment, encoded once when it was given to the
	// session (so that its size is checked where it is made).
	Assignment cborenc.RawMessage `json:"assignment,omitempty"`
	Heartbeat  *heartbeat         `json:"heartbeat,omitempty"`
	Ack        *ack               `json:"ack,omitempty"`
}

// welcome answers a hello.
type welcome struct {
	// HeartbeatInterval is how often the agent must beat.
	HeartbeatInterval dao.Duration `json:"heartbeatInterval"`
}

// ack acknowledges the updates up to Seq, and names those it refused, and why.
type ack struct {
	Seq      uint64      `json:"seq"`
	Rejected []rejection `json:"rejected,omitempty"`
}

// rejection is a status update the control plane refused.
type rejection struct {
	TaskID string `json:"taskID"`
	Reason string `json:"reason"`
}

// agentControlMessage is controlMessage as an agent decodes it: the assignment decoded
// once, in place.
type agentControlMessage struct {
	Welcome    *welcome        `json:"welcome,omitempty"`
	Assignment *dao.Assignment `json:"assignment,omitempty"`
	Heartbeat  *heartbeat      `json:"heartbeat,omitempty"`
	Ack        *ack            `json:"ack,omitempty"`
}

// codec is the CBOR codec of the protocol's messages. It is forced on both ends, so no
// global registration is needed.
type codec struct{}

func (codec) Name() string { return "dao-cbor" }

// assignmentKey is the CBOR head of a map of one pair and its key, "assignment".
var assignmentKey = append([]byte{0xa1, 0x60 | byte(len("assignment"))}, "assignment"...)

func (codec) Marshal(v any) ([]byte, error) {
	if m, ok := v.(*controlMessage); ok && m.Assignment != nil && m.Welcome == nil && m.Heartbeat == nil && m.Ack == nil {
		// The assignment was encoded (and so checked) by Session.Assign: wrapped as it is.
		b := make([]byte, 0, len(assignmentKey)+len(m.Assignment))
		b = append(b, assignmentKey...)
		return append(b, m.Assignment...), nil
	}
	return cborenc.Marshal(v)
}

func (codec) Unmarshal(data []byte, v any) error {
	// cborenc.Unmarshal refuses trailing data itself.
	if err := cborenc.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	return nil
}

// serviceDesc is the node service's descriptor, written by hand in place of generated code.
func serviceDesc(s *Server) *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: ServiceName,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			{MethodName: "Join", Handler: unary(s.join)},
			{MethodName: "Renew", Handler: unary(s.renew)},
		},
		Streams: []grpc.StreamDesc{{
			StreamName:    "Session",
			Handler:       func(_ any, stream grpc.ServerStream) error { return s.session(stream) },
			ServerStreams: true,
			ClientStreams: true,
		}},
	}
}
