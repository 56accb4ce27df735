package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/containerd/errdefs/pkg/errgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/opendao/dao"
	"github.com/opendao/dao/clock"
	"github.com/opendao/dao/cluster/pki"
	"github.com/opendao/dao/orchestrator"
)

// Defaults of the protocol.
const (
	// DefaultHeartbeatInterval is how often agents beat, unless WithHeartbeatInterval
	// says otherwise: well within the orchestrator's DefaultHeartbeatTimeout.
	DefaultHeartbeatInterval = time.Second
	// DefaultHelloTimeout is how long a new session may take to say hello.
	DefaultHelloTimeout = 10 * time.Second
)

// ServerOption configures a Server.
type ServerOption func(*serverOptions) error

type serverOptions struct {
	reader       *orchestrator.Orchestrator
	caChanged    func(*pki.CA) error
	heartbeat    time.Duration
	maxMsg       int
	log          *slog.Logger
	caDir        string
	certLifetime time.Duration
	clock        clock.Clock
	helloTimeout time.Duration
}

// WithHeartbeatInterval sets how often agents beat; it must be at least 10ms and should be
// well under the orchestrator's heartbeat timeout. The default is DefaultHeartbeatInterval.
func WithHeartbeatInterval(d time.Duration) ServerOption {
	return func(o *serverOptions) error {
		if d < 10*time.Millisecond {
			return optionError(fmt.Sprintf("WithHeartbeatInterval(%s)", d), "must be at least 10ms")
		}
		o.heartbeat = d
		return nil
	}
}

// WithMaxMessageBytes sets the largest message the server takes or sends, at least 64 KiB.
// The default is DefaultMaxMessageBytes.
func WithMaxMessageBytes(n int) ServerOption {
	return func(o *serverOptions) error {
		if n < 64<<10 {
			return optionError(fmt.Sprintf("WithMaxMessageBytes(%d)", n), "must be at least 65536")
		}
		o.maxMsg = n
		return nil
	}
}

// WithServerLogger sets the logger of the server's messages. The default discards them.
func WithServerLogger(l *slog.Logger) ServerOption {
	return func(o *serverOptions) error {
		if l == nil {
			return optionError("WithServerLogger(nil)", "must not be nil")
		}
		o.log = l
		return nil
	}
}

// WithCAChanged makes the server call f after each change it makes to the CA's state
// (RemoveNode, RevokeCertificate), after WithCADir's save: how control-plane replicas
// that share a CA spread a revocation (pki.CA.MarshalState, MergeState). Its error is the
// change's.
func WithCAChanged(f func(*pki.CA) error) ServerOption {
	return func(o *serverOptions) error {
		if f == nil {
			return optionError("WithCAChanged", "nil function")
		}
		o.caChanged = f
		return nil
	}
}

// WithCADir makes the server save the CA's state (pki.CA.Save) in dir after each change it
// makes, such as RemoveNode, so that a removed node stays removed after a restart. The
// default saves nothing.
func WithCADir(dir string) ServerOption {
	return func(o *serverOptions) error {
		if dir == "" {
			return optionError("WithCADir(\"\")", "must not be empty")
		}
		o.caDir = dir
		return nil
	}
}

// WithNodeCertLifetime sets the lifetime of the node certificates the server issues, at
// joins and renewals. The default is pki.DefaultNodeCertLifetime (90 days).
func WithNodeCertLifetime(d time.Duration) ServerOption {
	return func(o *serverOptions) error {
		if d < pki.MinCertLifetime {
			return optionError(fmt.Sprintf("WithNodeCertLifetime(%s)", d), fmt.Sprintf("must be at least %s", pki.MinCertLifetime))
		}
		o.certLifetime = d
		return nil
	}
}

// WithServerClock sets the clock of certificates and hello deadlines. The default is the
// system clock.
func WithServerClock(c clock.Clock) ServerOption {
	return func(o *serverOptions) error {
		if c == nil {
			return optionError("WithServerClock(nil)", "must not be nil")
		}
		o.clock = c
		return nil
	}
}

// WithStandbyReader gives a standby server (Follow) an orchestrator to read the nodes
// from, one over the same store as the leader's that does not run the loops: it then
// takes joins itself, with its own CA's join tokens, rather than sending them to the
// leader. The leader's server reads from the orchestrator it leads with.
func WithStandbyReader(o *orchestrator.Orchestrator) ServerOption {
	return func(so *serverOptions) error {
		if o == nil {
			return optionError("WithStandbyReader", "nil orchestrator")
		}
		so.reader = o
		return nil
	}
}

