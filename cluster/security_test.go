package cluster_test

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/containerd/errdefs"

	"github.com/opendao/dao"
	"github.com/opendao/dao/cluster"
	"github.com/opendao/dao/cluster/pki"
	"github.com/opendao/dao/orchestrator"
)

// logRecorder keeps the messages of a logger, for tests that check what was said.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	r.mu.Lock()
	r.msgs = append(r.msgs, b.String())
	r.mu.Unlock()
	return nil
}

func (r *logRecorder) find(sub string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if strings.Contains(m, sub) {
			return m
		}
	}
	return ""
}

func TestJoinRefusesABadToken(t *testing.T) {
	p := newPlane(t, nil)
	other, err := pki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	otherToken, err := other.NewJoinToken()
	if err != nil {
		t.Fatal(err)
	}
	// The right pin with a secret the CA never made.
	tok, err := pki.ParseJoinToken(p.token)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = rand.Read(tok.Secret[:])
	for name, c := range map[string]struct {
		token string
		is    func(error) bool
		want  string
	}{
		"malformed":        {"DAO1-nope", errdefs.IsInvalidArgument, "malformed"},
		"unknown secret":   {tok.Encode(), errdefs.IsUnauthorized, "invalid join token"},
		"another CA's pin": {otherToken, errdefs.IsUnauthorized, "pin"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := cluster.Join(p.ctx, p.addr, c.token, "edge-1")
			if err == nil || !c.is(err) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Join with a %s token: %v, want a clear error of the right class (%q)", name, err, c.want)
			}
		})
	}
	if ns, _ := p.o.Nodes(p.ctx); len(ns) != 0 {
		t.Errorf("refused joins left nodes: %v", ns)
	}
}

func TestJoinRefusesAnIDInUse(t *testing.T) {
	p := newPlane(t, nil)
	p.connect("edge-1")
	p.waitFor("connected", 5*time.Second, func() bool { return len(p.srv.Connected()) == 1 })
	_, err := cluster.Join(p.ctx, p.addr, p.token, "edge-1")
	if !errors.Is(err, errdefs.ErrAlreadyExists) || !strings.Contains(err.Error(), "edge-1 is connected") {
		t.Fatalf("Join under a connected node's ID: %v, want AlreadyExists naming it", err)
	}
}

