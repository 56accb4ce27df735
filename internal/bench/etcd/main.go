// Command etcd measures the throughput of the control plane through its store: an
// orchestrator over orchestrator.EtcdStore on a 3-member etcd (real fsync), on a 1-member
// etcd, and over orchestrator.BoltStore (one machine), side by side.
//
//	go run ./internal/bench/etcd [-runs 3] [-tasks 100000] [-nodes 1000] [-members 3]
//	    [-stores etcd3,etcd1,bolt] [-cpuprofile FILE] [-timeout 10m] [-stall 2m]
//	    [-etcd-flags=--auto-compaction-mode=periodic,...] [-txn-ops 1024]
//	go run ./internal/bench/etcd -encoding [-tasks 1000000]
//
// Each run starts a fresh store of each kind, in turn (the order rotates from run to run):
// a new etcd cluster from Debian's etcd-server (internal/daemon.StartEtcd, fsync on), or a
// new bbolt file in a temporary directory. Over it an orchestrator with the system clock
// and default options drives -nodes simulated nodes (simnode, in this process, starting
// tasks at once, beating every second), each with room for at least twice its share of
// the tasks. Untimed: the store is opened and the nodes added. Timed from CreateService of
// one service of -tasks replicas (10m CPU and 16 MiB each): until the store holds every
// task on a node (placed), and until it holds every task running. The task writes are
// counted from a Watch of the store (one per task event), with the transactions that
// carry them, by the loop that wrote them (the cause of the event up to its first colon).
// CPU is measured over the same window: this process's (getrusage: the orchestrator, the
// store's client, and the simulated nodes and the counting watch, which are not control
// plane) and, apart, the etcd members' (utime+stime from /proc/PID/stat).
//
// The members run with etcd's defaults unless -etcd-flags adds some: no auto-compaction
// and a 2 GiB quota, which a million tasks fill (about 1 KB of etcd's database per task
// write; etcd then raises NOSPACE and refuses every write, and -stall ends the run).
// -txn-ops raises --max-txn-ops (and --max-request-bytes with it) and tells the store.
//
// -cpuprofile FILE writes a CPU profile of the timed window of each store's first run,
// to FILE.etcd3, FILE.etcd1 and FILE.bolt. It prints the median of the runs as a markdown
// table, and whether the targets hold: every task placed within 60 s, at least 2,000 task
// writes per second through etcd.
//
// -encoding measures encoding/json, which the bbolt store writes, against CBOR as the etcd
// store writes it (internal/cborenc: fxamacker/cbor with the same struct tags) and a
// hand-written protobuf wire encoding (google.golang.org/protobuf/encoding/protowire) on
// -tasks realistic tasks of one service; see encoding.go. The stores' -json and -cbor
// variants (etcd1-json, etcd1-cbor) compare the two encodings through the whole control
// plane.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/bench/benchutil"
	"github.com/opendao/dao/internal/daemon"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/orchestrator/simnode"
)

// Targets of the issue.
const (
	targetPlaced       = 60 * time.Second
	targetWritesPerSec = 2000
)

// Per task.
var taskResources = dao.Resources{MilliCPU: 10, Memory: 16 * dao.MiB}

