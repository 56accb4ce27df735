package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"

	"github.com/opendao/dao"
	"github.com/opendao/dao/clock"
	"github.com/opendao/dao/cluster/pki"
)

// LocalNode is what a Client connects to the control plane: the node's own agent (an
// edge.Agent, or a simnode.Node). It is given each assignment the control plane sends, as
// orchestrator.NodeAgent is; its status reports go to Client.Report.
type LocalNode interface {
	Assign(a dao.Assignment) error
}

// TaskLister is a LocalNode that can say what it runs: a Client that has one sends the
// status of every task in its hello, so that the control plane takes the node as it finds
// it after a reconnection. edge.Agent and simnode.Node are both.
type TaskLister interface {
	Tasks() []dao.Task
}

// reportLinger is how long a status update waits for others to go with it.
const reportLinger = 10 * time.Millisecond

// Defaults of a Client.
const (
	// DefaultMinBackoff and DefaultMaxBackoff bound the wait between two connection
	// attempts: it doubles from the first to the second, with jitter (a random part of
	// up to half of it), so that a thousand nodes do not reconnect in step.
	DefaultMinBackoff = 250 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
	// DefaultReportBuffer is how many status updates a Client keeps while it cannot send
	// them; past it, only the latest of each task is kept.
	DefaultReportBuffer = 16384
)

// ClientOption configures a Client.
type ClientOption func(*clientOptions) error

type clientOptions struct {
	log          *slog.Logger
	stateDir     string
	minBackoff   time.Duration
	maxBackoff   time.Duration
	maxMsg       int
	clock        clock.Clock
	reportBuffer int
	dialTimeout  time.Duration
}

// WithClientLogger sets the logger of the client's messages. The default discards them.
func WithClientLogger(l *slog.Logger) ClientOption {
	return func(o *clientOptions) error {
		if l == nil {
			return optionError("WithClientLogger(nil)", "must not be nil")
		}
		o.log = l
		return nil
	}
}

// WithIdentityDir makes the client save its renewed certificates in dir (Identity.Save),
// where LoadIdentity finds them after a restart, and keep there (SeqFile) how far it has
// numbered its status updates, so that a restarted program numbers its updates after
// those of the last one, and the control plane orders them by their numbers rather than
// by the node's clock (dao.TaskStatus.Seq). Without it a renewed certificate lives in
// memory only, and a restarted program uses the old one while it lasts; its numbers
// start from the time of its start (in nanoseconds), so they are ordered as its clock is.
func WithIdentityDir(dir string) ClientOption {
	return func(o *clientOptions) error {
		if dir == "" {
			return optionError("WithIdentityDir(\"\")", "must not be empty")
		}
		o.stateDir = dir
		return nil
	}
}

// WithBackoff sets the shortest and longest waits between connection attempts. The
// defaults are DefaultMinBackoff and DefaultMaxBackoff.
func WithBackoff(lo, hi time.Duration) ClientOption {
	return func(o *clientOptions) error {
		if lo < time.Millisecond || hi < lo {
			return optionError(fmt.Sprintf("WithBackoff(%s, %s)", lo, hi), "want 1ms <= min <= max")
		}
		o.minBackoff, o.maxBackoff = lo, hi
		return nil
	}
}

// WithClientMaxMessageBytes sets the largest message the client takes or sends, at least
// 64 KiB. The default is DefaultMaxMessageBytes.
func WithClientMaxMessageBytes(n int) ClientOption {
	return func(o *clientOptions) error {
		if n < 64<<10 {
			return optionError(fmt.Sprintf("WithClientMaxMessageBytes(%d)", n), "must be at least 65536")
		}
		o.maxMsg = n
		return nil
	}
}

// WithClientClock sets the clock of heartbeats, renewals and the watchdog. The default is
// the system clock.
func WithClientClock(c clock.Clock) ClientOption {
	return func(o *clientOptions) error {
		if c == nil {
			return optionError("WithClientClock(nil)", "must not be nil")
		}
		o.clock = c
		return nil
	}
}

