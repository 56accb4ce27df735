package cluster_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/cluster"
)

// scripted is a local node whose statuses the test writes: it keeps what it is assigned,
// and says it runs what the test sets.
type scripted struct {
	mu       sync.Mutex
	assigned []dao.Task
	tasks    []dao.Task
}

func (s *scripted) Assign(a dao.Assignment) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.assigned = slices.Clone(a.Tasks)
	return nil
}

func (s *scripted) Tasks() []dao.Task {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.tasks)
}

func (s *scripted) set(tasks ...dao.Task) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tasks = tasks
}

func (s *scripted) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, t := range s.assigned {
		ids = append(ids, t.ID)
	}
	slices.Sort(ids)
	return ids
}

// TestStatusOrderSurvivesRestartsAndClocks: a node numbers its status updates from a
// counter kept in its state directory, and the control plane orders them by it. After a
// restart of the agent with its clock an hour behind, its newer reports still win; and an
// update that waited in the agent's queue across a reconnection, stamped an hour ahead (by
// a clock since set right), does not undo the newer status of the hello. By the
// timestamps alone, both would go wrong.
func TestStatusOrderSurvivesRestartsAndClocks(t *testing.T) {
	p := newPlane(t, nil)
	ident := p.join("edge-1")
	dir := t.TempDir()
	local := &scripted{}
	info := dao.Node{ID: "edge-1", Capacity: dao.Resources{MilliCPU: 4000, Memory: 8 * dao.GiB},
		Allocatable: dao.Resources{MilliCPU: 4000, Memory: 8 * dao.GiB}}
	// start runs a client of the node, as a start of the agent's program does; report,
	// when set, is called before it connects.
	start := func(report func(c *cluster.Client)) (c *cluster.Client, stop func()) {
		t.Helper()
		c, err := cluster.NewClient(p.addr, ident, info, local, cluster.WithIdentityDir(dir),
			cluster.WithBackoff(20*time.Millisecond, 200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if report != nil {
			report(c)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		var once sync.Once
		stop = func() { once.Do(func() { cancel(); <-done }) }
		t.Cleanup(stop)
		p.waitFor("connected", 5*time.Second, c.Connected)
		return c, stop
	}
	now := time.Now()
	running := func(id string, restarts int, at time.Time) dao.TaskStatus {
		return dao.TaskStatus{State: dao.TaskRunning, PID: 100 + uint32(restarts), Restarts: restarts, Timestamp: at}
	}
	stored := func(id string) dao.TaskStatus {
		t.Helper()
		task, err := p.o.Task(p.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return task.Status
	}
	waitRestarts := func(id string, n int) {
		t.Helper()
		p.waitFor("task "+id+" at "+strconv.Itoa(n)+" restarts", 5*time.Second, func() bool {
			st := stored(id)
			return st.State == dao.TaskRunning && st.Restarts == n
		})
	}

	c, stop := start(nil)
	if _, err := p.o.CreateService(p.ctx, webSpec(2)); err != nil {
		t.Fatal(err)
	}
	p.waitFor("2 tasks assigned", 5*time.Second, func() bool { return len(local.ids()) == 2 })
	ids := local.ids()
	a, b := ids[0], ids[1]
	for _, id := range ids {
		c.Report(dao.TaskUpdate{TaskID: id, Status: running(id, 0, now)})
	}
	waitRestarts(a, 0)
	waitRestarts(b, 0)
	seqA := stored(a).Seq
	if seqA == 0 {
		t.Fatalf("the stored status is not numbered: %+v", stored(a))
	}

	// The agent restarts with its clock an hour behind: its container of a restarts.
	stop()
	local.set(dao.Task{ID: a, Status: running(a, 0, now)}, dao.Task{ID: b, Status: running(b, 0, now)})
	c, stop = start(nil)
	c.Report(dao.TaskUpdate{TaskID: a, Status: running(a, 1, now.Add(-time.Hour))})
	waitRestarts(a, 1)
	if st := stored(a); st.Seq <= seqA {
		t.Errorf("after the restart, the status is numbered %d, not above %d of before", st.Seq, seqA)
	}

	// Again, and meanwhile the clock was an hour ahead and set right: an update of b from
	// then waits in the queue; by the time the agent connects, b has restarted twice more
	// (the hello says so). The update sent after the hello is older news.
	stop()
	local.set(dao.Task{ID: a, Status: running(a, 1, now.Add(-time.Hour))}, dao.Task{ID: b, Status: running(b, 3, now.Add(time.Minute))})
	c, stop = start(func(c *cluster.Client) {
		c.Report(dao.TaskUpdate{TaskID: b, Status: running(b, 2, now.Add(time.Hour))})
	})
	waitRestarts(b, 3)
	c.Report(dao.TaskUpdate{TaskID: a, Status: running(a, 2, now.Add(2*time.Minute))}) // after the queued one
	waitRestarts(a, 2)
	if st := stored(b); st.Restarts != 3 {
		t.Errorf("task %s: the queued old update won over the hello: %d restarts, want 3", b, st.Restarts)
	}
	stop()

	raw, err := os.ReadFile(filepath.Join(dir, cluster.SeqFile))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 64); err != nil || n <= stored(a).Seq {
		t.Errorf("%s holds %q, want a number above the last one sent, %d", cluster.SeqFile, raw, stored(a).Seq)
	}
}