func main() {
	runs := flag.Int("runs", 3, "runs of each store")
	tasks := flag.Int("tasks", 100_000, "replicas of the service (with -encoding: tasks to encode)")
	nodes := flag.Int("nodes", 1000, "simulated nodes")
	members := flag.Int("members", 3, "members of the larger etcd cluster (the other has 1)")
	stores := flag.String("stores", "etcd3,etcd1,bolt", "stores to measure, comma-separated: etcd3 (-members members), etcd1, bolt; an etcd store may name its encoding, etcd1-json or etcd1-cbor (the store's default)")
	services := flag.Int("services", 1, "spread the tasks over this many services")
	compact := flag.Duration("compact", 0, "the etcd stores' compaction interval (WithEtcdCompaction); 0 keeps the store's default")
	quota := flag.Int64("quota", 0, "etcd's --quota-backend-bytes; 0 keeps etcd's 2 GiB")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of each store's first timed window to `file`.STORE")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up on a run after this long")
	stall := flag.Duration("stall", 2*time.Minute, "give up on a run when the store has written no task for this long since its last one")
	etcdFlags := flag.String("etcd-flags", "", "more flags for every etcd member, comma-separated, such as --auto-compaction-retention=1m (the default is etcd's defaults)")
	txnOps := flag.Int("txn-ops", 0, "start etcd with --max-txn-ops this high (and --max-request-bytes to match) and tell the store (WithEtcdTxnLimit); 0 keeps etcd's 128")
	encoding := flag.Bool("encoding", false, "measure the encodings of -tasks tasks instead")
	flag.Parse()
	var err error
	if *encoding {
		err = runEncoding(os.Stdout, *tasks)
	} else {
		cfg := config{runs: *runs, tasks: *tasks, nodes: *nodes, members: *members, services: *services, compact: *compact, quota: *quota,
			stores: strings.Split(*stores, ","), cpuprofile: *cpuprofile, timeout: *timeout, stall: *stall, txnOps: *txnOps}
		if *etcdFlags != "" {
			cfg.etcdFlags = strings.Split(*etcdFlags, ",")
		}
		err = run(cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd:", err)
		os.Exit(1)
	}
}

type config struct {
	runs, tasks, nodes, members int
	services                    int
	compact                     time.Duration
	quota                       int64
	stores                      []string
	cpuprofile                  string
	timeout, stall              time.Duration
	etcdFlags                   []string
	txnOps                      int
}

// result is what one run of one store measured.
type result struct {
	placed, running time.Duration
	writes, txns    int
	self, etcd      time.Duration // CPU time
	dbBytes         int64         // the size of the first etcd member's database after the run
	byLoop          map[string]*loopCount
	statusTo        map[dao.TaskState]int
}

// loopCount counts the task writes of one loop (the cause up to its first colon).
type loopCount struct{ writes, txns int }

func run(cfg config) error {
	if cfg.runs < 1 || cfg.tasks < 1 || cfg.nodes < 1 || cfg.members < 1 || cfg.services < 1 || cfg.services > cfg.tasks {
		return fmt.Errorf("-runs, -tasks, -nodes, -members and -services must be positive, and -services at most -tasks")
	}
	for _, s := range cfg.stores {
		base, enc, _ := strings.Cut(s, "-")
		if s != "bolt" && (base != "etcd3" && base != "etcd1" || enc != "" && enc != "json" && enc != "cbor") {
			return fmt.Errorf("-stores: %q is not etcd3, etcd1 (with -json or -cbor, or neither) or bolt", s)
		}
	}
	extra := ""
	if len(cfg.etcdFlags) > 0 {
		extra = " -etcd-flags=" + strings.Join(cfg.etcdFlags, ",")
	}
	if cfg.txnOps > 0 {
		extra += fmt.Sprintf(" -txn-ops %d", cfg.txnOps)
	}
	if cfg.services > 1 {
		extra += fmt.Sprintf(" -services %d", cfg.services)
	}
	if cfg.compact > 0 {
		extra += fmt.Sprintf(" -compact %v", cfg.compact)
	}
	if cfg.quota > 0 {
		extra += fmt.Sprintf(" -quota %d", cfg.quota)
	}
	fmt.Printf("go run ./internal/bench/etcd -runs %d -tasks %d -nodes %d -members %d -stores %s%s\n",
		cfg.runs, cfg.tasks, cfg.nodes, cfg.members, strings.Join(cfg.stores, ","), extra)
	results := map[string][]result{}
	for r := range cfg.runs {
		for j := range cfg.stores {
			kind := cfg.stores[(j+r)%len(cfg.stores)] // rotate the order
			profile := ""
			if cfg.cpuprofile != "" && r == 0 {
				profile = cfg.cpuprofile + "." + kind
			}
			res, err := runOnce(cfg, kind, profile)
			if err != nil {
				return fmt.Errorf("run %d, %s: %w", r+1, kind, err)
			}
			fmt.Printf("run %d %-10s placed %6.1fs running %6.1fs  %d task writes in %d txns (%.0f/s)  CPU %.1fs + etcd %.1fs  db %d MB  %s %s\n",
				r+1, kind, res.placed.Seconds(), res.running.Seconds(), res.writes, res.txns,
				float64(res.writes)/res.running.Seconds(), res.self.Seconds(), res.etcd.Seconds(), res.dbBytes>>20, loops(res.byLoop), states(res.statusTo))
			results[kind] = append(results[kind], res)
			runtime.GC()
		}
	}
	printTable(cfg, results)
	return nil
}

func loops(m map[string]*loopCount) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d/%d", k, m[k].writes, m[k].txns))
	}
	return "[writes/txns: " + strings.Join(parts, ", ") + "]"
}

