package main

// The admin API of dao control-plane: what dao node and dao service call.
//
// It is HTTP with JSON bodies on a unix socket in the control plane's state directory,
// DIR/admin.sock, made mode 0600 and owned by the user who runs the control plane, and every
// connection's peer is checked by the kernel's word (SO_PEERCRED): only that user and root
// are served. That is containerd's way (its socket is root's, 0660), and etcdctl's or
// k3s's on a server (a root-only kubeconfig), rather than mTLS with an admin certificate
// from the cluster's CA, for three reasons:
//
//   - Nothing to issue, rotate, revoke or leak: the file's permissions are the
//     authentication, and an operator who can read the CA's key in DIR (the same user)
//     could mint any certificate anyway, so a certificate would add no barrier.
//   - Nothing on the network: the node port (--listen) never serves admin calls, so a
//     node's certificate, which anyone with a join token can get, can never be an
//     admin's, and a mistake in telling the two apart cannot exist.
//   - Every replica of an HA control plane has its own socket and serves the calls
//     itself, through the shared store in etcd: no admin call needs the leader.
//
// The cost: administration is local to a replica's machine (ssh there, as with ctr).
// The paths are /v1/nodes, /v1/nodes/{id}, /v1/services, /v1/services/{name} and
// /v1/services/{name}/scale; an error is a status code of errdefs' class
// (errhttp.ToHTTP) and {"error": "what to do"}.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errhttp"
	"golang.org/x/sys/unix"

	"github.com/opendao/dao"
	"github.com/opendao/dao/cluster"
	"github.com/opendao/dao/orchestrator"
)

// adminSocketName is the admin socket's name in the control plane's state directory.
const adminSocketName = "admin.sock"

// maxSocketPath is the longest path a unix socket can have on Linux (sun_path, less the NUL).
const maxSocketPath = 107

// defaultDrainTimeout is how long dao node rm waits for a node's tasks to stop.
const defaultDrainTimeout = time.Minute

// adminSocket returns the admin socket's path in stateDir, or an error when it is too long
// for a unix socket.
func adminSocket(stateDir string) (string, error) {
	p := filepath.Join(stateDir, adminSocketName)
	if len(p) > maxSocketPath {
		return "", fmt.Errorf("the admin socket %s is %d bytes long, more than a unix socket takes (%d): give a shorter --state-dir", p, len(p), maxSocketPath)
	}
	return p, nil
}

// adminServer serves the admin API of one control plane (or replica).
type adminServer struct {
	// o serves the API: the control plane's orchestrator, or a replica's that runs no
	// loops (the leader's do the work, over the same store).
	o   *orchestrator.Orchestrator
	srv *cluster.Server
	log *slog.Logger
	// uid is the user served, besides root.
	uid int
	// poll is how often a drain checks the node's tasks.
	poll time.Duration
}

// listenAdmin listens on the admin socket of stateDir, mode 0600. A socket left by a
// control plane that died is replaced; one that answers is another control plane's, and
// an error.
func listenAdmin(stateDir string) (net.Listener, string, error) {
	path, err := adminSocket(stateDir)
	if err != nil {
		return nil, "", err
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, "", fmt.Errorf("another control plane serves %s: it runs on this state directory already", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, "", err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, "", err
	}
	l.(*net.UnixListener).SetUnlinkOnClose(true)
	// The umask may have left it open to others for a moment: the peer check covers that.
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, "", err
	}
	return l, path, nil
}

type peerKey struct{}

// serve serves the admin API on l until ctx is done.
func (a *adminServer) serve(ctx context.Context, l net.Listener) error {
	if a.poll == 0 {
		a.poll = 100 * time.Millisecond
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/nodes", a.handle(a.nodes))
	mux.HandleFunc("DELETE /v1/nodes/{id}", a.handle(a.removeNode))
	mux.HandleFunc("GET /v1/services", a.handle(a.services))
	mux.HandleFunc("DELETE /v1/services/{name}", a.handle(a.removeService))
	mux.HandleFunc("POST /v1/services/{name}/scale", a.handle(a.scaleService))
	hs := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, peerKey{}, peerUID(c))
		},
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	stop := context.AfterFunc(ctx, func() { _ = hs.Close() })
	defer stop()
	err := hs.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// peerUID returns the user ID of the process at the other end of a unix connection, or -1.
func peerUID(c net.Conn) int {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return -1
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return -1
	}
	uid := -1
	_ = raw.Control(func(fd uintptr) {
		if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			uid = int(cred.Uid)
		}
	})
	return uid
}

