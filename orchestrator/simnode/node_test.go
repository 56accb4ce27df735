package simnode_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendao/dao"
	"github.com/opendao/dao/clock"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/orchestrator/simnode"
)

// recorder keeps the updates a node reports, in a few words each: "web.1 running".
type recorder struct {
	mu      sync.Mutex
	updates []orchestrator.TaskUpdate
}

func (r *recorder) record(u orchestrator.TaskUpdate) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.updates = append(r.updates, u)
}

// take returns the updates reported since the last call, in a few words each.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, u := range r.updates {
		s := u.TaskID + " " + u.Status.State.String()
		if u.Status.Restarts > 0 {
			s += fmt.Sprintf(" restarts=%d", u.Status.Restarts)
		}
		if u.Status.PID == 0 && u.Status.State == dao.TaskRunning {
			s += " exited"
		}
		out = append(out, s)
	}
	r.updates = nil
	return out
}

func (r *recorder) last() orchestrator.TaskUpdate {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.updates[len(r.updates)-1]
}

type fixture struct {
	clock *clock.Manual
	node  *simnode.Node
	rec   *recorder
}

func newFixture(t *testing.T, info dao.Node, opts ...simnode.Option) *fixture {
	t.Helper()
	f := &fixture{clock: clock.NewManual(t0), rec: &recorder{}}
	if info.ID == "" {
		info.ID = "n1"
	}
	opts = append([]simnode.Option{simnode.WithClock(f.clock), simnode.WithStatusFunc(f.rec.record), simnode.WithSeed(1, 2)}, opts...)
	n, err := simnode.New(info, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	f.node = n
	return f
}

func (f *fixture) assign(t *testing.T, rev uint64, tasks ...dao.Task) {
	t.Helper()
	if err := f.node.Assign(orchestrator.Assignment{Revision: rev, Tasks: tasks}); err != nil {
		t.Fatalf("Assign(%d): %v", rev, err)
	}
}

// expect advances the clock by d and checks the updates reported meanwhile.
func (f *fixture) expect(t *testing.T, d time.Duration, want ...string) {
	t.Helper()
	f.clock.Advance(d)
	if diff := cmp.Diff(want, f.rec.take()); diff != "" {
		t.Errorf("after %s more: updates (-want +got):\n%s", d, diff)
	}
}

func simTask(id string, res dao.Resources) dao.Task {
	return dao.Task{ID: id, ServiceID: "web", Spec: dao.ContainerSpec{Image: "registry.example.com/web:1", Resources: res},
		DesiredState: dao.TaskRunning}
}

func TestNodeRunsAndStopsTasks(t *testing.T) {
	t.Parallel()
	f := newFixture(t, dao.Node{}, simnode.WithStartLatency(simnode.Fixed(time.Second)),
		simnode.WithStopLatency(simnode.Fixed(2*time.Second)))
	a, b := simTask("a", dao.Resources{}), simTask("b", dao.Resources{})
	f.assign(t, 1, a, b)
	f.expect(t, 0, "a preparing", "b preparing")
	f.expect(t, 999*time.Millisecond)
	f.expect(t, time.Millisecond, "a running", "b running")
	got, ok := f.node.Task("a")
	if !ok || got.Status.State != dao.TaskRunning || got.Status.PID == 0 || got.Status.ContainerID != "a" ||
		!got.Status.StartedAt.Equal(t0.Add(time.Second)) || got.NodeID != "n1" {
		t.Errorf("Task(a) = %+v", got)
	}

	// The same assignment again changes nothing; an older one is refused.
	f.assign(t, 1, b, a)
	err := f.node.Assign(orchestrator.Assignment{Revision: 0})
	if !errors.Is(err, simnode.ErrStaleRevision) {
		t.Errorf("Assign of an older revision: got %v, want ErrStaleRevision", err)
	}
	f.expect(t, time.Minute)

	// a is no longer assigned; b is to be shut down; c is new.
	b.DesiredState = dao.TaskShutdown
	f.assign(t, 2, b, simTask("c", dao.Resources{}))
	f.expect(t, 0, "c preparing")
	f.expect(t, 2*time.Second, "c running", "b shutdown", "a shutdown")
	if _, ok := f.node.Task("a"); ok {
		t.Error("a task no longer assigned is still listed once stopped")
	}
	var states []string
	for _, tk := range f.node.Tasks() {
		states = append(states, tk.ID+" "+tk.Status.State.String())
	}
	if diff := cmp.Diff([]string{"b shutdown", "c running"}, states); diff != "" {
		t.Errorf("Tasks (-want +got):\n%s", diff)
	}
	if f.node.Revision() != 2 {
		t.Errorf("Revision = %d, want 2", f.node.Revision())
	}
}

// TestNodeTakesANewEpoch: revisions are compared within an epoch only; a control plane
// whose store started over is listened to.
func TestNodeTakesANewEpoch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, dao.Node{})
	a := simTask("a", dao.Resources{})
	f.assign(t, 7, a)
	f.expect(t, time.Second, "a preparing", "a running")
	if err := f.node.Assign(orchestrator.Assignment{Epoch: "restarted", Revision: 2, Tasks: []dao.Task{a}}); err != nil {
		t.Fatalf("Assign of revision 2 of a new epoch: %v", err)
	}
	f.expect(t, time.Second) // the same task: nothing happens to it
	if err := f.node.Assign(orchestrator.Assignment{Epoch: "restarted", Revision: 1}); !errors.Is(err, simnode.ErrStaleRevision) {
		t.Errorf("Assign of an older revision in the new epoch: %v, want ErrStaleRevision", err)
	}
}