func states(m map[dao.TaskState]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return "[status writes to: " + strings.Join(parts, ", ") + "]"
}

func label(cfg config, kind string) string {
	base, enc, _ := strings.Cut(kind, "-")
	if enc != "" {
		enc = ", " + strings.ToUpper(enc)
	}
	switch base {
	case "etcd3":
		return fmt.Sprintf("EtcdStore, %d-member etcd%s", cfg.members, enc)
	case "etcd1":
		return "EtcdStore, 1-member etcd" + enc
	}
	return "BoltStore"
}

func printTable(cfg config, results map[string][]result) {
	svc := "one service"
	if cfg.services > 1 {
		svc = fmt.Sprintf("%d services", cfg.services)
	}
	fmt.Printf("\n%d tasks (%s) on %d simulated nodes; median of %d runs; fsync on\n\n", cfg.tasks, svc, cfg.nodes, cfg.runs)
	fmt.Println("| store | all placed | all running | task writes (txns) | task writes/s | CPU of this process | CPU of etcd | etcd database |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- |")
	met, measured := true, false
	for _, kind := range cfg.stores {
		rs := results[kind]
		med := func(f func(result) time.Duration) time.Duration {
			ds := make([]time.Duration, len(rs))
			for i, r := range rs {
				ds[i] = f(r)
			}
			return benchutil.Median(ds)
		}
		medN := func(f func(result) int) int {
			return int(med(func(r result) time.Duration { return time.Duration(f(r)) }))
		}
		// The rate per run, then its median.
		rate := float64(med(func(r result) time.Duration {
			return time.Duration(float64(r.writes) / r.running.Seconds())
		}))
		placed := med(func(r result) time.Duration { return r.placed })
		etcdCPU, db := "-", "-"
		if kind != "bolt" {
			measured = true
			etcdCPU = fmt.Sprintf("%.1f s", med(func(r result) time.Duration { return r.etcd }).Seconds())
			db = fmt.Sprintf("%d MB", med(func(r result) time.Duration { return time.Duration(r.dbBytes) })>>20)
			if placed > targetPlaced || rate < targetWritesPerSec {
				met = false
			}
		}
		fmt.Printf("| %s | %.1f s | %.1f s | %d (%d) | %.0f | %.1f s | %s | %s |\n", label(cfg, kind),
			placed.Seconds(), med(func(r result) time.Duration { return r.running }).Seconds(),
			medN(func(r result) int { return r.writes }), medN(func(r result) int { return r.txns }),
			rate, med(func(r result) time.Duration { return r.self }).Seconds(), etcdCPU, db)
	}
	word := "met"
	switch {
	case !measured:
		word = "not measured (no etcd store ran)"
	case !met:
		word = "NOT met"
	}
	fmt.Printf("\ntargets through etcd (all placed within %v, at least %d task writes/s): %s\n", targetPlaced, targetWritesPerSec, word)
}

// opened is a store under test and what to close with it.
type opened struct {
	store orchestrator.Store
	pids  []int  // the etcd members'
	db    string // the first member's database file
	close func()
}

