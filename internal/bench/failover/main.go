// Command failover measures how quickly a highly available control plane heals when its
// leader dies: three `dao control-plane --etcd` replicas (separate processes, every
// default: a 3 s lease) on a three-member etcd (Debian's etcd-server, default timings, on
// loopback), with simulated nodes connected over the real node protocol (mutual TLS),
// running one service.
//
//	go run ./internal/bench/failover [-runs 20] [-nodes 50] [-tasks 200]
//
// Each run kills the leading replica with SIGKILL at a random point and times, from the
// signal: a new leader's first write that etcd accepted (the store's revision key names
// the leadership it was written under), and every node connected to the new leader (its
// record written again under the new leadership) with every task of the service running.
// Then the killed replica is started again, as a standby, for the next run. It prints
// each run and the median, p90, p99 (the largest, under 100 runs) and maximum.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/opendao/dao"
	"github.com/opendao/dao/cluster"
	"github.com/opendao/dao/internal/daemon"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/orchestrator/simnode"
)

func main() {
	runs := flag.Int("runs", 20, "failovers")
	nodes := flag.Int("nodes", 50, "simulated nodes")
	tasks := flag.Int("tasks", 200, "replicas of the service")
	flag.Parse()
	if err := run(*runs, *nodes, *tasks); err != nil {
		fmt.Fprintln(os.Stderr, "failover:", err)
		os.Exit(1)
	}
}

type replica struct {
	name, addr, dir string
	cmd             *exec.Cmd
	log             *syncBuffer
	exited          chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (r *replica) start(bin string, endpoints []string) error {
	r.log = &syncBuffer{}
	r.exited = make(chan struct{})
	r.cmd = exec.Command(bin, "control-plane", "--etcd", strings.Join(endpoints, ","), "--listen", r.addr, "--state-dir", r.dir)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		return err
	}
	go func() { _ = r.cmd.Wait(); close(r.exited) }()
	return nil
}

func (r *replica) kill() {
	_ = r.cmd.Process.Kill()
	<-r.exited
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func buildDao(dir string) (string, error) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	bin := filepath.Join(dir, "dao")
	cmd := exec.Command("go", "build", "-o", bin, "./examples/dao")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./examples/dao: %v\n%s", err, out)
	}
	return bin, nil
}