// TestCertificateOfAnotherCAIsRefused: a node whose certificate another CA issued is
// told so, and its client gives up rather than retrying forever.
func TestCertificateOfAnotherCAIsRefused(t *testing.T) {
	p := newPlane(t, nil)
	other, err := pki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.NewNodeKey()
	if err != nil {
		t.Fatal(err)
	}
	der, err := other.IssueNodeCertForKey(key.Public(), "intruder", 0)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := pki.TLSCertificate(der, key)
	if err != nil {
		t.Fatal(err)
	}
	// It trusts the right control plane, so the handshake completes; the server then refuses.
	ident, err := cluster.NewIdentity(pair, other.Certificate())
	if err != nil {
		t.Fatal(err)
	}
	ident.CA = p.ca.Certificate()
	r := p.connectAs(ident)
	select {
	case err := <-r.done:
		r.cancel = nil
		if !errdefs.IsUnauthorized(err) || !strings.Contains(err.Error(), "not issued by this CA") {
			t.Fatalf("Run with another CA's certificate: %v, want Unauthenticated saying why", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run with another CA's certificate still runs after 10s")
	}
	if ns, _ := p.o.Nodes(p.ctx); len(ns) != 0 {
		t.Errorf("a refused node was added: %v", ns)
	}
}

// TestRemovedNodeIsCutOff: RemoveNode ends the node's session and refuses it from then on,
// after a restart of the control plane too (the CA's state is saved).
func TestRemovedNodeIsCutOff(t *testing.T) {
	p := newPlane(t, nil)
	r := p.connect("edge-1")
	p.waitFor("connected", 5*time.Second, func() bool { return r.client.Connected() })
	if err := p.srv.RemoveNode(p.ctx, "edge-1"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-r.done:
		r.cancel = nil
		if !errdefs.IsPermissionDenied(err) || !strings.Contains(err.Error(), "removed") {
			t.Fatalf("Run of a removed node: %v, want PermissionDenied saying it was removed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a removed node's client still runs after 10s")
	}
	loaded, err := pki.LoadCA(p.caDir)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.IsRemoved("edge-1") {
		t.Error("the saved CA state forgot the removal")
	}
	if ns, _ := p.o.Nodes(p.ctx); len(ns) != 0 {
		t.Errorf("the removed node is still known: %v", ns)
	}
}

// TestCheckSessionsAfterMerge: a node removed at another replica (its CA state merged
// into this one's) has its session closed by CheckSessions, told why; others stay.
func TestCheckSessionsAfterMerge(t *testing.T) {
	p := newPlane(t, nil)
	r := p.connect("edge-1")
	other := p.connect("edge-2")
	p.waitFor("connected", 5*time.Second, func() bool { return r.client.Connected() && other.client.Connected() })
	if ids := p.srv.CheckSessions(); len(ids) != 0 {
		t.Fatalf("CheckSessions with nothing refused closed %v", ids)
	}
	// The other replica: the same CA, a copy of its files, removes the node.
	dir := t.TempDir()
	if err := p.ca.Save(dir); err != nil {
		t.Fatal(err)
	}
	replica, err := pki.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	replica.RemoveNode("edge-1")
	st, err := replica.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := p.ca.MergeState(st); err != nil || !changed {
		t.Fatalf("MergeState = %v, %v", changed, err)
	}
	if ids := p.srv.CheckSessions(); len(ids) != 1 || ids[0] != "edge-1" {
		t.Fatalf("CheckSessions closed %v, want [edge-1]", ids)
	}
	select {
	case err := <-r.done:
		r.cancel = nil
		if !errdefs.IsPermissionDenied(err) || !strings.Contains(err.Error(), "removed") {
			t.Fatalf("Run of a node removed at another replica: %v, want PermissionDenied saying it was removed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the removed node's client still runs after 10s")
	}
	if !other.client.Connected() {
		t.Error("the other node's session was closed too")
	}
}

// TestNodeCannotReportAnotherNodesTask: an update of a task assigned elsewhere is refused,
// said in the acknowledgement, and the store is unchanged.
func TestNodeCannotReportAnotherNodesTask(t *testing.T) {
	p := newPlane(t, nil)
	a := p.connect("edge-a")
	log := &logRecorder{}
	b := p.connect("edge-b", cluster.WithClientLogger(slog.New(log)))
	p.waitFor("connected", 5*time.Second, func() bool { return len(p.srv.Connected()) == 2 })
	if err := p.o.DrainNode(p.ctx, "edge-b"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.o.CreateService(p.ctx, webSpec(1)); err != nil {
		t.Fatal(err)
	}
	p.waitFor("running on edge-a", 10*time.Second, func() bool { return len(p.running("web")) == 1 })
	victim := p.running("web")[0]
	if victim.NodeID != a.id {
		t.Fatalf("task on %s, want edge-a", victim.NodeID)
	}
	for _, u := range []dao.TaskUpdate{
		{TaskID: victim.ID, Status: dao.TaskStatus{State: dao.TaskFailed, Err: "forged", Timestamp: time.Now()}},
		{TaskID: "web.no-such-task", Status: dao.TaskStatus{State: dao.TaskRunning}},
		{TaskID: victim.ID, Status: dao.TaskStatus{State: dao.TaskState(99)}},
	} {
		b.client.Report(u)
	}
	p.waitFor("the refusal logged", 5*time.Second, func() bool { return log.find("refused a status update") != "" })
	if m := log.find("task " + dao.Quote(victim.ID) + " is not assigned to node edge-b"); m == "" {
		t.Errorf("no clear refusal of the forged update; log: %q", log.msgs)
	}
	if m := log.find("not valid; dropped"); m == "" {
		t.Errorf("the update in no state was not dropped by the client; log: %q", log.msgs)
	}
	time.Sleep(300 * time.Millisecond)
	if !b.client.Connected() || b.client.Sessions() != 1 {
		t.Errorf("bad updates cost the node its session: connected %v, %d sessions", b.client.Connected(), b.client.Sessions())
	}
	got, err := p.o.Task(p.ctx, victim.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.State != dao.TaskRunning || got.Status.Err != "" {
		t.Errorf("the forged update changed the task: %+v", got.Status)
	}
}

// TestDuplicateConnectionsReplaceNeverBoth: two agents with one identity never both hold a
// session; the newer replaces the older.
func TestDuplicateConnectionsReplaceNeverBoth(t *testing.T) {
	p := newPlane(t, nil)
	ident := p.join("edge-1")
	log := &logRecorder{}
	first := p.connectAs(ident, cluster.WithClientLogger(slog.New(log)))
	p.waitFor("first connected", 5*time.Second, func() bool { return first.client.Connected() })
	second := p.connectAs(ident)
	p.waitFor("second connected", 5*time.Second, func() bool { return second.client.Connected() })
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if len(p.srv.Connected()) > 1 {
			t.Fatalf("sessions %v", p.srv.Connected())
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.waitFor("the first one replaced", 5*time.Second, func() bool { return !first.client.Connected() })
	p.waitFor("the replaced agent says why", 5*time.Second, func() bool {
		return log.find("another agent with this node's identity connected") != ""
	})
}

// TestRevokedCertificateIsRefused: a revoked certificate's session is closed at once, and
// a node that holds no other is refused from then on, told why.
func TestRevokedCertificateIsRefused(t *testing.T) {
	p := newPlane(t, nil)
	r := p.connect("edge-1")
	p.waitFor("connected", 5*time.Second, func() bool { return r.client.Connected() })
	if err := p.srv.RevokeCertificate(r.client.Identity().Certificate.Leaf.SerialNumber); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-r.done:
		r.cancel = nil
		if !errdefs.IsPermissionDenied(err) || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("Run with a revoked certificate: %v, want PermissionDenied saying it was revoked", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run with a revoked certificate still runs after 10s")
	}
	loaded, err := pki.LoadCA(p.caDir)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.IsRevoked(r.client.Identity().Certificate.Leaf.SerialNumber) {
		t.Error("the saved CA state forgot the revocation")
	}
}

// TestGarbageOnTheSocketChangesNothing: bytes that are not TLS, and TLS that is not the
// protocol, are refused; the server serves the next node as before.
func TestGarbageOnTheSocketChangesNothing(t *testing.T) {
	p := newPlane(t, nil)
	for _, junk := range [][]byte{
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		{0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0x00},
		make([]byte, 64<<10),
	} {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = rand.Read(junk[min(len(junk), 8):])
		_, _ = c.Write(junk)
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, _ = c.Read(make([]byte, 1024))
		_ = c.Close()
	}
	r := p.connect("edge-1")
	p.waitFor("a node connects after the garbage", 5*time.Second, func() bool { return r.client.Connected() })
}

// TestOversizedAssignmentIsRefusedWhereItIsMade: an assignment over the message limit is
// not sent; the node keeps what it had, and the refusal names the limit.
func TestOversizedAssignmentIsRefusedWhereItIsMade(t *testing.T) {
	log := &logRecorder{}
	p := newPlane(t, []orchestrator.Option{orchestrator.WithLogger(slog.New(log))}, cluster.WithMaxMessageBytes(64<<10))
	r := p.connect("edge-1")
	p.waitFor("connected", 5*time.Second, func() bool { return r.client.Connected() })
	spec := webSpec(200)
	spec.Container.Args = []string{strings.Repeat("x", 4000)}
	if _, err := p.o.CreateService(p.ctx, spec); err != nil {
		t.Fatal(err)
	}
	p.waitFor("the refusal logged", 10*time.Second, func() bool { return log.find("over the limit") != "" })
	if n := len(r.node.Tasks()); n != 0 {
		t.Errorf("the node got %d tasks of an assignment over the limit", n)
	}
	if !r.client.Connected() {
		t.Error("an assignment over the limit cost the node its session")
	}
}

// TestReconnectResumes: a node whose connection breaks comes back as the same node, with
// nothing recreated.
func TestReconnectResumes(t *testing.T) {
	p := newPlane(t, nil)
	ident := p.join("edge-1")
	r := p.connectAs(ident)
	if _, err := p.o.CreateService(p.ctx, webSpec(3)); err != nil {
		t.Fatal(err)
	}
	p.waitFor("3 running", 10*time.Second, func() bool { return len(p.running("web")) == 3 })
	before := p.running("web")
	// The agent's program restarts: a new client, the same node and identity.
	node := r.node
	r.cancel()
	<-r.done
	r.cancel = nil
	r2, err := cluster.NewClient(p.addr, ident, dao.Node{ID: "edge-1",
		Capacity: dao.Resources{MilliCPU: 4000, Memory: 8 * dao.GiB}, Allocatable: dao.Resources{MilliCPU: 4000, Memory: 8 * dao.GiB}}, node)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r2.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; node.Close() })
	p.waitFor("reconnected", 5*time.Second, func() bool { return r2.Connected() })
	time.Sleep(500 * time.Millisecond)
	after := p.running("web")
	if len(after) != 3 {
		t.Fatalf("%d running after the reconnection, want 3", len(after))
	}
	for i := range after {
		if after[i].ID != before[i].ID {
			t.Errorf("task %s replaced by %s on reconnection", before[i].ID, after[i].ID)
		}
	}
	if all, _ := p.o.Tasks(p.ctx, orchestrator.TaskFilter{ServiceID: "web"}); len(all) != 3 {
		t.Errorf("%d tasks after the reconnection, want 3", len(all))
	}
	if st := p.nodeState("edge-1"); st != dao.NodeReady {
		t.Errorf("node is %s after reconnecting, want ready", st)
	}
}

// TestLongStatusTextsAreCutNotRefused: a node's status message over dao's limit is cut
// to it by the client, so the control plane takes the update rather than refusing it.
func TestLongStatusTextsAreCutNotRefused(t *testing.T) {
	p := newPlane(t, nil)
	r := p.connect("edge-1")
	if _, err := p.o.CreateService(p.ctx, webSpec(1)); err != nil {
		t.Fatal(err)
	}
	p.waitFor("running", 10*time.Second, func() bool { return len(p.running("web")) == 1 })
	tk := p.running("web")[0]
	st := tk.Status
	st.Message = strings.Repeat("é", dao.MaxStringBytes) // twice the limit, in bytes
	st.Timestamp = time.Now()
	r.client.Report(dao.TaskUpdate{TaskID: tk.ID, Status: st})
	p.waitFor("the cut message stored", 5*time.Second, func() bool {
		got, err := p.o.Task(p.ctx, tk.ID)
		return err == nil && strings.HasSuffix(got.Status.Message, "…")
	})
	got, _ := p.o.Task(p.ctx, tk.ID)
	if n := len(got.Status.Message); n > dao.MaxStringBytes || !utf8.ValidString(got.Status.Message) {
		t.Errorf("stored message of %d bytes (valid UTF-8: %v), want at most %d", n, utf8.ValidString(got.Status.Message), dao.MaxStringBytes)
	}
}
