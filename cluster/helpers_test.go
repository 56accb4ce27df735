package cluster_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/opendao/dao"
	"github.com/opendao/dao/cluster"
	"github.com/opendao/dao/cluster/pki"
	"github.com/opendao/dao/internal/testutil/controlplane"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/orchestrator/simnode"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// plane is a control plane serving the node protocol on loopback, for one test.
type plane struct {
	t     *testing.T
	ctx   context.Context
	ca    *pki.CA
	o     *orchestrator.Orchestrator
	srv   *cluster.Server
	addr  string
	token string
	caDir string
	cp    *controlplane.Plane
}

func newPlane(t *testing.T, oopts []orchestrator.Option, sopts ...cluster.ServerOption) *plane {
	t.Helper()
	return newPlaneCA(t, nil, oopts, sopts...)
}

func newPlaneCA(t *testing.T, caOpts []pki.CAOption, oopts []orchestrator.Option, sopts ...cluster.ServerOption) *plane {
	t.Helper()
	caDir := t.TempDir()
	cp, err := controlplane.Start(controlplane.Config{
		CAOptions: caOpts,
		Options: append([]orchestrator.Option{orchestrator.WithHeartbeatTimeout(2 * time.Second),
			orchestrator.WithGrace(2 * time.Second)}, oopts...),
		ServerOptions: append([]cluster.ServerOption{cluster.WithHeartbeatInterval(200 * time.Millisecond),
			cluster.WithCADir(caDir)}, sopts...),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Error(err)
		}
	})
	return &plane{t: t, ctx: cp.Ctx, ca: cp.CA, o: cp.Orchestrator, srv: cp.Server, addr: cp.Addr, token: cp.Token, caDir: caDir, cp: cp}
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
	ts, err := p.cp.Running(service)
	if err != nil {
		p.t.Fatal(err)
	}
	return ts
}

func (p *plane) nodeState(id string) dao.NodeState {
	st, err := p.cp.NodeState(id)
	if err != nil {
		p.t.Fatal(err)
	}
	return st
}

func webSpec(replicas int) dao.ServiceSpec {
	return dao.ServiceSpec{Name: "web", Replicas: replicas, Container: dao.ContainerSpec{
		Image: "example.com/web:1", Resources: dao.Resources{MilliCPU: 100, Memory: 64 * dao.MiB}}}
}