// adminError is the body of an admin API error.
type adminError struct {
	Error string `json:"error"`
}

// handle adapts f to a handler: the caller's user is checked first; f's result is written
// as JSON, its error with the status of its class.
func (a *adminServer) handle(f func(r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		uid, _ := r.Context().Value(peerKey{}).(int)
		if uid != 0 && uid != a.uid {
			w.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(w).Encode(adminError{fmt.Sprintf("user %d may not administer this control plane: run as user %d (who runs it) or root", uid, a.uid)})
			return
		}
		v, err := f(r)
		if err != nil {
			a.log.Debug("dao control-plane: admin call failed", "method", r.Method, "path", r.URL.Path, "err", err)
			w.WriteHeader(errhttp.ToHTTP(err))
			_ = json.NewEncoder(w).Encode(adminError{err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(v)
	}
}

// nodeEntry is one node of dao node ls -o json. Its field names do not change.
type nodeEntry struct {
	ID           string            `json:"ID"`
	Hostname     string            `json:"Hostname"`
	Status       string            `json:"Status"`
	Message      string            `json:"Message,omitempty"`
	Availability string            `json:"Availability"`
	Platform     string            `json:"Platform,omitempty"`
	MilliCPU     int64             `json:"MilliCPU,omitempty"`
	Memory       int64             `json:"Memory,omitempty"`
	Tasks        int               `json:"Tasks"`
	LastSeen     *time.Time        `json:"LastSeen,omitempty"`
	Labels       map[string]string `json:"Labels,omitempty"`
}

func (a *adminServer) nodes(r *http.Request) (any, error) {
	ctx := r.Context()
	nodes, err := a.o.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	tasks, err := a.o.Tasks(ctx, orchestrator.TaskFilter{Live: true})
	if err != nil {
		return nil, err
	}
	count := map[string]int{}
	for _, t := range tasks {
		count[t.NodeID]++
	}
	out := make([]nodeEntry, 0, len(nodes))
	for _, n := range nodes {
		e := nodeEntry{ID: n.ID, Hostname: n.Hostname, Status: string(n.Status.State), Message: n.Status.Message,
			Availability: string(n.Availability), MilliCPU: n.Capacity.MilliCPU, Memory: n.Capacity.Memory,
			Tasks: count[n.ID], Labels: n.Labels}
		if e.Availability == "" {
			e.Availability = string(dao.Active)
		}
		if n.Platform.OS != "" {
			e.Platform = n.Platform.String()
		}
		if !n.Status.LastSeen.IsZero() {
			t := n.Status.LastSeen.UTC()
			e.LastSeen = &t
		}
		out = append(out, e)
	}
	return out, nil
}

// nodeRemoval is what dao node rm did.
type nodeRemoval struct {
	ID string `json:"ID"`
	// State is the node's state when it was removed: ready, disconnected or down.
	State string `json:"State"`
	// Drained says whether its tasks were stopped before it went; Stopped counts them.
	Drained bool `json:"Drained"`
	Stopped int  `json:"Stopped"`
	// Replaced counts the tasks that had not ended, to be replaced elsewhere.
	Replaced int `json:"Replaced"`
}

// removeNode drains a ready node (unless force) until its tasks stopped, then removes it
// (cluster.Server.RemoveNode): its certificates are refused from then on.
func (a *adminServer) removeNode(r *http.Request) (any, error) {
	ctx := r.Context()
	id := r.PathValue("id")
	force := r.URL.Query().Get("force") == "true"
	timeout := defaultDrainTimeout
	if v := r.URL.Query().Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, errorOf(errdefs.ErrInvalidArgument, "timeout %q: want a positive duration such as 1m", v)
		}
		timeout = d
	}
	node, err := a.node(ctx, id)
	if err != nil {
		return nil, err
	}
	res := nodeRemoval{ID: id, State: string(node.Status.State)}
	if !force && node.Status.State == dao.NodeReady {
		before, err := a.liveOn(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := a.o.DrainNode(ctx, id); err != nil {
			return nil, err
		}
		if err := a.waitDrained(ctx, id, timeout); err != nil {
			return nil, err
		}
		res.Drained, res.Stopped = true, before
	}
	if res.Replaced, err = a.liveOn(ctx, id); err != nil {
		return nil, err
	}
	if err := a.srv.RemoveNode(ctx, id); err != nil {
		return nil, fmt.Errorf("remove node %s: %w", id, err)
	}
	a.log.Info("dao control-plane: node removed by the admin API", "node", id, "drained", res.Drained)
	return res, nil
}

// node returns the node id, or an error that says how to find the right one.
func (a *adminServer) node(ctx context.Context, id string) (*orchestrator.Node, error) {
	nodes, err := a.o.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for i := range nodes {
		if nodes[i].ID == id {
			return &nodes[i], nil
		}
		ids = append(ids, nodes[i].ID)
	}
	return nil, errorOf(errdefs.ErrNotFound, "no node %q in the cluster%s", id, closest(id, ids, "dao node ls"))
}

// liveOn counts the tasks on the node that have not ended, whatever they are meant to do.
func (a *adminServer) liveOn(ctx context.Context, id string) (int, error) {
	ts, err := a.o.Tasks(ctx, orchestrator.TaskFilter{NodeID: id})
	n := 0
	for _, t := range ts {
		if !t.Status.State.Terminal() {
			n++
		}
	}
	return n, err
}

// waitDrained waits until no task on the node runs, or timeout.
func (a *adminServer) waitDrained(ctx context.Context, id string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		n, err := a.liveOn(ctx, id)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return errorOf(errdefs.ErrFailedPrecondition, "node %s still runs %s after %s of draining; it stays drained (it takes no new tasks): "+
				"try again later, or give --force to remove it now (its tasks are then replaced elsewhere, "+
				"and its containers run on until its agent is stopped)",
				id, plural(n, "task", "tasks"), timeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s drained, not removed: %w", id, ctx.Err())
		case <-time.After(a.poll):
		}
	}
}

// serviceEntry is one service of dao service ls -o json. Its field names do not change.
type serviceEntry struct {
	Name string `json:"Name"`
	// Mode is replicated or global.
	Mode string `json:"Mode"`
	// Replicas is the count asked for (0 for a global service); Running the tasks running.
	Replicas int    `json:"Replicas"`
	Running  int    `json:"Running"`
	Image    string `json:"Image"`
	Version  uint64 `json:"Version"`
	// UpdateState is the last rolling update's: in-progress, completed, paused, ...
	UpdateState   string     `json:"UpdateState,omitempty"`
	UpdateMessage string     `json:"UpdateMessage,omitempty"`
	CreatedAt     *time.Time `json:"CreatedAt,omitempty"`
	UpdatedAt     *time.Time `json:"UpdatedAt,omitempty"`
}

func (a *adminServer) entry(ctx context.Context, s *orchestrator.Service) (serviceEntry, error) {
	ts, err := a.o.Tasks(ctx, orchestrator.TaskFilter{ServiceID: s.ID, Live: true})
	if err != nil {
		return serviceEntry{}, err
	}
	e := serviceEntry{Name: s.ID, Mode: "replicated", Replicas: s.Spec.Replicas, Image: s.Spec.Container.Image,
		Version: s.Version, UpdateState: string(s.UpdateStatus.State), UpdateMessage: s.UpdateStatus.Message}
	if s.Spec.Mode == dao.ModeGlobal {
		e.Mode, e.Replicas = "global", 0
	}
	for _, t := range ts {
		if t.Status.State == dao.TaskRunning {
			e.Running++
		}
	}
	if !s.CreatedAt.IsZero() {
		t := s.CreatedAt.UTC()
		e.CreatedAt = &t
	}
	if !s.UpdatedAt.IsZero() {
		t := s.UpdatedAt.UTC()
		e.UpdatedAt = &t
	}
	return e, nil
}

func (a *adminServer) services(r *http.Request) (any, error) {
	ctx := r.Context()
	ss, err := a.o.Services(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]serviceEntry, 0, len(ss))
	for i := range ss {
		e, err := a.entry(ctx, &ss[i])
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// service returns the service name, or an error that says how to find the right one.
func (a *adminServer) service(ctx context.Context, name string) (*orchestrator.Service, error) {
	s, err := a.o.Service(ctx, name)
	if !errdefs.IsNotFound(err) {
		return s, err
	}
	ss, err := a.o.Services(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range ss {
		names = append(names, s.ID)
	}
	return nil, errorOf(errdefs.ErrNotFound, "no service %q%s", name, closest(name, names, "dao service ls"))
}

// serviceRemoval is what dao service rm did.
type serviceRemoval struct {
	Name string `json:"Name"`
	// Stopping counts the tasks being shut down.
	Stopping int `json:"Stopping"`
}

func (a *adminServer) removeService(r *http.Request) (any, error) {
	ctx := r.Context()
	name := r.PathValue("name")
	if _, err := a.service(ctx, name); err != nil {
		return nil, err
	}
	ts, err := a.o.Tasks(ctx, orchestrator.TaskFilter{ServiceID: name, Live: true})
	if err != nil {
		return nil, err
	}
	if err := a.o.RemoveService(ctx, name); err != nil {
		return nil, fmt.Errorf("remove service %s: %w", name, err)
	}
	return serviceRemoval{Name: name, Stopping: len(ts)}, nil
}

// scaleRequest is the body of /v1/services/{name}/scale.
type scaleRequest struct {
	Replicas int `json:"replicas"`
}

func (a *adminServer) scaleService(r *http.Request) (any, error) {
	ctx := r.Context()
	name := r.PathValue("name")
	var req scaleRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, errorOf(errdefs.ErrInvalidArgument, "the request's body: %v", err)
	}
	if _, err := a.service(ctx, name); err != nil {
		return nil, err
	}
	s, err := a.o.ScaleService(ctx, name, req.Replicas)
	if err != nil {
		return nil, err
	}
	return a.entry(ctx, s)
}

// closest is a hint for a name not found: `: did you mean "web"?` for a close one, else
// where the names are listed.
func closest(typed string, names []string, lister string) string {
	best, pick := 3, ""
	for _, n := range names {
		if d := editDistance(typed, n); d < best {
			best, pick = d, n
		}
	}
	if pick != "" {
		return fmt.Sprintf(": did you mean %q?", pick)
	}
	return " (" + lister + " lists them)"
}

// adminClient calls the admin API of the control plane whose state directory is given.
type adminClient struct {
	socket string
	hc     *http.Client
}

func newAdminClient(stateDir string) (*adminClient, error) {
	dir, err := filepath.Abs(stateDir)
	if err != nil {
		return nil, err
	}
	path, err := adminSocket(dir)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &adminClient{socket: path, hc: &http.Client{Transport: tr}}, nil
}

// classError is an error whose text is msg, of an errdefs class: the admin API's own,
// which say what to do without the class's name in front.
type classError struct {
	class error
	msg   string
}

func (e *classError) Error() string { return e.msg }
func (e *classError) Unwrap() error { return e.class }

func errorOf(class error, format string, args ...any) error {
	return &classError{class: class, msg: fmt.Sprintf(format, args...)}
}

// call makes a request and decodes the answer into out.
func (c *adminClient) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://dao"+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.dialError(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read the control plane's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e adminError
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("the control plane answered %s", resp.Status)
		}
		return &classError{class: errhttp.ToNative(resp.StatusCode), msg: e.Error}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("the control plane's answer does not decode (is it another version of dao?): %w", err)
	}
	return nil
}

