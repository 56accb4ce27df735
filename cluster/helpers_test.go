package cluster_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/opendao/dao"
	"github.com/opendao/dao/cluster"
	"github.com/opendao/dao/cluster/pki"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/orchestrator/simnode"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// plane is a control plane serving the node protocol on loopback, for one test.
type plane struct {
	t      *testing.T
	ctx    context.Context
	ca     *pki.CA
	o      *orchestrator.Orchestrator
	srv    *cluster.Server
	addr   string
	token  string
	caDir  string
	served chan error
}

func newPlane(t *testing.T, oopts []orchestrator.Option, sopts ...cluster.ServerOption) *plane {
	t.Helper()
	return newPlaneCA(t, nil, oopts, sopts...)
}

func newPlaneCA(t *testing.T, caOpts []pki.CAOption, oopts []orchestrator.Option, sopts ...cluster.ServerOption) *plane {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ca, err := pki.NewCA(caOpts...)
	if err != nil {
		t.Fatal(err)
	}
	token, err := ca.NewJoinToken()
	if err != nil {
		t.Fatal(err)
	}
	store, err := orchestrator.NewMemoryStore()
	if err != nil {
		t.Fatal(err)
	}
	oopts = append([]orchestrator.Option{orchestrator.WithHeartbeatTimeout(2 * time.Second), orchestrator.WithGrace(2 * time.Second)}, oopts...)
	o, err := orchestrator.New(store, oopts...)
	if err != nil {
		t.Fatal(err)
	}
	caDir := t.TempDir()
	sopts = append([]cluster.ServerOption{cluster.WithHeartbeatInterval(200 * time.Millisecond), cluster.WithCADir(caDir)}, sopts...)
	srv, err := cluster.NewServer(ca, o, sopts...)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &plane{t: t, ctx: ctx, ca: ca, o: o, srv: srv, addr: l.Addr().String(), token: token, caDir: caDir, served: make(chan error, 1)}
	ran := make(chan error, 1)
	go func() { ran <- o.Run(ctx) }()
	go func() { p.served <- srv.Serve(l) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-p.served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		cancel()
		if err := <-ran; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
		store.Close()
	})
	return p
}

// remote is a simulated node behind the real protocol.
type remote struct {
	id     string
	node   *simnode.Node
	client *cluster.Client
	done   chan error
	cancel context.CancelFunc // nil once Run has returned and been waited for
	closed bool
}

func (p *plane) join(id string) *cluster.Identity {
	p.t.Helper()
	ident, err := cluster.Join(p.ctx, p.addr, p.token, id)
	if err != nil {
		p.t.Fatalf("Join(%s): %v", id, err)
	}
	return ident
}

// connect joins a simulated node id and runs its client until the test ends (or stop).
func (p *plane) connect(id string, opts ...cluster.ClientOption) *remote {
	p.t.Helper()
	return p.connectAs(p.join(id), opts...)
}

func (p *plane) connectAs(ident *cluster.Identity, opts ...cluster.ClientOption) *remote {
	p.t.Helper()
	r := &remote{id: ident.NodeID, done: make(chan error, 1)}
	info := dao.Node{ID: ident.NodeID,
		Capacity:    dao.Resources{MilliCPU: 4000, Memory: 8 * dao.GiB},
		Allocatable: dao.Resources{MilliCPU: 4000, Memory: 8 * dao.GiB}}
	var err error
	r.node, err = simnode.New(info, simnode.WithStartLatency(simnode.Fixed(20*time.Millisecond)),
		simnode.WithStatusFunc(func(u orchestrator.TaskUpdate) { r.client.Report(u) }))
	if err != nil {
		p.t.Fatal(err)
	}
	opts = append([]cluster.ClientOption{cluster.WithBackoff(50*time.Millisecond, 500*time.Millisecond)}, opts...)
	r.client, err = cluster.NewClient(p.addr, ident, info, r.node, opts...)
	if err != nil {
		p.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.client.Run(ctx) }()
	p.t.Cleanup(func() { r.stop() })
	return r
}

// stop ends the node's client and the node.
func (r *remote) stop() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
		r.cancel = nil
	}
	if !r.closed {
		r.closed = true
		r.node.Close()
	}
}

func (p *plane) waitFor(what string, within time.Duration, cond func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *plane) running(service string) []orchestrator.Task {
	ts, err := p.o.Tasks(p.ctx, orchestrator.TaskFilter{ServiceID: service})
	if err != nil {
		p.t.Fatal(err)
	}
	var out []orchestrator.Task
	for _, t := range ts {
		if t.Status.State == dao.TaskRunning {
			out = append(out, t)
		}
	}
	return out
}

func (p *plane) nodeState(id string) dao.NodeState {
	ns, err := p.o.Nodes(p.ctx)
	if err != nil {
		p.t.Fatal(err)
	}
	for _, n := range ns {
		if n.ID == id {
			return n.Status.State
		}
	}
	return ""
}

func webSpec(replicas int) dao.ServiceSpec {
	return dao.ServiceSpec{Name: "web", Replicas: replicas, Container: dao.ContainerSpec{
		Image: "example.com/web:1", Resources: dao.Resources{MilliCPU: 100, Memory: 64 * dao.MiB}}}
}
