package cluster

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/errdefs/pkg/errgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/cborenc"
	"github.com/opendao/dao/orchestrator"
)

// session is the control plane's side of one node's connection: the node's
// orchestrator.NodeAgent while it lasts.
type session struct {
	s      *Server
	o      *orchestrator.Orchestrator // the one the session serves, the leader's of its start
	id     string
	cert   *x509.Certificate // the leaf the session was opened with
	stream grpc.ServerStream
	ctx    context.Context
	cancel context.CancelCauseFunc

	mu         sync.Mutex
	assignment cborenc.RawMessage // the latest assignment not yet sent
	out        []controlMessage   // welcome, heartbeats, acks, in order
	owned      map[string]bool    // task IDs of the last two assignments given
	prevOwned  map[string]bool
	wake       chan struct{}
	lastRecv   atomic.Int64 // unix nanoseconds of the last message received
	replaced   atomic.Bool
}

var _ orchestrator.NodeAgent = (*session)(nil)

// Assign queues the node's assignment for sending; only the latest one queued is sent. It
// fails with ErrNotConnected once the session ended (the orchestrator sends it again when
// the node beats, on its next session), and with ErrMessageTooLarge when the assignment
// encodes to more than the message limit.
func (ss *session) Assign(a dao.Assignment) error {
	if ss.ctx.Err() != nil {
		return fmt.Errorf("%w: node %s", ErrNotConnected, ss.id)
	}
	b, err := cborenc.Marshal(a)
	if err != nil {
		return fmt.Errorf("cluster: encode assignment of node %s: %w", ss.id, err)
	}
	if limit := ss.s.opts.maxMsg - 1024; len(b) > limit {
		return fmt.Errorf("%w: the assignment of node %s (%d tasks) encodes to %d bytes, over the limit of %d",
			ErrMessageTooLarge, ss.id, len(a.Tasks), len(b), limit)
	}
	owned := make(map[string]bool, len(a.Tasks))
	for _, t := range a.Tasks {
		owned[t.ID] = true
	}
	ss.mu.Lock()
	ss.assignment = b
	ss.prevOwned, ss.owned = ss.owned, owned
	ss.mu.Unlock()
	ss.poke()
	return nil
}

func (ss *session) poke() {
	select {
	case ss.wake <- struct{}{}:
	default:
	}
}

func (ss *session) send(m controlMessage) {
	ss.mu.Lock()
	ss.out = append(ss.out, m)
	ss.mu.Unlock()
	ss.poke()
}

// end closes the session with err, which the node is told.
func (ss *session) end(err error) { ss.cancel(err) }

// sender sends what is queued until the session ends.
func (ss *session) sender() {
	for {
		select {
		case <-ss.ctx.Done():
			return
		case <-ss.wake:
		}
		for {
			ss.mu.Lock()
			out, as := ss.out, ss.assignment
			ss.out, ss.assignment = nil, nil
			ss.mu.Unlock()
			if len(out) == 0 && as == nil {
				break
			}
			for i := range out {
				if err := ss.stream.SendMsg(&out[i]); err != nil {
					ss.cancel(err)
					return
				}
			}
			if as != nil {
				if err := ss.stream.SendMsg(&controlMessage{Assignment: as}); err != nil {
					ss.cancel(err)
					return
				}
			}
		}
	}
}

// receiver handles what the node sends until the session ends.
func (ss *session) receiver() {
	for {
		var m agentMessage
		if err := ss.stream.RecvMsg(&m); err != nil {
			ss.cancel(err)
			return
		}
		ss.lastRecv.Store(ss.s.opts.clock.Now().UnixNano())
		if err := ss.handle(&m); err != nil {
			ss.cancel(err)
			return
		}
	}
}