// WithReportBuffer sets how many status updates the client keeps while disconnected
// (at least 16). The default is DefaultReportBuffer.
func WithReportBuffer(n int) ClientOption {
	return func(o *clientOptions) error {
		if n < 16 {
			return optionError(fmt.Sprintf("WithReportBuffer(%d)", n), "must be at least 16")
		}
		o.reportBuffer = n
		return nil
	}
}

// Client is a node's end of the node protocol: it dials the control plane (so that a node
// behind NAT or a firewall needs no open port), says hello with the node's registration,
// beats, sends status updates in batches, and gives each assignment it receives to the
// local node. It reconnects by itself, with backoff and jitter, and resumes: the control
// plane finds the same node with the tasks it runs. It renews the node certificate at a
// random point between 50% and 80% of its lifetime, over the connection's identity.
//
// While the control plane cannot be reached, the local node works on its own: it keeps
// its assignment (edge.WithStateDir), restarts what exits, and its status updates wait in
// the client (WithReportBuffer) until they can be sent.
type Client struct {
	// addr is the control plane Run dials now: one of addrs, or the leader a standby named.
	addr     string
	addrs    []string
	redirect atomic.Pointer[string] // the leader a standby named at the last session's end
	info     dao.Node
	local    LocalNode
	opts     clientOptions
	log      *slog.Logger

	cert atomic.Pointer[tls.Certificate]
	id   *Identity

	mu    sync.Mutex
	queue []queued // updates not acknowledged, in order
	// seq numbers the updates (queued.seq, dao.TaskStatus.Seq), across restarts too.
	seq     *statusSeq
	wake    chan struct{}
	running bool
	closed  bool
	life    context.Context
	endLife context.CancelFunc

	connected atomic.Bool
	sessions  atomic.Int64
}

type queued struct {
	seq uint64
	u   dao.TaskUpdate
}