func run(runs, nodes, tasks int) error {
	dir, err := os.MkdirTemp("", "dao-bench-failover-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := buildDao(dir)
	if err != nil {
		return err
	}
	etcd, err := daemon.StartEtcd(3)
	if err != nil {
		return err
	}
	defer etcd.Close()
	var reps []*replica
	for i := range 3 {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		r := &replica{name: fmt.Sprintf("cp%d", i+1), addr: addr, dir: filepath.Join(dir, fmt.Sprintf("cp%d", i+1))}
		if err := r.start(bin, etcd.Endpoints()); err != nil {
			return err
		}
		defer r.kill()
		reps = append(reps, r)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx := context.Background()
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	store, err := orchestrator.OpenEtcdStore(octx, cli)
	cancel()
	if err != nil {
		return err
	}
	defer store.Close()
	api, err := orchestrator.New(store)
	if err != nil {
		return err
	}
	leaderOf := func() *replica {
		v, err := store.Leader(ctx)
		if err != nil {
			return nil
		}
		for _, r := range reps {
			if r.addr == v && strings.Contains(r.log.String(), "leading") {
				return r
			}
		}
		return nil
	}
	if err := waitUntil(60*time.Second, func() bool { return leaderOf() != nil }); err != nil {
		return fmt.Errorf("no leader: %w", err)
	}
	token, err := tokenOf(reps[0])
	if err != nil {
		return err
	}
	var addrs []string
	for _, r := range reps {
		addrs = append(addrs, r.addr)
	}
	stopNodes, err := startNodes(reps[0].addr, strings.Join(addrs, ","), token, nodes)
	if err != nil {
		return err
	}
	defer stopNodes()
	spec := dao.ServiceSpec{Name: "web", Replicas: tasks, Container: dao.ContainerSpec{
		Image: "example.com/web:1", Resources: dao.Resources{MilliCPU: 10, Memory: 16 * dao.MiB}}}
	if _, err := api.CreateService(ctx, spec); err != nil {
		return err
	}
	converged := func(after uint64) bool {
		if err := store.Sync(ctx); err != nil {
			return false
		}
		ns, err := api.Nodes(ctx)
		if err != nil || len(ns) != nodes {
			return false
		}
		for _, n := range ns {
			if n.Status.State != dao.NodeReady || n.Revision <= after {
				return false
			}
		}
		ts, err := api.Tasks(ctx, orchestrator.TaskFilter{ServiceID: "web", Live: true})
		if err != nil || len(ts) != tasks {
			return false
		}
		for _, t := range ts {
			if t.Status.State != dao.TaskRunning {
				return false
			}
		}
		return true
	}
	if err := waitUntil(2*time.Minute, func() bool { return converged(0) }); err != nil {
		return fmt.Errorf("the service did not run at first: %w", err)
	}
	fmt.Printf("Failover: 3 replicas of dao control-plane on a 3-member etcd, %d simulated nodes, a service of %d tasks; %d runs\n",
		nodes, tasks, runs)
	var firstWrite, healed []time.Duration
	for i := range runs {
		old := leaderOf()
		if old == nil {
			return fmt.Errorf("run %d: no leader", i+1)
		}
		oldKey, err := leaderKey(ctx, cli)
		if err != nil {
			return err
		}
		// At a random point of the lease's renewal period.
		time.Sleep(time.Duration(rand.Int64N(int64(time.Second))))
		start, _ := cli.Get(ctx, orchestrator.DefaultEtcdPrefix+"meta/rev")
		killed := time.Now()
		old.kill()
		wctx, stopWatch := context.WithTimeout(ctx, time.Minute)
		wrote := make(chan uint64, 1)
		go func() {
			defer close(wrote)
			for resp := range cli.Watch(wctx, orchestrator.DefaultEtcdPrefix+"meta/rev", clientv3.WithRev(start.Header.Revision+1)) {
				for _, ev := range resp.Events {
					var r struct {
						Revision uint64 `json:"revision"`
						Fence    string `json:"fence"`
					}
					if json.Unmarshal(ev.Kv.Value, &r) == nil && r.Fence != "" && r.Fence != oldKey {
						wrote <- r.Revision
						return
					}
				}
			}
		}()
		rev, ok := <-wrote
		stopWatch()
		if !ok {
			return fmt.Errorf("run %d: no write of a new leader within a minute", i+1)
		}
		fw := time.Since(killed)
		if err := waitUntil(time.Minute, func() bool { return converged(rev - 1) }); err != nil {
			return fmt.Errorf("run %d: not converged after the failover: %w", i+1, err)
		}
		h := time.Since(killed)
		firstWrite, healed = append(firstWrite, fw), append(healed, h)
		now := leaderOf()
		fmt.Printf("  run %2d: killed %s; %s leads, first write %.2f s, all nodes on it and %d tasks running %.2f s\n",
			i+1, old.name, nameOf(now), fw.Seconds(), tasks, h.Seconds())
		if err := old.start(bin, etcd.Endpoints()); err != nil {
			return err
		}
		if err := waitUntil(30*time.Second, func() bool { return strings.Contains(old.log.String(), "dao agent --join") }); err != nil {
			return fmt.Errorf("run %d: %s did not start again", i+1, old.name)
		}
	}
	fmt.Printf("\n| from SIGKILL of the leader to | median | p90 | p99 | max |\n| --- | --- | --- | --- | --- |\n")
	for _, row := range []struct {
		what string
		ds   []time.Duration
	}{{"the new leader's first write", firstWrite}, {"every node on the new leader, every task running", healed}} {
		fmt.Printf("| %s | %.2f s | %.2f s | %.2f s | %.2f s |\n", row.what,
			pct(row.ds, 50).Seconds(), pct(row.ds, 90).Seconds(), pct(row.ds, 99).Seconds(), slices.Max(row.ds).Seconds())
	}
	return nil
}

func nameOf(r *replica) string {
	if r == nil {
		return "?"
	}
	return r.name
}

// pct returns the p-th percentile (nearest rank).
func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s) + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

func leaderKey(ctx context.Context, cli *clientv3.Client) (string, error) {
	resp, err := cli.Get(ctx, orchestrator.DefaultEtcdPrefix+"leader/", clientv3.WithFirstCreate()...)
	if err != nil || len(resp.Kvs) == 0 {
		return "", fmt.Errorf("leader key: %v", err)
	}
	return string(resp.Kvs[0].Key), nil
}

func tokenOf(r *replica) (string, error) {
	var tok string
	err := waitUntil(30*time.Second, func() bool {
		for _, line := range strings.Split(r.log.String(), "\n") {
			if f := strings.Fields(line); len(f) >= 4 && f[0] == "dao" && f[1] == "agent" && f[2] == "--join" {
				tok = f[3]
				return true
			}
		}
		return false
	})
	return tok, err
}

// startNodes joins n simulated nodes at joinAddr and connects them to the replicas.
func startNodes(joinAddr, addrs, token string, n int) (stop func(), err error) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var closers []func()
	stop = func() {
		cancel()
		wg.Wait()
		for _, c := range closers {
			c()
		}
	}
	for i := range n {
		id := fmt.Sprintf("node-%03d", i)
		ident, err := cluster.Join(ctx, joinAddr, token, id)
		if err != nil {
			stop()
			return nil, err
		}
		info := dao.Node{ID: id, Capacity: dao.Resources{MilliCPU: 4000, Memory: 8 * dao.GiB},
			Allocatable: dao.Resources{MilliCPU: 4000, Memory: 8 * dao.GiB}}
		var c *cluster.Client
		node, err := simnode.New(info, simnode.WithStatusFunc(func(u orchestrator.TaskUpdate) { c.Report(u) }))
		if err != nil {
			stop()
			return nil, err
		}
		closers = append(closers, func() { node.Close() })
		if c, err = cluster.NewClient(addrs, ident, info, node); err != nil {
			stop()
			return nil, err
		}
		wg.Go(func() { _ = c.Run(ctx) })
	}
	return stop, nil
}

func waitUntil(within time.Duration, cond func() bool) error {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", within)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}
