package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/opendao/dao"
	"github.com/opendao/dao/cluster"
	"github.com/opendao/dao/cluster/pki"
	"github.com/opendao/dao/orchestrator"
)

// etcdOptions are the flags of dao control-plane that keep the store in etcd.
type etcdOptions struct {
	endpoints string
	prefix    string
	cacert    string
	cert      string
	key       string
	user      string
	leaseTTL  time.Duration
	compact   time.Duration
}

func (o *etcdOptions) flags(fs *pflag.FlagSet) {
	fs.StringVar(&o.endpoints, "etcd", "", "keep the store in the etcd cluster at `URLS` (comma-separated, such as http://10.0.0.1:2379,...), shared by every replica of this control plane")
	fs.StringVar(&o.prefix, "etcd-prefix", orchestrator.DefaultEtcdPrefix, "the etcd key `PREFIX` of this control plane's data")
	fs.StringVar(&o.cacert, "etcd-cacert", "", "verify etcd's certificates with the CA in `FILE` (PEM)")
	fs.StringVar(&o.cert, "etcd-cert", "", "the client certificate `FILE` (PEM) for etcd")
	fs.StringVar(&o.key, "etcd-key", "", "the client key `FILE` (PEM) for etcd")
	fs.StringVar(&o.user, "etcd-user", "", "authenticate to etcd as `USER`, with the password in $DAO_ETCD_PASSWORD")
	fs.DurationVar(&o.compact, "etcd-compaction", orchestrator.DefaultEtcdCompaction, "compact etcd's history every `DURATION`, as kube-apiserver does; 0 for an etcd that compacts itself (--auto-compaction-retention)")
	fs.DurationVar(&o.leaseTTL, "lease-ttl", orchestrator.DefaultLeaseTTL, "the leader's lease: a lost leader is replaced within about `DURATION` (whole seconds)")
}

func (o *etcdOptions) enabled() bool { return o.endpoints != "" }

func (o *etcdOptions) check() error {
	if !o.enabled() {
		for name, v := range map[string]string{"--etcd-cacert": o.cacert, "--etcd-cert": o.cert, "--etcd-key": o.key, "--etcd-user": o.user} {
			if v != "" {
				return fmt.Errorf("%s needs --etcd", name)
			}
		}
		return nil
	}
	for _, ep := range strings.Split(o.endpoints, ",") {
		if strings.TrimSpace(ep) == "" {
			return fmt.Errorf("--etcd %q: an empty endpoint", o.endpoints)
		}
	}
	if (o.cert == "") != (o.key == "") {
		return errors.New("--etcd-cert and --etcd-key go together")
	}
	if o.leaseTTL < time.Second || o.leaseTTL%time.Second != 0 {
		return fmt.Errorf("--lease-ttl %v: a whole number of seconds, at least 1s", o.leaseTTL)
	}
	if !strings.HasSuffix(o.prefix, "/") {
		return fmt.Errorf("--etcd-prefix %q: must end with /", o.prefix)
	}
	if o.compact < 0 || o.compact > 0 && o.compact < time.Second {
		return fmt.Errorf("--etcd-compaction %v: 0 (off) or at least 1s", o.compact)
	}
	return nil
}

// client returns an etcd client as the flags say.
func (o *etcdOptions) client() (*clientv3.Client, error) {
	cfg := clientv3.Config{DialTimeout: 5 * time.Second, Logger: zap.NewNop(), Username: o.user,
		// A member cut off by the network answers nothing: the keepalive finds its
		// connection dead (gRPC pings no more often than every 10 s) and the client
		// leaves it for the others.
		DialKeepAliveTime: 10 * time.Second, DialKeepAliveTimeout: 3 * time.Second}
	for _, ep := range strings.Split(o.endpoints, ",") {
		cfg.Endpoints = append(cfg.Endpoints, strings.TrimSpace(ep))
	}
	if o.user != "" {
		cfg.Password = os.Getenv("DAO_ETCD_PASSWORD")
	}
	if o.cacert != "" || o.cert != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if o.cacert != "" {
			pem, err := os.ReadFile(o.cacert)
			if err != nil {
				return nil, fmt.Errorf("--etcd-cacert: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--etcd-cacert %s: no PEM certificate in it", o.cacert)
			}
		}
		if o.cert != "" {
			pair, err := tls.LoadX509KeyPair(o.cert, o.key)
			if err != nil {
				return nil, fmt.Errorf("--etcd-cert/--etcd-key: %w", err)
			}
			tc.Certificates = []tls.Certificate{pair}
		}
		cfg.TLS = tc
	}
	return clientv3.New(cfg)
}