// NewClient returns a client that connects the node info, with identity id, to the
// control plane at addr (host:port), for local. addr may list the replicas of a highly
// available control plane, separated by commas: the client goes to the leader, which a
// standby names (ErrNotLeader), and tries the next replica when one cannot be reached. info.ID must be the node ID of id. It
// starts nothing: Run does.
func NewClient(addr string, id *Identity, info dao.Node, local LocalNode, opts ...ClientOption) (*Client, error) {
	o := clientOptions{
		log:          slog.New(slog.DiscardHandler),
		minBackoff:   DefaultMinBackoff,
		maxBackoff:   DefaultMaxBackoff,
		maxMsg:       DefaultMaxMessageBytes,
		clock:        clock.System(),
		reportBuffer: DefaultReportBuffer,
		dialTimeout:  10 * time.Second,
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	var addrs []string
	for a := range strings.SplitSeq(addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	switch {
	case len(addrs) == 0:
		return nil, fmt.Errorf("cluster: NewClient: %w: empty address", dao.ErrInvalid)
	case id == nil || id.Certificate.Leaf == nil || id.CA == nil:
		return nil, fmt.Errorf("cluster: NewClient: %w: no identity", dao.ErrInvalid)
	case local == nil:
		return nil, fmt.Errorf("cluster: NewClient: %w: nil local node", dao.ErrInvalid)
	}
	if info.ID == "" {
		info.ID = id.NodeID
	}
	if info.ID != id.NodeID {
		return nil, fmt.Errorf("cluster: NewClient: %w: node %s, but the certificate names %s", dao.ErrInvalid, dao.Quote(info.ID), id.NodeID)
	}
	if err := info.Validate(); err != nil {
		return nil, err
	}
	seq, err := openStatusSeq(o.stateDir, o.clock.Now())
	if seq == nil {
		return nil, err
	}
	if err != nil {
		o.log.Warn("cluster: status updates are numbered in memory only until the next start", "err", err)
	}
	life, end := context.WithCancel(context.Background())
	c := &Client{addr: addrs[0], addrs: addrs, info: info, local: local, opts: o, log: o.log, id: id,
		seq: seq, wake: make(chan struct{}, 1), life: life, endLife: end}
	cert := id.Certificate
	c.cert.Store(&cert)
	return c, nil
}

// Report queues a status update of the local node for the control plane; give it to the
// local node as its status function. It never blocks. A message or error text longer than
// dao.MaxStringBytes is cut to it, so that the control plane does not refuse the update.
func (c *Client) Report(u dao.TaskUpdate) {
	if u.TaskID == "" || !u.Status.State.Valid() {
		// It would not encode, and would cost every session after it.
		c.log.Error("cluster: a status update the local node made is not valid; dropped", "task", u.TaskID, "state", int(u.Status.State))
		return
	}
	u.Status.Message = truncate(u.Status.Message, dao.MaxStringBytes)
	u.Status.Err = truncate(u.Status.Err, dao.MaxStringBytes)
	c.mu.Lock()
	u.Status.Seq = c.number()
	c.queue = append(c.queue, queued{u.Status.Seq, u})
	if len(c.queue) > c.opts.reportBuffer {
		c.queue = coalesce(c.queue)
	}
	c.mu.Unlock()
	c.poke()
}

// number returns the next status sequence number; c.mu is held.
func (c *Client) number() uint64 {
	n, err := c.seq.next()
	if err != nil {
		c.log.Warn("cluster: status updates are numbered in memory only until the next start", "err", err)
	}
	return n
}

// truncate cuts s to at most n bytes, on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// coalesce keeps the latest update of each task, in order.
func coalesce(q []queued) []queued {
	last := make(map[string]uint64, len(q))
	for _, e := range q {
		last[e.u.TaskID] = e.seq
	}
	out := q[:0]
	for _, e := range q {
		if last[e.u.TaskID] == e.seq {
			out = append(out, e)
		}
	}
	clear(q[len(out):])
	return out
}

func (c *Client) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Connected reports whether a session with the control plane is open now.
func (c *Client) Connected() bool { return c.connected.Load() }

// Sessions returns how many sessions were opened so far.
func (c *Client) Sessions() int { return int(c.sessions.Load()) }

// Identity returns the node's current identity: its latest certificate.
func (c *Client) Identity() *Identity {
	return &Identity{NodeID: c.id.NodeID, Certificate: *c.cert.Load(), CA: c.id.CA}
}

// Run keeps the node connected until ctx is done or the client is closed, and returns
// ctx's error (ErrClosed after Close). It returns early only with an error that no retry
// can mend: the control plane refuses the node's certificate (removed, revoked, unknown
// or expired: errdefs.IsUnauthenticated or IsPermissionDenied). The local node goes on
// regardless; to come back, the node joins again.
func (c *Client) Run(ctx context.Context) error {
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return ErrClosed
	case c.running:
		c.mu.Unlock()
		return fmt.Errorf("cluster: %w: Run is already running", errdefs.ErrFailedPrecondition)
	}
	c.running = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.running = false
		c.mu.Unlock()
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.life, cancel)
	defer stop()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.renewLoop(ctx) }()
	defer func() {
		cancel()
		wg.Wait()
	}()

	r := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	attempt := 0
	var lastSaid time.Time
	for {
		if err := c.checkCertificate(); err != nil {
			return err
		}
		began := c.opts.clock.Now()
		err := c.connectOnce(ctx)
		if ctx.Err() != nil {
			if c.life.Err() != nil {
				return ErrClosed
			}
			return ctx.Err()
		}
		if permanent(err) {
			c.log.Error("cluster: the control plane refuses this node; join again", "err", err)
			return err
		}
		if c.opts.clock.Now().Sub(began) > 10*c.opts.maxBackoff {
			attempt = 0 // a long session: the next attempt starts from the shortest wait
		}
		if to := c.redirect.Swap(nil); to != nil {
			// A standby answered: the control plane is up, and leads now or will soon
			// (a failover). Go to the leader it names at once; when it names none, or
			// itself, ask again shortly. Either way, no backoff builds up.
			attempt = 0
			wait := c.opts.minBackoff
			if *to != "" && *to != c.addr {
				c.log.Info("cluster: the control plane reached is a standby; going to the leader", "standby", c.addr, "leader", *to)
				c.addr, wait = *to, c.opts.minBackoff/4
			} else if len(c.addrs) > 1 {
				i := slices.Index(c.addrs, c.addr)
				c.addr = c.addrs[(i+1)%len(c.addrs)]
			}
			if err := clock.Sleep(ctx, c.opts.clock, wait); err != nil {
				if c.life.Err() != nil {
					return ErrClosed
				}
				return err
			}
			continue
		}
		if len(c.addrs) > 1 {
			// The next replica, in case this one is lost.
			i := slices.Index(c.addrs, c.addr)
			c.addr = c.addrs[(i+1)%len(c.addrs)]
		}
		wait := backoffFor(attempt, c.opts.minBackoff, c.opts.maxBackoff, r)
		if errdefs.IsAborted(err) { // only a replacement ends a session so (ErrReplaced)
			// Another agent with this identity connected: do not fight it every moment.
			wait = max(wait, 10*c.opts.maxBackoff)
			c.log.Error("cluster: another agent with this node's identity connected; is the state directory copied?", "node", c.info.ID)
		}
		attempt++
		// Said once when the control plane is lost, then about once a minute: an agent
		// offline for a week must not fill its log with it.
		if now := c.opts.clock.Now(); attempt == 1 || now.Sub(lastSaid) >= time.Minute {
			lastSaid = now
			c.log.Info("cluster: cannot reach the control plane; the node works on, and keeps trying", "err", err, "retry_in", wait, "attempt", attempt)
		} else {
			c.log.Debug("cluster: cannot reach the control plane", "err", err, "retry_in", wait, "attempt", attempt)
		}
		if err := clock.Sleep(ctx, c.opts.clock, wait); err != nil {
			if c.life.Err() != nil {
				return ErrClosed
			}
			return err
		}
	}
}

