package agentsim

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/opendao/dao/cluster"
	"github.com/opendao/dao/internal/bench/benchutil"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/orchestrator/simnode"
)

// EnvChild, set to "1" in a process's environment, makes it a child of simulated agents.
const EnvChild = "DAO_BENCH_AGENTSIM"

// IsChild reports whether this process was started by Start.
func IsChild() bool { return os.Getenv(EnvChild) == "1" }

// NodeID returns the ID of the benchmark's i-th node.
func NodeID(i int) string { return fmt.Sprintf("node-%04d", i) }

// Main runs the child: the nodes NodeID(from) to NodeID(from+count-1), their identities
// in dir/<node ID>, connected to the control plane at addr, until its standard input
// closes. It returns the exit code.
//
//	-addr host:port -dir DIR -from N -count N [-cpus 1,2]
//
// Its standard input takes commands, one a line: "profile FILE" starts a CPU profile of the
// child into FILE, "endprofile" ends it and the child answers "profiled".
func Main(args []string) int {
	fs := flag.NewFlagSet("agentsim", flag.ContinueOnError)
	addr := fs.String("addr", "", "control plane address")
	dir := fs.String("dir", "", "directory of the identities, one subdirectory per node")
	from := fs.Int("from", 0, "first node")
	count := fs.Int("count", 1, "nodes")
	cpus := fs.String("cpus", "", "run on these CPUs only, comma-separated")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	out := bufio.NewWriter(os.Stdout)
	fail := func(err error) int {
		fmt.Fprintf(out, "error %v\n", err)
		out.Flush()
		return 1
	}
	if *cpus != "" {
		set, err := benchutil.ParseCPUs(*cpus)
		if err == nil {
			err = benchutil.Pin(set)
		}
		if err != nil {
			return fail(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tally := &Tally{}
	var clients []*cluster.Client
	done := make(chan error, *count)
	for i := *from; i < *from+*count; i++ {
		id := NodeID(i)
		ident, err := cluster.LoadIdentity(filepath.Join(*dir, id))
		if err != nil {
			return fail(err)
		}
		info := NodeInfo(id)
		var c *cluster.Client
		n, err := simnode.New(info, simnode.WithStatusFunc(func(u orchestrator.TaskUpdate) { c.Report(u) }))
		if err != nil {
			return fail(err)
		}
		defer n.Close()
		c, err = cluster.NewClient(*addr, ident, info, Count(n, tally))
		if err != nil {
			return fail(err)
		}
		clients = append(clients, c)
		go func() { done <- c.Run(ctx) }()
	}
	// The parent closes our standard input when it is done with us, or by dying.
	cmds := make(chan string)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			cmds <- sc.Text()
		}
		close(cmds)
	}()
	var profile *os.File
	defer func() {
		if profile != nil {
			pprof.StopCPUProfile()
			profile.Close()
		}
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	lastConn, lastHeld, lastAt, lastAssigns := -1, -1, time.Time{}, -1
	for {
		select {
		case cmd, ok := <-cmds:
			if !ok {
				cancel()
				for range clients {
					<-done
				}
				return 0
			}
			switch name, arg, _ := strings.Cut(cmd, " "); {
			case name == "profile" && profile == nil:
				f, err := os.Create(arg)
				if err == nil {
					err = pprof.StartCPUProfile(f)
				}
				if err != nil {
					return fail(err)
				}
				profile = f
			case name == "endprofile" && profile != nil:
				pprof.StopCPUProfile()
				if err := profile.Close(); err != nil {
					return fail(err)
				}
				profile = nil
				fmt.Fprintln(out, "profiled")
			default:
				return fail(fmt.Errorf("unknown command %q", cmd))
			}
		case err := <-done:
			// Run returns early only when the control plane refuses the node for good.
			return fail(err)
		case <-tick.C:
		}
		conn := 0
		for _, c := range clients {
			if c.Connected() {
				conn++
			}
		}
		held, at := tally.Get()
		assigns := tally.Assigns()
		if conn != lastConn {
			fmt.Fprintf(out, "connected %d\n", conn)
			lastConn = conn
		}
		if held != lastHeld || !at.Equal(lastAt) || assigns != lastAssigns {
			ns := int64(0)
			if !at.IsZero() {
				ns = at.UnixNano()
			}
			fmt.Fprintf(out, "held %d %d %d\n", held, ns, assigns)
			lastHeld, lastAt, lastAssigns = held, at, assigns
		}
		if err := out.Flush(); err != nil {
			return 1 // the parent is gone
		}
	}
}