func (ss *session) handle(m *agentMessage) error {
	o := ss.o
	switch {
	case m.Heartbeat != nil:
		if err := o.Heartbeat(ss.id); err != nil {
			return errgrpc.ToGRPC(err)
		}
		ss.send(controlMessage{Heartbeat: &heartbeat{Seq: m.Heartbeat.Seq}})
	case m.Updates != nil:
		if n := len(m.Updates.Updates); n > maxUpdatesPerBatch {
			return status.Errorf(codes.InvalidArgument, "%v: %d status updates in one message, more than %d", ErrProtocol, n, maxUpdatesPerBatch)
		}
		rejected := ss.report(m.Updates.Updates)
		ss.send(controlMessage{Ack: &ack{Seq: m.Updates.Seq, Rejected: rejected}})
	case m.Assigned != nil:
		if m.Assigned.Error != "" {
			ss.s.log.Warn("cluster: node refused its assignment", "node", ss.id,
				"epoch", m.Assigned.Epoch, "revision", m.Assigned.Revision, "err", m.Assigned.Error)
		}
	case m.Hello != nil:
		return status.Errorf(codes.InvalidArgument, "%v: a second hello in one session", ErrProtocol)
	default:
		return status.Errorf(codes.InvalidArgument, "%v: empty or unknown message", ErrProtocol)
	}
	return nil
}

// report hands the orchestrator the updates of the node's own tasks, and returns the others,
// refused. A task is the node's when the last two assignments given to this session name it,
// or else when the store says so.
func (ss *session) report(ups []dao.TaskUpdate) []rejection {
	var rejected []rejection
	for _, u := range ups {
		if err := ss.check(u); err != nil {
			ss.s.log.Warn("cluster: status update refused", "node", ss.id, "task", u.TaskID, "err", err)
			rejected = append(rejected, rejection{TaskID: u.TaskID, Reason: err.Error()})
			continue
		}
		ss.o.ReportStatus(ss.id, u)
	}
	return rejected
}

func (ss *session) check(u dao.TaskUpdate) error {
	if u.TaskID == "" {
		return fmt.Errorf("%w: status update without a task ID", ErrProtocol)
	}
	if err := checkStatus(u.Status); err != nil {
		return fmt.Errorf("%w: task %s: %v", ErrProtocol, dao.Quote(u.TaskID), err)
	}
	ss.mu.Lock()
	mine := ss.owned[u.TaskID] || ss.prevOwned[u.TaskID]
	ss.mu.Unlock()
	if mine {
		return nil
	}
	t, err := ss.o.Task(ss.ctx, u.TaskID)
	switch {
	case errors.Is(err, orchestrator.ErrNotFound):
		return fmt.Errorf("task %s: %w", dao.Quote(u.TaskID), err)
	case err != nil:
		return err
	case t.NodeID != ss.id:
		return fmt.Errorf("%w: task %s is not assigned to node %s", ErrNotYourTask, dao.Quote(u.TaskID), ss.id)
	}
	return nil
}