// backoffFor returns the wait before attempt n (0 for the first retry): min doubled n
// times, at most max, less a random part of up to half of it.
func backoffFor(n int, lo, hi time.Duration, r *rand.Rand) time.Duration {
	d := lo
	for i := 0; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d - time.Duration(r.Int64N(int64(d/2)+1))
}

// permanent reports whether err is the control plane refusing the node for good.
func permanent(err error) bool {
	return errdefs.IsUnauthorized(err) || errdefs.IsPermissionDenied(err) ||
		errors.Is(err, pki.ErrExpired)
}

// checkCertificate refuses to dial with an expired certificate, with a clear error.
func (c *Client) checkCertificate() error {
	leaf := c.cert.Load().Leaf
	if now := c.opts.clock.Now(); now.After(leaf.NotAfter) {
		return fmt.Errorf("cluster: node %s: %w: its certificate expired at %s; join again with a new token",
			c.info.ID, pki.ErrExpired, leaf.NotAfter.Format(time.RFC3339))
	}
	return nil
}

// Close ends Run for good.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.endLife()
	return nil
}

// dial opens a connection to the control plane with the node's identity.
func (c *Client) dial() (*grpc.ClientConn, error) {
	cfg := clientTLS(c.id.CA, func() *tls.Certificate { return c.cert.Load() }, c.opts.clock)
	return grpc.NewClient(c.addr,
		grpc.WithTransportCredentials(credentials.NewTLS(cfg)),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(codec{}),
			grpc.MaxCallRecvMsgSize(c.opts.maxMsg), grpc.MaxCallSendMsgSize(c.opts.maxMsg)),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: c.opts.minBackoff, Multiplier: 2, Jitter: 0.2, MaxDelay: c.opts.maxBackoff},
			MinConnectTimeout: c.opts.dialTimeout,
		}))
}