func openStore(cfg config, kind string) (*opened, error) {
	quiet := slog.New(slog.DiscardHandler)
	if kind == "bolt" {
		dir, err := os.MkdirTemp("", "dao-bench-bolt-")
		if err != nil {
			return nil, err
		}
		s, err := orchestrator.OpenBoltStore(filepath.Join(dir, "store.db"), orchestrator.WithStoreLogger(quiet))
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		return &opened{store: s, close: func() { s.Close(); os.RemoveAll(dir) }}, nil
	}
	base, enc, _ := strings.Cut(kind, "-")
	n := 1
	if base == "etcd3" {
		n = cfg.members
	}
	var opts []daemon.EtcdOption
	flags := cfg.etcdFlags
	if cfg.quota > 0 {
		flags = append(slices.Clone(flags), fmt.Sprintf("--quota-backend-bytes=%d", cfg.quota))
	}
	if len(flags) > 0 {
		opts = append(opts, daemon.WithEtcdFlags(flags...))
	}
	var storeOpts []orchestrator.StoreOption
	switch enc {
	case "json":
		storeOpts = append(storeOpts, orchestrator.WithEtcdEncoding(orchestrator.EtcdJSON))
	case "cbor":
		storeOpts = append(storeOpts, orchestrator.WithEtcdEncoding(orchestrator.EtcdCBOR))
	}
	if cfg.compact > 0 {
		storeOpts = append(storeOpts, orchestrator.WithEtcdCompaction(cfg.compact))
	}
	if cfg.txnOps > 0 {
		bytes := max(orchestrator.DefaultEtcdMaxRequestBytes, cfg.txnOps*2048)
		opts = append(opts, daemon.WithEtcdMaxTxnOps(cfg.txnOps), daemon.WithEtcdMaxRequestBytes(bytes))
		storeOpts = append(storeOpts, orchestrator.WithEtcdTxnLimit(cfg.txnOps, bytes))
	}
	ec, err := daemon.StartEtcd(n, opts...)
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: ec.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		MaxCallSendMsgSize: 64 << 20})
	if err != nil {
		ec.Close()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := orchestrator.OpenEtcdStore(ctx, cli, append(storeOpts, orchestrator.WithStoreLogger(quiet))...)
	if err != nil {
		cli.Close()
		ec.Close()
		return nil, err
	}
	var pids []int
	for _, m := range ec.Members() {
		pid, err := findPid(m.DataDir)
		if err != nil {
			s.Close()
			cli.Close()
			ec.Close()
			return nil, err
		}
		pids = append(pids, pid)
	}
	db := filepath.Join(ec.Members()[0].DataDir, "member", "snap", "db")
	return &opened{store: s, pids: pids, db: db, close: func() { s.Close(); cli.Close(); ec.Close() }}, nil
}

// findPid returns the process that runs etcd on dataDir, a child of this process.
func findPid(dataDir string) (int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	want := "--data-dir\x00" + dataDir + "\x00"
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && strings.Contains(string(b), want) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no etcd process runs on %s", dataDir)
}

// procCPU returns the user and system CPU time of process pid.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// pid (comm) state ppid ... : utime and stime are fields 14 and 15, counted from 1;
	// comm may hold spaces, so count from after its closing parenthesis.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / ticks, nil
}

