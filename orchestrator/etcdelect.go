package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// DefaultLeaseTTL is how long a leader's etcd lease outlives its last renewal: a leader
// that dies is replaced within about this long, and one that is paused or partitioned for
// longer loses its leadership (and, fenced, cannot write).
const DefaultLeaseTTL = 3 * time.Second

// Leadership is this replica's leadership of the store's control loops, won by Campaign.
// Run the orchestrator's loops over Store, which is fenced on it, until Done is closed;
// then stop them and campaign again.
type Leadership struct {
	session  *concurrency.Session
	election *concurrency.Election
	store    *FencedStore
	key      string
	rev      int64
}

// LeaderOption configures Campaign.
type LeaderOption func(*leaderOptions) error

type leaderOptions struct {
	ttl time.Duration
}

// WithLeaseTTL sets the leader's lease time to live, in whole seconds, at least 1. The
// default is DefaultLeaseTTL.
func WithLeaseTTL(d time.Duration) LeaderOption {
	return func(o *leaderOptions) error {
		if d < time.Second || d%time.Second != 0 {
			return invalid("WithLeaseTTL", "%v: must be a whole number of seconds, at least 1", d)
		}
		o.ttl = d
		return nil
	}
}

// electionPrefix is the election's: its keys are electionPrefix()+"/"+lease.
func (s *EtcdStore) electionPrefix() string { return s.prefix + "leader" }

// Campaign waits until this replica leads the store's control loops, or ctx is done.
// value is what the other replicas learn of the leader through Leader: the address at
// which it serves remote nodes, say. Any number of replicas may campaign; one leads at a
// time, until its lease ends (it dies, or cannot renew it for WithLeaseTTL) or it
// resigns.
func (s *EtcdStore) Campaign(ctx context.Context, value string, opts ...LeaderOption) (*Leadership, error) {
	o := leaderOptions{ttl: DefaultLeaseTTL}
	for _, opt := range opts {
		if opt == nil {
			return nil, invalid("LeaderOption", "nil option")
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	session, err := concurrency.NewSession(s.cli, concurrency.WithTTL(int(o.ttl/time.Second)), concurrency.WithContext(s.ctx))
	if err != nil {
		return nil, s.unavailable("open an etcd session", err)
	}
	e := concurrency.NewElection(session, s.electionPrefix())
	// The campaign ends with ctx, or with the store.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	if err := e.Campaign(cctx, value); err != nil {
		session.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, s.unavailable("campaign", err)
	}
	l := &Leadership{session: session, election: e, key: e.Key(), rev: e.Rev()}
	l.store = s.Fenced(l.key, clientv3.Compare(clientv3.CreateRevision(l.key), "=", l.rev))
	// The loops start from the state the last leader left.
	if err := s.Sync(ctx); err != nil {
		_ = l.Resign(context.Background())
		return nil, err
	}
	return l, nil
}

// Store returns the store fenced on this leadership: its writes fail with ErrFenced once
// another replica leads.
func (l *Leadership) Store() *FencedStore { return l.store }

// Done is closed when the leadership's lease is lost or it was resigned.
func (l *Leadership) Done() <-chan struct{} { return l.session.Done() }

// Key returns the etcd key that holds the leadership, and Revision its create revision,
// which the fence compares.
func (l *Leadership) Key() string     { return l.key }
func (l *Leadership) Revision() int64 { return l.rev }

// Resign gives the leadership up, so that another replica takes over at once rather than
// when the lease ends, and ends the lease.
func (l *Leadership) Resign(ctx context.Context) error {
	err := l.election.Resign(ctx)
	return errors.Join(err, l.session.Close())
}

// Leader returns the value the leading replica campaigned with, or ErrNoLeader.
func (s *EtcdStore) Leader(ctx context.Context) (string, error) {
	rctx, cancel := context.WithTimeout(ctx, s.opts.etcdTimeout)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.electionPrefix()+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		return "", s.unavailable("read the leader", err)
	}
	if len(resp.Kvs) == 0 {
		return "", fmt.Errorf("%w under %s", ErrNoLeader, s.electionPrefix())
	}
	return string(resp.Kvs[0].Value), nil
}