// session serves one node's Session stream: its hello, then its heartbeats and updates one
// way and its assignments the other, until either side ends it. A newer session of the same
// node replaces it.
func (s *Server) session(stream grpc.ServerStream) error {
	id, cert, err := s.peerCert(stream.Context())
	if err != nil {
		return err
	}
	o, err := s.leading(stream.Context())
	if err != nil {
		return err
	}
	var first agentMessage
	got := make(chan error, 1)
	go func() { got <- stream.RecvMsg(&first) }()
	timer := time.NewTimer(s.opts.helloTimeout)
	defer timer.Stop()
	select {
	case err := <-got:
		if err != nil {
			return err
		}
	case <-timer.C:
		return status.Errorf(codes.DeadlineExceeded, "%v: no hello within %s", ErrProtocol, s.opts.helloTimeout)
	}
	h := first.Hello
	if h == nil {
		return status.Errorf(codes.InvalidArgument, "%v: the first message of a session must be a hello", ErrProtocol)
	}
	node := h.Node
	if node.ID != id {
		return status.Errorf(codes.PermissionDenied, "%v: the certificate names node %s, the hello %s", ErrProtocol, id, dao.Quote(node.ID))
	}
	// The control plane owns these: the node's status is what it judges, its availability
	// what the operator set.
	node.Status, node.Availability = dao.NodeStatus{}, ""
	if err := node.Validate(); err != nil {
		return status.Errorf(codes.InvalidArgument, "%v", err)
	}
	if len(h.Tasks) > 64*maxUpdatesPerBatch {
		return status.Errorf(codes.InvalidArgument, "%v: hello with %d tasks, more than %d", ErrProtocol, len(h.Tasks), 64*maxUpdatesPerBatch)
	}

	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(nil)
	ss := &session{s: s, o: o, id: id, cert: cert, stream: stream, ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1)}
	// A session lasts no longer than the certificate it was opened with: the node, which
	// renewed it long before, connects again with the new one.
	expiry := s.opts.clock.AfterFunc(cert.NotAfter.Sub(s.opts.clock.Now()), func() {
		cancel(status.Errorf(codes.Unavailable, "the certificate of node %s expired at %s: connect again with a renewed one",
			id, cert.NotAfter.Format(time.RFC3339)))
	})
	defer expiry.Stop()
	ss.lastRecv.Store(s.opts.clock.Now().UnixNano())
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return status.Error(codes.Unavailable, ErrClosed.Error())
	}
	old := s.sessions[id]
	s.sessions[id] = ss
	s.wg.Add(2)
	s.mu.Unlock()
	if old != nil {
		old.replaced.Store(true)
		old.end(status.Error(codes.Aborted, ErrReplaced.Error()))
		s.log.Info("cluster: node reconnected; its previous session is replaced", "node", id)
	}
	go func() { defer s.wg.Done(); ss.sender() }()
	go func() { defer s.wg.Done(); ss.receiver() }()

	ss.send(controlMessage{Welcome: &welcome{HeartbeatInterval: dao.Duration(s.opts.heartbeat)}})
	if err := o.AddNode(ctx, node, ss); err != nil {
		cancel(errgrpc.ToGRPC(err))
	} else {
		s.log.Info("cluster: node connected", "node", id, "tasks", len(h.Tasks))
		if rejected := ss.report(h.Tasks); len(rejected) > 0 {
			ss.send(controlMessage{Ack: &ack{Rejected: rejected}})
		}
	}

	<-ctx.Done()
	cause := context.Cause(ctx)
	s.mu.Lock()
	current := s.sessions[id] == ss
	if current {
		delete(s.sessions, id)
	}
	closing := s.closed
	s.mu.Unlock()
	if current && !closing && !ss.replaced.Load() {
		// A connection that closes while the node talked on it is the node's program
		// going away (its kernel closes the socket): the grace starts now. One that was
		// silent before it broke is a network's doing: liveness judges it by silence.
		quiet := s.opts.clock.Now().Sub(time.Unix(0, ss.lastRecv.Load()))
		if quiet < 3*s.opts.heartbeat {
			_ = o.Disconnect(id, "connection closed by the node")
		}
		s.log.Info("cluster: node session ended", "node", id, "cause", cause, "quiet", quiet)
	}
	if st, ok := status.FromError(cause); ok && st.Code() != codes.OK && st.Code() != codes.Canceled {
		return st.Err()
	}
	return nil
}

// checkStatus refuses a status a node may not report: one in a state only the control plane
// writes, or whose strings are over dao's limits, so that no node can make the store keep
// what it would not take from a user.
func checkStatus(st dao.TaskStatus) error {
	switch {
	case !st.State.Valid():
		return fmt.Errorf("status.state %d is not a task state", st.State)
	case st.State < dao.TaskPreparing || st.State == dao.TaskOrphaned:
		return fmt.Errorf("status.state %s is the control plane's to write", st.State)
	case len(st.Message) > dao.MaxStringBytes:
		return fmt.Errorf("status.message is %d bytes, more than %d", len(st.Message), dao.MaxStringBytes)
	case len(st.Err) > dao.MaxStringBytes:
		return fmt.Errorf("status.err is %d bytes, more than %d", len(st.Err), dao.MaxStringBytes)
	case len(st.ContainerID) > dao.MaxStringBytes:
		return fmt.Errorf("status.containerID is %d bytes, more than %d", len(st.ContainerID), dao.MaxStringBytes)
	case len(st.Addresses) > dao.MaxItems:
		return fmt.Errorf("status.addresses has %d items, more than %d", len(st.Addresses), dao.MaxItems)
	}
	for i, a := range st.Addresses {
		if len(a) > dao.MaxStringBytes {
			return fmt.Errorf("status.addresses[%d] is %d bytes, more than %d", i, len(a), dao.MaxStringBytes)
		}
	}
	return nil
}