func TestNodeRefusesBadAssignments(t *testing.T) {
	t.Parallel()
	bad := simTask("bad", dao.Resources{})
	bad.Spec.Image = "UPPER CASE"
	invalidState := simTask("x", dao.Resources{})
	invalidState.DesiredState = 99
	tests := []struct {
		name  string
		tasks []dao.Task
		want  string
	}{
		{"empty ID", []dao.Task{simTask("", dao.Resources{})}, "empty ID"},
		{"twice", []dao.Task{simTask("a", dao.Resources{}), simTask("a", dao.Resources{})}, "appears twice"},
		{"twice, known", []dao.Task{simTask("known", dao.Resources{}), simTask("known", dao.Resources{})}, "appears twice"},
		{"desired state", []dao.Task{invalidState}, "desired state 99"},
		{"invalid spec", []dao.Task{simTask("ok", dao.Resources{}), bad}, "image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, dao.Node{})
			f.assign(t, 1, simTask("known", dao.Resources{}))
			f.expect(t, 0, "known preparing", "known running")
			err := f.node.Assign(orchestrator.Assignment{Revision: 2, Tasks: tt.tasks})
			if !errors.Is(err, dao.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Assign: got %v, want an invalid error saying %q", err, tt.want)
			}
			// Nothing changed.
			f.expect(t, time.Minute)
			if f.node.Revision() != 1 || len(f.node.Tasks()) != 1 {
				t.Errorf("after a refused assignment: revision %d, %d tasks", f.node.Revision(), len(f.node.Tasks()))
			}
		})
	}
	// Without validation, a bad spec is taken.
	f := newFixture(t, dao.Node{}, simnode.WithValidation(false))
	f.assign(t, 1, bad)
	f.expect(t, 0, "bad preparing", "bad running")
}

func TestNodeCapacity(t *testing.T) {
	t.Parallel()
	f := newFixture(t, dao.Node{Allocatable: dao.Resources{MilliCPU: 1000}})
	big := dao.Resources{MilliCPU: 600, Memory: 64 * dao.MiB}
	f.assign(t, 1, simTask("a", big), simTask("b", big))
	f.expect(t, 0, "a preparing", "b rejected", "a running")
	tk, _ := f.node.Task("b")
	if !strings.Contains(tk.Status.Err, "insufficient resources") {
		t.Errorf("rejected task's error = %q", tk.Status.Err)
	}
	if got := f.node.Allocated(); got != big {
		t.Errorf("Allocated = %+v, want %+v", got, big)
	}
	// Once a is gone, its room is free again.
	f.assign(t, 2, simTask("b", big), simTask("c", big))
	f.expect(t, 0, "c preparing", "a shutdown", "c running")
	if got := f.node.Allocated(); got != big {
		t.Errorf("Allocated = %+v, want %+v", got, big)
	}
	// Without the check, the node takes what it is given.
	f = newFixture(t, dao.Node{Allocatable: dao.Resources{MilliCPU: 1000}}, simnode.WithCapacityCheck(false))
	f.assign(t, 1, simTask("a", big), simTask("b", big))
	f.expect(t, 0, "a preparing", "b preparing", "a running", "b running")
}

func TestNodeRejections(t *testing.T) {
	t.Parallel()
	f := newFixture(t, dao.Node{}, simnode.WithRejections(1))
	f.assign(t, 1, simTask("a", dao.Resources{}))
	f.expect(t, 0, "a rejected")
	if f.node.Allocated() != (dao.Resources{}) {
		t.Error("a rejected task holds resources")
	}
}

func TestNodeRestartsByPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		restart dao.RestartPolicy
		code    int
		want    []string
	}{
		{"always", dao.RestartPolicy{}, 1, []string{"a running exited", "a running restarts=1"}},
		{"always, exit 0", dao.RestartPolicy{}, 0, []string{"a running exited", "a running restarts=1"}},
		{"on-failure, exit 0", dao.RestartPolicy{Condition: dao.RestartOnFailure}, 0, []string{"a complete"}},
		{"on-failure, exit 2", dao.RestartPolicy{Condition: dao.RestartOnFailure}, 2, []string{"a running exited", "a running restarts=1"}},
		{"never", dao.RestartPolicy{Condition: dao.RestartNever}, 1, []string{"a failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, dao.Node{})
			tk := simTask("a", dao.Resources{})
			tk.Restart = tt.restart
			f.assign(t, 1, tk)
			f.expect(t, 0, "a preparing", "a running")
			if err := f.node.Crash("a", tt.code); err != nil {
				t.Fatal(err)
			}
			// The first restart is at once (no InitialDelay).
			f.expect(t, 0, tt.want...)
		})
	}
	f := newFixture(t, dao.Node{})
	if err := f.node.Crash("nope", 1); !errors.Is(err, simnode.ErrUnknownTask) {
		t.Errorf("Crash of an unknown task: got %v, want ErrUnknownTask", err)
	}
}

func TestNodeCrashesUntilItGivesUp(t *testing.T) {
	t.Parallel()
	f := newFixture(t, dao.Node{}, simnode.WithCrashes(1, simnode.Fixed(time.Second)))
	tk := simTask("a", dao.Resources{})
	tk.Restart = dao.RestartPolicy{MaxAttempts: 2, InitialDelay: dao.Duration(time.Second)}
	f.assign(t, 1, tk)
	for f.clock.Step() {
	}
	want := []string{"a preparing", "a running", "a running exited", "a running restarts=1",
		"a running restarts=1 exited", "a running restarts=2", "a failed restarts=2"}
	if diff := cmp.Diff(want, f.rec.take()); diff != "" {
		t.Errorf("updates (-want +got):\n%s", diff)
	}
	u := f.node.Tasks()[0].Status
	if u.ExitCode != 1 || !strings.Contains(u.Err, "gave up after 2 restarts") || u.FinishedAt.IsZero() {
		t.Errorf("status of a task that gave up: %+v", u)
	}
	if f.node.Allocated() != (dao.Resources{}) {
		t.Error("a failed task holds resources")
	}
}

func TestNodeDownAndUp(t *testing.T) {
	t.Parallel()
	f := newFixture(t, dao.Node{}, simnode.WithStartLatency(simnode.Fixed(time.Second)))
	stopping := simTask("stopping", dao.Resources{})
	f.assign(t, 1, simTask("a", dao.Resources{}), stopping)
	f.expect(t, time.Second, "a preparing", "stopping preparing", "a running", "stopping running")
	f.node.Down()
	if f.node.State() != simnode.Down || f.node.Info().Status.State != dao.NodeDown {
		t.Errorf("after Down: state %s, info %s", f.node.State(), f.node.Info().Status.State)
	}
	err := f.node.Assign(orchestrator.Assignment{Revision: 2})
	if !errors.Is(err, simnode.ErrUnreachable) {
		t.Errorf("Assign to a node that is down: got %v, want ErrUnreachable", err)
	}
	if err := f.node.Crash("a", 1); !errors.Is(err, simnode.ErrUnknownTask) {
		t.Errorf("Crash on a node that is down: got %v, want ErrUnknownTask", err)
	}
	f.expect(t, time.Minute)
	f.node.Up()
	f.expect(t, 0, "a preparing", "stopping preparing")
	f.expect(t, time.Second, "a running", "stopping running")

	// A task being stopped when the node goes down is reported stopped when it comes back.
	stopping.DesiredState = dao.TaskShutdown
	f.assign(t, 2, simTask("a", dao.Resources{}), stopping)
	f.node.Down()
	f.node.Up()
	f.expect(t, 0, "stopping shutdown", "a preparing")
}