// dialError says what to do about a control plane that cannot be reached.
func (c *adminClient) dialError(err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		return errorOf(errdefs.ErrUnavailable, "no control plane at %s: is dao control-plane running with this --state-dir?", c.socket)
	case errors.Is(err, fs.ErrPermission):
		return errorOf(errdefs.ErrPermissionDenied, "%s: permission denied: run as the user who runs the control plane, or root", c.socket)
	}
	return errorOf(errdefs.ErrUnavailable, "the control plane at %s: %v", c.socket, err)
}

func (c *adminClient) nodes(ctx context.Context) ([]nodeEntry, error) {
	var out []nodeEntry
	return out, c.call(ctx, http.MethodGet, "/v1/nodes", nil, &out)
}

func (c *adminClient) removeNode(ctx context.Context, id string, force bool, timeout time.Duration) (nodeRemoval, error) {
	var out nodeRemoval
	path := "/v1/nodes/" + url.PathEscape(id) + "?timeout=" + timeout.String()
	if force {
		path += "&force=true"
	}
	return out, c.call(ctx, http.MethodDelete, path, nil, &out)
}

func (c *adminClient) services(ctx context.Context) ([]serviceEntry, error) {
	var out []serviceEntry
	return out, c.call(ctx, http.MethodGet, "/v1/services", nil, &out)
}

func (c *adminClient) removeService(ctx context.Context, name string) (serviceRemoval, error) {
	var out serviceRemoval
	return out, c.call(ctx, http.MethodDelete, "/v1/services/"+url.PathEscape(name), nil, &out)
}

func (c *adminClient) scaleService(ctx context.Context, name string, replicas int) (serviceEntry, error) {
	var out serviceEntry
	return out, c.call(ctx, http.MethodPost, "/v1/services/"+url.PathEscape(name)+"/scale", scaleRequest{replicas}, &out)
}