func etcdCPU(pids []int) (time.Duration, error) {
	var sum time.Duration
	for _, p := range pids {
		d, err := procCPU(p)
		if err != nil {
			return 0, err
		}
		sum += d
	}
	return sum, nil
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// counter counts the task writes of the store from its events.
type counter struct {
	mu                     sync.Mutex
	writes, txns           int
	placed, running, tasks int
	byLoop                 map[string]*loopCount
	statusTo               map[dao.TaskState]int // the status writes, by the state they write
	lastRev                uint64
	err                    error
}

func (c *counter) add(e *orchestrator.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.Err != nil {
		c.err = fmt.Errorf("the counting watch ended: %w", e.Err)
		return
	}
	loop, _, _ := strings.Cut(e.Cause, ":")
	lc := c.byLoop[loop]
	if lc == nil {
		lc = &loopCount{}
		c.byLoop[loop] = lc
	}
	c.writes++
	lc.writes++
	if loop == "status" {
		c.statusTo[e.Task.Status.State]++
	}
	if e.Revision != c.lastRev {
		c.txns++
		lc.txns++
		c.lastRev = e.Revision
	}
	count := func(t *orchestrator.Task, n int) {
		c.tasks += n
		if t.NodeID != "" {
			c.placed += n
		}
		if t.Status.State == dao.TaskRunning {
			c.running += n
		}
	}
	if e.Kind != orchestrator.EventDeleted {
		count(e.Task, 1)
	}
	if e.PrevTask != nil {
		count(e.PrevTask, -1)
	} else if e.Kind == orchestrator.EventDeleted {
		count(e.Task, -1)
	}
}

func (c *counter) snapshot() (placed, running, tasks int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.placed, c.running, c.tasks, c.err
}

func runOnce(cfg config, kind, profile string) (res result, err error) {
	st, err := openStore(cfg, kind)
	if err != nil {
		return res, err
	}
	defer st.close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The orchestrator's warnings (a watch that fell behind, nodes held or down) say why a
	// run went wrong.
	o, err := orchestrator.New(st.store, orchestrator.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		return res, err
	}
	perNode := (cfg.tasks + cfg.nodes - 1) / cfg.nodes
	room := dao.Resources{MilliCPU: 2 * int64(perNode) * taskResources.MilliCPU, Memory: 2 * int64(perNode) * taskResources.Memory}
	cluster, err := simnode.NewCluster(cfg.nodes, simnode.WithClusterSeed(1),
		simnode.WithShapes(func(_ int, _ *rand.Rand, n *dao.Node) {
			n.Capacity.MilliCPU = max(n.Capacity.MilliCPU, room.MilliCPU)
			n.Capacity.Memory = max(n.Capacity.Memory, room.Memory)
			n.Allocatable = n.Capacity
		}),
		simnode.WithClusterStatusFunc(o.ReportStatus),
		simnode.WithClusterHeartbeat(time.Second, func(id string, _ time.Time) { _ = o.Heartbeat(id) }))
	if err != nil {
		return res, err
	}
	defer cluster.Close()
	runDone := make(chan error, 1)
	go func() { runDone <- o.Run(ctx) }()
	defer func() {
		cancel()
		if rerr := <-runDone; rerr != nil && !errors.Is(rerr, context.Canceled) && err == nil {
			err = fmt.Errorf("orchestrator: %w", rerr)
		}
	}()
	for _, n := range cluster.Nodes() {
		if err := o.AddNode(ctx, n.Info(), n); err != nil {
			return res, err
		}
	}

	var rev uint64
	if err := st.store.View(ctx, func(tx orchestrator.ReadTx) error { rev = tx.Revision(); return nil }); err != nil {
		return res, err
	}
	events, err := st.store.Watch(ctx, rev+1, orchestrator.WatchTypes(orchestrator.TaskObject))
	if err != nil {
		return res, err
	}
	c := &counter{byLoop: map[string]*loopCount{}, statusTo: map[dao.TaskState]int{}}
	counted := make(chan struct{})
	go func() {
		defer close(counted)
		for e := range events {
			c.add(&e)
		}
	}()
	defer func() { cancel(); <-counted }()

	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return res, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return res, err
		}
		defer pprof.StopCPUProfile()
	}
	etcd0, err := etcdCPU(st.pids)
	if err != nil {
		return res, err
	}
	self0 := selfCPU()
	begin := time.Now()
	for i := range cfg.services {
		spec := serviceSpec(cfg.tasks/cfg.services + btoi(i < cfg.tasks%cfg.services))
		if cfg.services > 1 {
			spec.Name = fmt.Sprintf("web-%d", i)
		}
		if _, err := o.CreateService(ctx, spec); err != nil {
			return res, err
		}
	}
	lastWrites, lastMove := 0, begin
	for {
		placed, running, tasks, err := c.snapshot()
		if err != nil {
			return res, err
		}
		c.mu.Lock()
		writes := c.writes
		c.mu.Unlock()
		if writes != lastWrites {
			lastWrites, lastMove = writes, time.Now()
		} else if writes > 0 && time.Since(lastMove) > cfg.stall {
			return res, fmt.Errorf("after %v, no task written for %v (%d writes): %d tasks, %d placed, %d running of %d",
				time.Since(begin).Round(time.Second), cfg.stall, writes, tasks, placed, running, cfg.tasks)
		}
		if res.placed == 0 && tasks == cfg.tasks && placed == cfg.tasks {
			res.placed = time.Since(begin)
		}
		if running == cfg.tasks {
			res.running = time.Since(begin)
			break
		}
		if time.Since(begin) > cfg.timeout {
			c.mu.Lock()
			byLoop := loops(c.byLoop)
			c.mu.Unlock()
			return res, fmt.Errorf("after %v: %d tasks, %d placed, %d running of %d (the store holds %s) %s",
				cfg.timeout, tasks, placed, running, cfg.tasks, storeCount(st.store), byLoop)
		}
		time.Sleep(5 * time.Millisecond)
	}
	res.self = selfCPU() - self0
	// The count from the events must be the store's: a task counted twice, or a slot that
	// has two live tasks, is a bug of the store or of the loops.
	if got := storeCount(st.store); got != fmt.Sprintf("%d tasks, %d placed, %d running, 0 slots with two live tasks", cfg.tasks, cfg.tasks, cfg.tasks) {
		return res, fmt.Errorf("the events counted %d tasks, all running, but the store holds %s", cfg.tasks, got)
	}
	etcd1, err := etcdCPU(st.pids)
	if err != nil {
		return res, err
	}
	res.etcd = etcd1 - etcd0
	if st.db != "" {
		if fi, err := os.Stat(st.db); err == nil {
			res.dbBytes = fi.Size()
		}
	}
	if profile != "" {
		pprof.StopCPUProfile()
	}
	c.mu.Lock()
	res.writes, res.txns, res.byLoop, res.statusTo = c.writes, c.txns, c.byLoop, c.statusTo
	c.mu.Unlock()
	return res, nil
}