// WithHelloTimeout sets how long a new session may take to say hello. The default is
// DefaultHelloTimeout.
func WithHelloTimeout(d time.Duration) ServerOption {
	return func(o *serverOptions) error {
		if d <= 0 {
			return optionError(fmt.Sprintf("WithHelloTimeout(%s)", d), "must be positive")
		}
		o.helloTimeout = d
		return nil
	}
}

// Server is the control plane's end of the node protocol: it lets nodes join with a token,
// renews their certificates, and holds one session per connected node, which it adds to
// the orchestrator as that node's orchestrator.NodeAgent. Nothing in the orchestrator
// knows the node is remote.
//
// Serve it on a listener; Close stops it and waits for everything it started.
type Server struct {
	ca   *pki.CA
	opts serverOptions
	log  *slog.Logger
	grpc *grpc.Server

	certMu  sync.Mutex
	cert    *tls.Certificate
	renewAt time.Time

	mu sync.Mutex
	// o is the orchestrator whose nodes the server serves; nil on a standby, which
	// sends the nodes to leader (see Lead and Follow).
	o        *orchestrator.Orchestrator
	leader   string
	sessions map[string]*session
	closed   bool
	wg       sync.WaitGroup
}

// NewServer returns a server for the nodes of o, whose identities ca issues. It makes its
// own serving certificate from ca (pki.CA.IssueServerCert), and makes a new one before
// that expires. o may be nil: the server is then a standby replica's, which sends the
// nodes to the leader (Follow), until Lead.
func NewServer(ca *pki.CA, o *orchestrator.Orchestrator, opts ...ServerOption) (*Server, error) {
	so := serverOptions{
		heartbeat:    DefaultHeartbeatInterval,
		maxMsg:       DefaultMaxMessageBytes,
		log:          slog.New(slog.DiscardHandler),
		clock:        clock.System(),
		helloTimeout: DefaultHelloTimeout,
	}
	for _, opt := range opts {
		if err := opt(&so); err != nil {
			return nil, err
		}
	}
	if ca == nil {
		return nil, fmt.Errorf("cluster: NewServer: %w: nil CA", dao.ErrInvalid)
	}
	s := &Server{ca: ca, o: o, opts: so, log: so.log, sessions: map[string]*session{}}
	if _, err := s.certificate(nil); err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: s.certificate,
		// A node joining has no certificate yet, and a refused one is better told why in
		// the protocol than by a TLS alert: every call but Join verifies the chain itself
		// (peerNode). TLS still proves the client holds the key of what it presents.
		ClientAuth: tls.RequestClientCert,
		Time:       so.clock.Now,
	}
	s.grpc = grpc.NewServer(
		grpc.Creds(credentials.NewTLS(cfg)),
		grpc.ForceServerCodec(codec{}),
		grpc.MaxRecvMsgSize(so.maxMsg),
		grpc.MaxSendMsgSize(so.maxMsg),
		grpc.MaxConcurrentStreams(8),
		grpc.ConnectionTimeout(10*time.Second),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
		// A connection with no call open (a node's holds its session's) is closed after a
		// minute, so that idle connections, a node's between sessions or anyone's who
		// never calls, do not pile up.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second,
			MaxConnectionIdle: time.Minute}),
	)
	s.grpc.RegisterService(serviceDesc(s), s)
	return s, nil
}

// certificate returns the serving certificate, making a new one at a random point between
// 50% and 80% of the last one's lifetime.
func (s *Server) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.certMu.Lock()
	defer s.certMu.Unlock()
	now := s.opts.clock.Now()
	if s.cert != nil && now.Before(s.renewAt) {
		return s.cert, nil
	}
	key, err := pki.NewNodeKey()
	if err != nil {
		return nil, err
	}
	der, err := s.ca.IssueServerCert(key.Public(), nil, 0)
	if err != nil {
		return nil, fmt.Errorf("cluster: serving certificate: %w", err)
	}
	cert, err := pki.TLSCertificate(der, key)
	if err != nil {
		return nil, err
	}
	// The CA goes with it: a joining node checks it against its token's pin.
	cert.Certificate = append(cert.Certificate, s.ca.CertificateDER())
	s.cert, s.renewAt = &cert, pki.RenewAt(cert.Leaf, nil)
	return s.cert, nil
}

// Serve serves the node protocol on l until Close; it returns nil after Close.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	err := s.grpc.Serve(l)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Close closes every session and listener and waits for the server's goroutines. The
// nodes are not told anything: they reconnect to the next control plane.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.grpc.Stop()
	s.wg.Wait()
	return nil
}

// LeaderTrailer is the trailer key in which a standby names the leader's address, with
// ErrNotLeader.
const LeaderTrailer = "dao-leader"