// The etcd keys, under the prefix, that hold the cluster's CA, so that every replica
// issues and checks the same certificates.
const (
	etcdCACert = "ca/" + pki.CACertFile
	etcdCAKey  = "ca/" + pki.CAKeyFile
)

// etcdCAState is the key, under the prefix, of the CA's shared state: the union of the
// replicas' join tokens, removed nodes and revoked serials.
const etcdCAState = "ca/state"

// sharedCAState keeps the CA's state the same at every replica: each pushes what it
// adds (a join token, a revocation) into the union in etcd, and takes in what the
// others push.
type sharedCAState struct {
	cli *clientv3.Client
	key string
	ca  *pki.CA
	dir string
	// changed, when set, is called after the state of another replica changed this one's.
	changed func()
}

// push merges etcd's state into the CA and the CA's into etcd.
func (s *sharedCAState) push(ctx context.Context) error {
	for range 10 {
		resp, err := s.cli.Get(ctx, s.key)
		if err != nil {
			return fmt.Errorf("read the CA's state from etcd: %w", err)
		}
		var mod int64
		if len(resp.Kvs) == 1 {
			mod = resp.Kvs[0].ModRevision
			if _, err := s.ca.MergeState(resp.Kvs[0].Value); err != nil {
				return err
			}
		}
		merged, err := s.ca.MarshalState()
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 1 && string(resp.Kvs[0].Value) == string(merged) {
			return s.ca.Save(s.dir)
		}
		tr, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(s.key), "=", mod)).
			Then(clientv3.OpPut(s.key, string(merged))).Commit()
		if err != nil {
			return fmt.Errorf("put the CA's state in etcd: %w", err)
		}
		if tr.Succeeded {
			return s.ca.Save(s.dir)
		}
	}
	return errors.New("the CA's state in etcd kept changing")
}