// connectOnce runs one session, from dial to its end.
func (c *Client) connectOnce(ctx context.Context) error {
	cc, err := c.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// Until the welcome, the dial and hello must not take longer than dialTimeout: a
	// partitioned network gives silence, not an error.
	welcomed := make(chan time.Duration, 1)
	watchdog := time.AfterFunc(c.opts.dialTimeout, func() {
		cancel(fmt.Errorf("%w: no welcome from %s within %s", errdefs.ErrUnavailable, c.addr, c.opts.dialTimeout))
	})
	defer watchdog.Stop()

	stream, err := cc.NewStream(sctx, &grpc.StreamDesc{StreamName: "Session", ServerStreams: true, ClientStreams: true}, methodSession)
	if err != nil {
		return c.cause(sctx, err)
	}
	var lastRecv atomic.Int64
	lastRecv.Store(c.opts.clock.Now().UnixNano())
	acks := make(chan uint64, 16)
	replies := make(chan assigned, 4)
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		for {
			var m agentControlMessage
			if err := stream.RecvMsg(&m); err != nil {
				if to := stream.Trailer().Get(LeaderTrailer); len(to) > 0 {
					c.redirect.Store(&to[0]) // "" when the standby knows no leader yet
				}
				cancel(err)
				return
			}
			lastRecv.Store(c.opts.clock.Now().UnixNano())
			switch {
			case m.Welcome != nil:
				select {
				case welcomed <- m.Welcome.HeartbeatInterval.Std():
				default: // a second welcome changes nothing
				}
			case m.Assignment != nil:
				a := *m.Assignment
				reply := assigned{Epoch: a.Epoch, Revision: a.Revision}
				if err := c.local.Assign(a); err != nil {
					reply.Error = err.Error()
					c.log.Warn("cluster: assignment refused", "revision", a.Revision, "err", err)
				}
				select {
				case replies <- reply:
				case <-sctx.Done():
					return
				}
			case m.Ack != nil:
				for _, r := range m.Ack.Rejected {
					c.log.Warn("cluster: the control plane refused a status update", "task", r.TaskID, "reason", r.Reason)
				}
				if m.Ack.Seq > 0 {
					select {
					case acks <- m.Ack.Seq:
					case <-sctx.Done():
						return
					}
				}
			case m.Heartbeat != nil:
			default:
				cancel(fmt.Errorf("%w: empty or unknown message from the control plane", ErrProtocol))
				return
			}
		}
	}()
	defer func() { <-recvDone }()
	defer cancel(nil)
	// A send fails with io.EOF when the control plane ended the stream; why it did, the
	// receiver learns: give it a moment to say.
	sendFailed := func(err error) error {
		select {
		case <-recvDone:
		case <-time.After(time.Second):
		}
		return c.cause(sctx, err)
	}

	h := hello{Node: c.info}
	if tl, ok := c.local.(TaskLister); ok {
		// The statuses of the hello are numbered before they are read: an update queued
		// before is older than them (and dropped when it is sent again after them), one
		// queued after is newer.
		c.mu.Lock()
		seq := c.number()
		c.mu.Unlock()
		size := 0
		for _, t := range tl.Tasks() {
			t.Status.Seq = seq
			u := dao.TaskUpdate{TaskID: t.ID, Status: t.Status}
			if t.Status.State < dao.TaskPreparing || t.Status.State == dao.TaskOrphaned {
				continue
			}
			// What does not fit is in the queue of updates anyway, or reported again as
			// the node observes it.
			if size += updateSize(u); size > c.opts.maxMsg/2 || len(h.Tasks) == 64*maxUpdatesPerBatch {
				break
			}
			h.Tasks = append(h.Tasks, u)
		}
	}
	if err := stream.SendMsg(&agentMessage{Hello: &h}); err != nil {
		return sendFailed(err)
	}

	var interval time.Duration
	select {
	case interval = <-welcomed:
	case <-sctx.Done():
		return c.cause(sctx, nil)
	}
	watchdog.Stop()
	if interval < 10*time.Millisecond {
		interval = DefaultHeartbeatInterval
	}
	c.connected.Store(true)
	defer c.connected.Store(false)
	c.sessions.Add(1)
	c.log.Info("cluster: connected to the control plane", "address", c.addr, "heartbeat", interval)

	// The sender: heartbeats, updates not yet acknowledged, assignment replies.
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var sent, beat uint64 // highest update seq sent on this session; heartbeat seq
	var flush <-chan time.Time
	silentLimit := 3*interval + 2*time.Second
	c.poke()
	for {
		select {
		case <-sctx.Done():
			return c.cause(sctx, nil)
		case <-tick.C:
			if quiet := c.opts.clock.Now().Sub(time.Unix(0, lastRecv.Load())); quiet > silentLimit {
				return fmt.Errorf("%w: no word from the control plane for %s", errdefs.ErrUnavailable, quiet.Round(time.Millisecond))
			}
			beat++
			if err := stream.SendMsg(&agentMessage{Heartbeat: &heartbeat{Seq: beat}}); err != nil {
				return sendFailed(err)
			}
		case seq := <-acks:
			c.mu.Lock()
			i := 0
			for i < len(c.queue) && c.queue[i].seq <= seq {
				i++
			}
			c.queue = append(c.queue[:0], c.queue[i:]...)
			c.mu.Unlock()
		case r := <-replies:
			if err := stream.SendMsg(&agentMessage{Assigned: &r}); err != nil {
				return sendFailed(err)
			}
		case <-c.wake:
			// Updates come in bursts (a task prepares, starts and runs within
			// milliseconds; a node starts its tasks together): wait a moment to send
			// them in one message.
			if flush == nil {
				flush = time.After(reportLinger)
			}
			continue
		case <-flush:
			flush = nil
		}
		if flush != nil {
			continue
		}
		for {
			c.mu.Lock()
			var batch []dao.TaskUpdate
			last, size := sent, 0
			for _, e := range c.queue {
				if e.seq <= sent {
					continue
				}
				// A batch stays well under the message limit: an update is at most some
				// 10 KB (its strings are bounded), most far less.
				if len(batch) == maxUpdatesPerBatch || (len(batch) > 0 && size+updateSize(e.u) > c.opts.maxMsg/2) {
					break
				}
				batch = append(batch, e.u)
				size += updateSize(e.u)
				last = e.seq
			}
			c.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			if err := stream.SendMsg(&agentMessage{Updates: &updates{Seq: last, Updates: batch}}); err != nil {
				return sendFailed(err)
			}
			sent = last
		}
	}
}