// storeCount reads the store's tasks and says how many there are, placed and running, and
// how many slots of a service have more than one task that is not terminal.
func storeCount(store orchestrator.Store) string {
	var tasks, placed, running, twice int
	type slot struct {
		service string
		n       int
	}
	live := map[slot]int{}
	err := store.View(context.Background(), func(tx orchestrator.ReadTx) error {
		for t := range tx.Tasks() {
			tasks++
			if t.NodeID != "" {
				placed++
			}
			if t.Status.State == dao.TaskRunning {
				running++
			}
			if !t.Status.State.Terminal() && t.DesiredState <= dao.TaskRunning {
				k := slot{t.ServiceID, t.Slot}
				if live[k]++; live[k] == 2 {
					twice++
				}
			}
		}
		return nil
	})
	if err != nil {
		return "nothing readable: " + err.Error()
	}
	return fmt.Sprintf("%d tasks, %d placed, %d running, %d slots with two live tasks", tasks, placed, running, twice)
}

// serviceSpec is the service of the benchmark: a small web service, as a user would write
// it (a few variables, a port, a health check, labels), of n replicas.
func serviceSpec(n int) dao.ServiceSpec {
	return dao.ServiceSpec{Name: "web", Replicas: n, Container: containerSpec()}
}

func containerSpec() dao.ContainerSpec {
	return dao.ContainerSpec{
		Image:     "registry.example.com/shop/web:1.4.2",
		Args:      []string{"--listen", ":8080"},
		Env:       []string{"LOG_LEVEL=info", "DB_HOST=db.internal", "CACHE_TTL=30s"},
		Resources: taskResources,
		Ports:     []dao.PortMapping{{Name: "http", ContainerPort: 8080}},
		HealthCheck: &dao.HealthCheck{Command: []string{"/bin/check", "http://127.0.0.1:8080/healthz"},
			Interval: dao.Duration(10 * time.Second), Timeout: dao.Duration(2 * time.Second), Retries: 3},
		Labels: map[string]string{"app": "web", "team": "shop"},
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