// follow takes in the other replicas' changes of the CA's state until ctx is done.
func (s *sharedCAState) follow(ctx context.Context, log *slog.Logger) {
	for ctx.Err() == nil {
		for resp := range s.cli.Watch(clientv3.WithRequireLeader(ctx), s.key) {
			for _, ev := range resp.Events {
				if ev.Type != clientv3.EventTypePut {
					continue
				}
				if grew, err := s.ca.MergeState(ev.Kv.Value); err != nil {
					log.Warn("dao control-plane: the CA's state in etcd does not decode; ignored", "key", s.key, "err", err)
				} else if grew {
					if err := s.ca.Save(s.dir); err != nil {
						log.Warn("dao control-plane: save the CA's state", "err", err)
					}
					if s.changed != nil {
						s.changed()
					}
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// sharedCA returns the CA kept in etcd, putting this replica's (from dir, or a new one) there
// when there is none yet, and keeps a copy in dir.
func sharedCA(ctx context.Context, cli *clientv3.Client, prefix, dir string) (ca *pki.CA, made bool, err error) {
	lost := false // this replica made a CA, and another's was put in etcd first
	get := func() (cert, key []byte, err error) {
		resp, err := cli.Get(ctx, prefix+"ca/", clientv3.WithPrefix())
		if err != nil {
			return nil, nil, fmt.Errorf("read the CA from etcd: %w", err)
		}
		for _, kv := range resp.Kvs {
			switch string(kv.Key) {
			case prefix + etcdCACert:
				cert = kv.Value
			case prefix + etcdCAKey:
				key = kv.Value
			}
		}
		return cert, key, nil
	}
	cert, key, err := get()
	if err != nil {
		return nil, false, err
	}
	if cert == nil || key == nil {
		// None yet: this replica's goes there, unless another's got there first.
		local, err := pki.LoadCA(dir)
		if errors.Is(err, fs.ErrNotExist) {
			if local, err = pki.NewCA(); err == nil {
				err = local.Save(dir)
			}
			made = true
		}
		if err != nil {
			return nil, false, err
		}
		c, err1 := os.ReadFile(filepath.Join(dir, pki.CACertFile))
		k, err2 := os.ReadFile(filepath.Join(dir, pki.CAKeyFile))
		if err := errors.Join(err1, err2); err != nil {
			return nil, false, err
		}
		_, err = cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(prefix+etcdCACert), "=", 0)).
			Then(clientv3.OpPut(prefix+etcdCACert, string(c)), clientv3.OpPut(prefix+etcdCAKey, string(k))).
			Commit()
		if err != nil {
			return nil, false, fmt.Errorf("put the CA in etcd: %w", err)
		}
		if cert, key, err = get(); err != nil {
			return nil, false, err
		}
		if made && string(cert) != string(c) {
			// Another replica's got there first: this one's, just made, goes.
			for _, f := range []string{pki.CACertFile, pki.CAKeyFile, pki.StateFile} {
				_ = os.Remove(filepath.Join(dir, f))
			}
			made = false
			lost = true
		}
	}
	// The copy in dir is etcd's; this replica's own join tokens and revocations stay. A
	// directory that holds another CA belongs to another cluster: refuse it rather than
	// overwrite its key.
	if local, err := os.ReadFile(filepath.Join(dir, pki.CACertFile)); err == nil && string(local) != string(cert) && !lost {
		return nil, false, fmt.Errorf("the CA in %s is not the cluster's (in etcd under %sca/): this state directory belongs to another cluster; give this replica a new --state-dir", dir, prefix)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, err
	}
	for name, data := range map[string][]byte{pki.CACertFile: cert, pki.CAKeyFile: key} {
		mode := fs.FileMode(0o644)
		if name == pki.CAKeyFile {
			mode = 0o600
		}
		if err := writeFile(filepath.Join(dir, name), data, mode); err != nil {
			return nil, false, err
		}
	}
	ca, err = pki.LoadCA(dir)
	return ca, made, err
}

func writeFile(name string, data []byte, mode fs.FileMode) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// runReplica runs one replica of a control plane kept in etcd until ctx is done: it
// serves the API and the node protocol, and leads the control loops while it holds the
// leadership.
func runReplica(ctx context.Context, g *globals, o *controlPlaneOptions, specs []dao.ServiceSpec, log *slog.Logger) error {
	cli, err := o.etcd.client()
	if err != nil {
		return err
	}
	defer cli.Close()
	out := &lockedWriter{w: g.stdout}
	fmt.Fprintf(out, "dao control-plane %s: opening the store in etcd at %s (%s)\n", version, o.etcd.endpoints, o.etcd.prefix)
	store, err := orchestrator.OpenEtcdStore(ctx, cli, orchestrator.WithEtcdPrefix(o.etcd.prefix), orchestrator.WithStoreLogger(log),
		orchestrator.WithEtcdCompaction(o.etcd.compact))
	if err != nil {
		return err
	}
	defer store.Close()
	caDir := filepath.Join(o.stateDir, controlPlaneCADir)
	ca, made, err := sharedCA(ctx, cli, o.etcd.prefix, caDir)
	if err != nil {
		return err
	}
	// api serves the API on this replica, leading or not; it runs no loops.
	api, err := orchestrator.New(store, orchestrator.WithLogger(log))
	if err != nil {
		return err
	}
	shared := &sharedCAState{cli: cli, key: o.etcd.prefix + etcdCAState, ca: ca, dir: caDir}
	var srv *cluster.Server
	// A node removed, or a certificate revoked, at another replica: its session here ends.
	shared.changed = func() {
		if ids := srv.CheckSessions(); len(ids) > 0 {
			log.Info("dao control-plane: closed the sessions of nodes another replica removed or revoked", "nodes", ids)
		}
	}
	srv, err = cluster.NewServer(ca, nil, cluster.WithCADir(caDir), cluster.WithServerLogger(log),
		cluster.WithStandbyReader(api), cluster.WithCAChanged(func(*pki.CA) error { return shared.push(ctx) }))
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	adminL, adminPath, err := listenAdmin(o.stateDir)
	if err != nil {
		l.Close()
		return err
	}
	addr := advertised(o.advertise, l.Addr())

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	events, err := api.Watch(runCtx, 0, watchedTypes())
	if err != nil {
		l.Close()
		adminL.Close()
		return err
	}
	var wg sync.WaitGroup
	p := &changePrinter{w: out}
	wg.Go(func() { p.follow(runCtx, api, events) })
	// The admin API works at every replica: its writes go to the shared store (and the
	// CA's state to etcd), where the leader's loops take them.
	admin := &adminServer{o: api, srv: srv, log: log, uid: os.Getuid()}
	wg.Go(func() {
		if err := admin.serve(runCtx, adminL); err != nil {
			log.Error("dao control-plane: the admin API stopped", "err", err)
		}
	})
	wg.Go(func() { shared.follow(runCtx, log) })
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	led := make(chan error, 1)
	go func() { led <- lead(runCtx, store, srv, addr, o.etcd.leaseTTL, out, log) }()
	defer func() {
		_ = srv.Close()
		<-served
		stop()
		<-led
		wg.Wait()
	}()

	what := "taken from etcd"
	if made {
		what = "made, and put in etcd"
	}
	fmt.Fprintf(out, "dao control-plane %s: a replica, serving nodes on %s (advertised as %s); store %s in etcd\n",
		version, l.Addr(), addr, store.ID())
	fmt.Fprintf(out, "  CA %s (pin %s), %s\n", what, hex.EncodeToString(pinOf(ca))[:16], inStore(ctx, api))
	printAdmin(out, adminPath, o.stateDir)
	for _, spec := range specs {
		if err := applyService(ctx, out, api, spec); err != nil {
			return err
		}
	}
	token, err := ca.NewJoinToken()
	if err == nil {
		err = ca.Save(caDir)
	}
	if err == nil {
		err = shared.push(ctx) // so that the token is good at every replica
	}
	if err != nil {
		return err
	}
	printJoin(out, token, addr, ", at any replica")

	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "dao control-plane: stopping; the nodes keep running their tasks")
		return nil
	case err := <-served:
		served <- err
		return fmt.Errorf("the node protocol stopped serving: %w", err)
	case err := <-led:
		led <- err
		return err
	}
}

// lead campaigns for the leadership until ctx is done, and while it holds it runs the
// orchestrator's loops over the store fenced on it and serves the nodes with them; while
// another replica leads, the server sends the nodes there.
func lead(ctx context.Context, store *orchestrator.EtcdStore, srv *cluster.Server, addr string, ttl time.Duration,
	out *lockedWriter, log *slog.Logger) error {
	for ctx.Err() == nil {
		// While standing by, keep the server pointed at the leader.
		cctx, stopFollowing := context.WithCancel(ctx)
		followed := make(chan struct{})
		go func() {
			defer close(followed)
			for {
				if v, err := store.Leader(cctx); err == nil && v != addr {
					srv.Follow(v)
				} else if errors.Is(err, orchestrator.ErrNoLeader) {
					srv.Follow("")
				}
				select {
				case <-cctx.Done():
					return
				case <-time.After(250 * time.Millisecond):
				}
			}
		}()
		l, err := store.Campaign(ctx, addr, orchestrator.WithLeaseTTL(ttl))
		stopFollowing()
		<-followed
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Warn("dao control-plane: campaign for the leadership", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		fmt.Fprintf(out, "dao control-plane: leading (etcd key %s, revision %d)\n", l.Key(), l.Revision())
		o, err := orchestrator.New(l.Store(), orchestrator.WithLogger(log))
		if err != nil {
			_ = l.Resign(context.Background())
			return err
		}
		rctx, stopRun := context.WithCancel(ctx)
		ran := make(chan error, 1)
		go func() { ran <- o.Run(rctx) }()
		srv.Lead(o)
		select {
		case <-ctx.Done():
		case <-l.Done():
			fmt.Fprintln(out, "dao control-plane: the leadership is lost; standing by")
		case err := <-ran:
			ran <- err
			log.Warn("dao control-plane: the orchestrator stopped; giving the leadership up", "err", err)
		}
		srv.Follow("")
		stopRun()
		<-ran
		rctx2, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = l.Resign(rctx2)
		cancel()
	}
	return nil
}