// Lead makes the server serve the nodes of o, the orchestrator of this replica, which
// now leads the control plane; Follow makes it a standby's, which sends every node to the
// leader at leaderAddr ("" when none is known yet) with ErrNotLeader. Either ends the
// sessions open, whose nodes then connect again, to the leader.
func (s *Server) Lead(o *orchestrator.Orchestrator) { s.setLeader(o, "") }

// Follow: see Lead.
func (s *Server) Follow(leaderAddr string) { s.setLeader(nil, leaderAddr) }

func (s *Server) setLeader(o *orchestrator.Orchestrator, addr string) {
	s.mu.Lock()
	if s.o == o && s.leader == addr {
		s.mu.Unlock()
		return
	}
	s.o, s.leader = o, addr
	var open []*session
	for id, ss := range s.sessions {
		if ss.o != o {
			open = append(open, ss)
			delete(s.sessions, id)
		}
	}
	s.mu.Unlock()
	for _, ss := range open {
		ss.replaced.Store(true) // its orchestrator is no longer the leader's: tell it nothing
		ss.end(s.notLeader(ss.stream.Context()))
	}
}

// leading returns the orchestrator the server serves, or, on a standby, ErrNotLeader
// with the leader's address in the call's trailer.
func (s *Server) leading(ctx context.Context) (*orchestrator.Orchestrator, error) {
	s.mu.Lock()
	o := s.o
	s.mu.Unlock()
	if o != nil {
		return o, nil
	}
	return nil, s.notLeader(ctx)
}

func (s *Server) notLeader(ctx context.Context) error {
	s.mu.Lock()
	leader := s.leader
	s.mu.Unlock()
	// Said even when no leader is known (an empty value): the agent then knows that a
	// replica is up, and that a leader will be soon.
	_ = grpc.SetTrailer(ctx, metadata.Pairs(LeaderTrailer, leader))
	if leader == "" {
		return status.Errorf(codes.Unavailable, "%v: this control plane is a standby, and no leader is known yet", ErrNotLeader)
	}
	return status.Errorf(codes.Unavailable, "%v: this control plane is a standby; the leader is at %s", ErrNotLeader, leader)
}

// Connected returns the IDs of the nodes with an open session, sorted.
func (s *Server) Connected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.sessions))
	for id := range s.sessions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// RemoveNode removes a node for good: the CA refuses its certificates from now on (and the
// CA's state is saved, with WithCADir, and given to WithCAChanged), its session is closed,
// and the orchestrator forgets it and replaces its tasks elsewhere. A standby with a
// WithStandbyReader removes the node from the store through that reader, so that it
// works at every replica; one without fails with ErrNotLeader once the CA refuses the
// node. To let a machine of that ID join again, call pki.CA.ReadmitNode.
func (s *Server) RemoveNode(ctx context.Context, id string) error {
	s.ca.RemoveNode(id)
	if err := s.saveCA(); err != nil {
		return fmt.Errorf("cluster: remove node %s: %w", id, err)
	}
	s.mu.Lock()
	sess := s.sessions[id]
	delete(s.sessions, id)
	s.mu.Unlock()
	if sess != nil {
		sess.end(status.Errorf(codes.PermissionDenied, "node %s removed from the cluster", id))
	}
	o, err := s.leading(ctx)
	if err != nil && s.opts.reader != nil {
		// The store is the leader's too: its loops see the node go, and replace its tasks.
		o, err = s.opts.reader, nil
	}
	if err != nil {
		return err
	}
	return o.RemoveNode(ctx, id)
}

// peerNode returns the node ID of the verified certificate the call was made with.
func (s *Server) peerNode(ctx context.Context) (string, error) {
	id, _, err := s.peerCert(ctx)
	return id, err
}

// peerCert returns the node ID and the leaf of the verified certificate the call was made
// with.
func (s *Server) peerCert(ctx context.Context) (string, *x509.Certificate, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", nil, status.Error(codes.Unauthenticated, "no peer")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 {
		return "", nil, status.Error(codes.Unauthenticated, "no client certificate: join the cluster first")
	}
	id, err := s.ca.Verify(ti.State.PeerCertificates)
	if err != nil {
		return "", nil, errgrpc.ToGRPC(err)
	}
	return id, ti.State.PeerCertificates[0], nil
}

// saveCA saves the CA's state as the options say.
func (s *Server) saveCA() error {
	if s.opts.caDir != "" {
		if err := s.ca.Save(s.opts.caDir); err != nil {
			return err
		}
	}
	if s.opts.caChanged != nil {
		return s.opts.caChanged(s.ca)
	}
	return nil
}