func TestNodeDisconnectAndUp(t *testing.T) {
	t.Parallel()
	f := newFixture(t, dao.Node{})
	f.assign(t, 1, simTask("a", dao.Resources{}), simTask("b", dao.Resources{}))
	f.expect(t, 0, "a preparing", "b preparing", "a running", "b running")
	f.node.Disconnect()
	if err := f.node.Assign(orchestrator.Assignment{Revision: 2}); !errors.Is(err, simnode.ErrUnreachable) {
		t.Errorf("Assign to a disconnected node: got %v, want ErrUnreachable", err)
	}
	// Tasks run on, but nothing is reported.
	if err := f.node.Crash("a", 0); err != nil {
		t.Fatal(err)
	}
	f.expect(t, time.Minute)
	f.node.Up()
	f.clock.Advance(0)
	got := f.rec.take()
	if len(got) != 2 || !strings.Contains(strings.Join(got, ","), "a running restarts=1") {
		t.Errorf("after reconnecting: %v, want the status of a and b, a restarted once", got)
	}
}

func TestNodeHeartbeat(t *testing.T) {
	t.Parallel()
	var beats []time.Duration
	f := newFixture(t, dao.Node{}, simnode.WithHeartbeat(5*time.Second, func(at time.Time) { beats = append(beats, at.Sub(t0)) }))
	f.clock.Advance(10 * time.Second)
	f.node.Disconnect()
	f.clock.Advance(10 * time.Second)
	f.node.Up()
	f.clock.Advance(time.Second)
	f.node.Down()
	f.clock.Advance(10 * time.Second)
	f.node.Up()
	f.clock.Advance(0)
	want := []time.Duration{0, 5 * time.Second, 10 * time.Second, 20 * time.Second, 31 * time.Second}
	if diff := cmp.Diff(want, beats); diff != "" {
		t.Errorf("heartbeats (-want +got):\n%s", diff)
	}
}

func TestNodeClose(t *testing.T) {
	t.Parallel()
	f := newFixture(t, dao.Node{}, simnode.WithStartLatency(simnode.Fixed(time.Second)))
	f.assign(t, 1, simTask("a", dao.Resources{}))
	f.expect(t, 0, "a preparing")
	f.node.Close()
	f.expect(t, time.Minute)
	if err := f.node.Assign(orchestrator.Assignment{Revision: 2}); !errors.Is(err, simnode.ErrClosed) {
		t.Errorf("Assign after Close: got %v, want ErrClosed", err)
	}
	f.node.Close()
}

func TestNewNodeOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		info dao.Node
		opt  simnode.Option
	}{
		{"no ID", dao.Node{}, simnode.WithSeed(1, 1)},
		{"nil clock", dao.Node{ID: "n"}, simnode.WithClock(nil)},
		{"crash probability", dao.Node{ID: "n"}, simnode.WithCrashes(2, simnode.Fixed(0))},
		{"nil crash latency", dao.Node{ID: "n"}, simnode.WithCrashes(0.5, nil)},
		{"rejection probability", dao.Node{ID: "n"}, simnode.WithRejections(-1)},
		{"heartbeat", dao.Node{ID: "n"}, simnode.WithHeartbeat(0, func(time.Time) {})},
		{"nil status func", dao.Node{ID: "n"}, simnode.WithStatusFunc(nil)},
		{"nil start latency", dao.Node{ID: "n"}, simnode.WithStartLatency(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := simnode.New(tt.info, tt.opt); err == nil {
				t.Error("New succeeded")
			}
		})
	}
}

// TestNodesOnTheSystemClock runs nodes on real time, from many goroutines, for the race
// detector.
func TestNodesOnTheSystemClock(t *testing.T) {
	t.Parallel()
	const nodes, perNode = 20, 20
	var mu sync.Mutex
	running := map[string]bool{}
	done := make(chan struct{})
	c, err := simnode.NewCluster(nodes,
		simnode.WithNodeOptions(simnode.WithStartLatency(simnode.Uniform(0, 5*time.Millisecond)),
			simnode.WithCrashes(0.2, simnode.Uniform(0, 5*time.Millisecond))),
		simnode.WithClusterStatusFunc(func(nodeID string, u orchestrator.TaskUpdate) {
			mu.Lock()
			defer mu.Unlock()
			if u.Status.State == dao.TaskRunning && u.Status.PID != 0 && !running[u.TaskID] {
				running[u.TaskID] = true
				if len(running) == nodes*perNode {
					close(done)
				}
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	for _, n := range c.Nodes() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var tasks []dao.Task
			for i := range perNode {
				tasks = append(tasks, simTask(fmt.Sprintf("%s.%d", n.ID(), i), dao.Resources{MilliCPU: 10}))
				if err := n.Assign(orchestrator.Assignment{Revision: uint64(i + 1), Tasks: tasks}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%d tasks of %d running", len(running), nodes*perNode)
	}
}