// cause returns why a session ended, as an error of the native class.
func (c *Client) cause(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	if err == nil {
		return ctx.Err()
	}
	return errgrpc.ToNative(err)
}

// renewLoop renews the node certificate at a random point between 50% and 80% of its
// lifetime, until ctx is done; a failed renewal is tried again a minute later (or sooner,
// for short lifetimes).
func (c *Client) renewLoop(ctx context.Context) {
	for {
		leaf := c.cert.Load().Leaf
		at := pki.RenewAt(leaf, nil)
		if err := clock.Sleep(ctx, c.opts.clock, at.Sub(c.opts.clock.Now())); err != nil {
			return
		}
		for {
			err := c.renew(ctx)
			if err == nil {
				break
			}
			c.log.Warn("cluster: certificate renewal failed; trying again", "err", err)
			retry := min(time.Minute, max(leaf.NotAfter.Sub(leaf.NotBefore)/20, time.Second))
			if err := clock.Sleep(ctx, c.opts.clock, retry); err != nil {
				return
			}
		}
	}
}

// renew obtains a new certificate for a new key over an authenticated connection, saves it
// (WithIdentityDir) and uses it for the connections made from then on.
func (c *Client) renew(ctx context.Context) error {
	key, err := pki.NewNodeKey()
	if err != nil {
		return err
	}
	csr, err := pki.NewCSR(key, c.info.ID)
	if err != nil {
		return err
	}
	cc, err := c.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var resp renewResponse
	if err := cc.Invoke(ctx, methodRenew, &renewRequest{CSR: csr}, &resp); err != nil {
		return fmt.Errorf("cluster: renew: %w", errgrpc.ToNative(err))
	}
	pair, err := pki.TLSCertificate(resp.Certificate, key)
	if err != nil {
		return fmt.Errorf("cluster: renew: %w", err)
	}
	id, err := NewIdentity(pair, c.id.CA)
	if err != nil || id.NodeID != c.info.ID {
		return fmt.Errorf("cluster: renew: %w: the new certificate does not name node %s (%v)", ErrCorruptIdentity, c.info.ID, err)
	}
	if c.opts.stateDir != "" {
		if err := id.Save(c.opts.stateDir); err != nil {
			return err
		}
	}
	c.cert.Store(&id.Certificate)
	c.log.Info("cluster: certificate renewed", "expires", id.Expires().Format(time.RFC3339))
	return nil
}

// updateSize estimates the encoded size of u, from its strings.
func updateSize(u dao.TaskUpdate) int {
	n := 256 + len(u.TaskID) + len(u.Status.Message) + len(u.Status.Err) + len(u.Status.ContainerID)
	for _, a := range u.Status.Addresses {
		n += len(a) + 3
	}
	return n
}
