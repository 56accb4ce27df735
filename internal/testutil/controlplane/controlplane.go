package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/opendao/dao"
	"github.com/opendao/dao/cluster"
	"github.com/opendao/dao/cluster/pki"
	"github.com/opendao/dao/orchestrator"
)

// Config says how to make a Plane; its zero value is every default on 127.0.0.1.
type Config struct {
	// ListenIP is the address the server listens on, on a port of its own; default
	// 127.0.0.1.
	ListenIP      string
	CAOptions     []pki.CAOption
	Options       []orchestrator.Option
	ServerOptions []cluster.ServerOption
}

// Plane is a running control plane. Stop it when done.
type Plane struct {
	Ctx          context.Context
	CA           *pki.CA
	Orchestrator *orchestrator.Orchestrator
	Server       *cluster.Server
	// Addr is where nodes dial (host:port); Token a join token of CA.
	Addr, Token string

	once   sync.Once
	stop   func() error
	result error
}

// Start makes and runs a control plane.
func Start(cfg Config) (*Plane, error) {
	ca, err := pki.NewCA(cfg.CAOptions...)
	if err != nil {
		return nil, err
	}
	token, err := ca.NewJoinToken()
	if err != nil {
		return nil, err
	}
	store, err := orchestrator.NewMemoryStore()
	if err != nil {
		return nil, err
	}
	o, err := orchestrator.New(store, cfg.Options...)
	if err != nil {
		store.Close()
		return nil, err
	}
	srv, err := cluster.NewServer(ca, o, cfg.ServerOptions...)
	if err != nil {
		store.Close()
		return nil, err
	}
	ip := cfg.ListenIP
	if ip == "" {
		ip = "127.0.0.1"
	}
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		store.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran, served := make(chan error, 1), make(chan error, 1)
	go func() { ran <- o.Run(ctx) }()
	go func() { served <- srv.Serve(l) }()
	p := &Plane{Ctx: ctx, CA: ca, Orchestrator: o, Server: srv, Addr: l.Addr().String(), Token: token}
	p.stop = func() error {
		_ = srv.Close()
		serveErr := <-served
		cancel()
		runErr := <-ran
		store.Close()
		var errs []error
		if serveErr != nil {
			errs = append(errs, fmt.Errorf("Serve: %w", serveErr))
		}
		if !errors.Is(runErr, context.Canceled) {
			errs = append(errs, fmt.Errorf("Run: %v", runErr))
		}
		return errors.Join(errs...)
	}
	return p, nil
}

// Stop closes the server and stops the orchestrator, and returns what went wrong in
// either. Calling it again returns the same.
func (p *Plane) Stop() error {
	p.once.Do(func() { p.result = p.stop() })
	return p.result
}

// NodeState returns the state the orchestrator has for node id, "" for a node it does not
// know.
func (p *Plane) NodeState(id string) (dao.NodeState, error) {
	ns, err := p.Orchestrator.Nodes(p.Ctx)
	if err != nil {
		return "", err
	}
	for _, n := range ns {
		if n.ID == id {
			return n.Status.State, nil
		}
	}
	return "", nil
}

// Running returns the tasks of service the orchestrator has running (and not waiting to
// restart).
func (p *Plane) Running(service string) ([]orchestrator.Task, error) {
	ts, err := p.Orchestrator.Tasks(p.Ctx, orchestrator.TaskFilter{ServiceID: service})
	if err != nil {
		return nil, err
	}
	var out []orchestrator.Task
	for _, t := range ts {
		if t.Status.State == dao.TaskRunning && !t.Status.Restarting {
			out = append(out, t)
		}
	}
	return out, nil
}