// RevokeCertificate revokes the certificate of serial number serial: the CA refuses it
// from now on (and its state is saved, with WithCADir), and a session open with it is
// closed. The node, if it holds a newer certificate, connects again with that one; a
// leaked key is cut off, the node is not. To cut off the node, RemoveNode.
func (s *Server) RevokeCertificate(serial *big.Int) error {
	if err := s.ca.RevokeSerial(serial); err != nil {
		return err
	}
	if err := s.saveCA(); err != nil {
		return fmt.Errorf("cluster: revoke certificate %s: %w", serial, err)
	}
	s.mu.Lock()
	var hit []*session
	for _, ss := range s.sessions {
		if ss.cert != nil && ss.cert.SerialNumber.Cmp(serial) == 0 {
			hit = append(hit, ss)
		}
	}
	s.mu.Unlock()
	for _, ss := range hit {
		ss.end(status.Errorf(codes.PermissionDenied, "%v: the certificate of node %s (serial %s) was revoked", pki.ErrRevoked, ss.id, serial))
	}
	return nil
}

// CheckSessions closes the sessions whose certificate the CA refuses now: after the CA's
// state changed other than through this server, as when a replica merged the state of
// another that removed a node or revoked a certificate (pki.CA.MergeState). It returns
// the IDs of the nodes whose sessions it closed.
func (s *Server) CheckSessions() []string {
	type refused struct {
		ss  *session
		err error
	}
	s.mu.Lock()
	var hit []refused
	for _, ss := range s.sessions {
		if ss.cert == nil {
			continue
		}
		if _, err := s.ca.Verify([]*x509.Certificate{ss.cert}); err != nil {
			hit = append(hit, refused{ss, err})
		}
	}
	s.mu.Unlock()
	ids := make([]string, 0, len(hit))
	for _, r := range hit {
		r.ss.end(errgrpc.ToGRPC(fmt.Errorf("node %s: %w", r.ss.id, r.err)))
		ids = append(ids, r.ss.id)
	}
	slices.Sort(ids)
	return ids
}

func (s *Server) join(ctx context.Context, req *joinRequest) (*joinResponse, error) {
	if err := pki.ValidateNodeID(req.NodeID); err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	// The token first, so that who holds none learns nothing about which IDs are taken.
	if err := s.ca.CheckJoinToken(req.Token); err != nil {
		s.log.Warn("cluster: join refused", "node", req.NodeID, "err", err)
		return nil, errgrpc.ToGRPC(err)
	}
	if err := s.claimable(ctx, req.NodeID); err != nil {
		s.log.Warn("cluster: join refused", "node", req.NodeID, "err", err)
		return nil, errgrpc.ToGRPC(err)
	}
	der, err := s.ca.Join(req.Token, req.CSR, req.NodeID, s.opts.certLifetime)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	s.log.Info("cluster: node joined", "node", req.NodeID)
	return &joinResponse{Certificate: der, CA: s.ca.CertificateDER()}, nil
}

// claimable says whether a new machine may take the node ID id: not while a node of that
// ID is connected, nor while the orchestrator knows it and it is not down. A machine that
// lost its identity and joins again waits until its old self is down.
func (s *Server) claimable(ctx context.Context, id string) error {
	s.mu.Lock()
	_, connected := s.sessions[id]
	s.mu.Unlock()
	if connected {
		return fmt.Errorf("%w: node %s is connected: remove it first, or join under another ID", ErrNodeIDInUse, id)
	}
	o, err := s.leading(ctx)
	if err != nil && s.opts.reader != nil {
		o, err = s.opts.reader, nil
	}
	if err != nil {
		return err
	}
	nodes, err := o.Nodes(ctx)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		if n.ID == id && n.Status.State != dao.NodeDown {
			return fmt.Errorf("%w: node %s is %s: remove it first, wait until it is down, or join under another ID",
				ErrNodeIDInUse, id, n.Status.State)
		}
	}
	return nil
}

func (s *Server) renew(ctx context.Context, req *renewRequest) (*renewResponse, error) {
	id, err := s.peerNode(ctx)
	if err != nil {
		return nil, err
	}
	der, err := s.ca.IssueNodeCert(req.CSR, id, s.opts.certLifetime)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	s.log.Debug("cluster: certificate renewed", "node", id)
	return &renewResponse{Certificate: der}, nil
}

// unary adapts a typed handler to a gRPC method handler.
func unary[Req, Resp any](f func(context.Context, *Req) (*Resp, error)) grpc.MethodHandler {
	return func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		req := new(Req)
		if err := dec(req); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "cluster: %v", err)
		}
		return f(ctx, req)
	}
}
