package edge_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"go.uber.org/goleak"

	"github.com/opendao/dao"
	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/internal/testutil"
)

// TestRuntimeAndAgentLeaveNothingRunning starts and closes Runtimes and Agents again and
// again, each time with real containers created, run, followed and removed in between, on
// two private containerds, and checks that once both are closed none of their goroutines is
// left: not the event loop, the log rotation, a subscriber's watch, the report loop, a task
// worker, a health check or a removal.
//
// It is not parallel: goleak sees every goroutine of the process.
func TestRuntimeAndAgentLeaveNothingRunning(t *testing.T) {
	daemons, cycles := 2, 4
	if testing.Short() {
		daemons, cycles = 1, 2
	}
	for d := range daemons {
		t.Run(fmt.Sprintf("containerd-%d", d), func(t *testing.T) {
			c := testutil.StartContainerd(t)
			app := testutil.TestAppImage(t, c)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			// What is running now (the daemon's client, other tests' leftovers) is not ours.
			ignore := goleak.IgnoreCurrent()
			for cycle := range cycles {
				lifeCycle(t, ctx, c, app, fmt.Sprintf("%d-%d", d, cycle))
				goleak.VerifyNone(t, ignore)
			}
		})
	}
}

// lifeCycle opens a Runtime and an Agent, has them run containers, and closes both.
func lifeCycle(t *testing.T, ctx context.Context, c *testutil.Containerd, app, name string) {
	t.Helper()
	rt, err := edge.New(c.Address, edge.WithNamespace(testutil.Namespace),
		edge.WithLogDir(filepath.Join(c.Dir, "logs")), edge.WithLogCheckInterval(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	// A subscriber that never reads, and one whose context ends before the Runtime does.
	_ = rt.Subscribe(context.Background())
	subCtx, endSub := context.WithCancel(ctx)
	_ = rt.Subscribe(subCtx)

	agent, err := edge.NewAgent(rt, edge.WithStateDir(filepath.Join(c.Dir, "agent")),
		edge.WithResyncInterval(100*time.Millisecond), edge.WithHeartbeat(10*time.Millisecond, func() {}))
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- agent.Run(ctx) }()

	// Two tasks, one with a health check, then none: the agent removes both.
	web := appTask(&env{app: app}, "web-"+name)
	web.Spec.Args = []string{"-listen", ":8080"}
	web.Spec.HealthCheck = &dao.HealthCheck{Command: []string{"/testapp", "-check", "http://127.0.0.1:8080/healthz"},
		Interval: dao.Duration(50 * time.Millisecond), Timeout: dao.Duration(time.Second)}
	other := appTask(&env{app: app}, "other-"+name)
	rev := agent.Revision()
	if err := agent.Assign(edge.Assignment{Revision: rev + 1, Tasks: []dao.Task{web, other}}); err != nil {
		t.Fatal(err)
	}
	waitAgent(t, agent, 30*time.Second, "both tasks running and web healthy", func(ts []dao.Task) bool {
		n := 0
		for _, task := range ts {
			if running(task.Status) && (task.ID != web.ID || task.Status.Health == dao.HealthHealthy) {
				n++
			}
		}
		return n == 2
	})

	// A container of the Runtime's own, its logs followed to its end, and removed.
	id := "direct-" + name
	if _, err := rt.Run(ctx, id, dao.ContainerSpec{Image: app, Args: []string{"-say", "hi", "-exit", "0"}}); err != nil {
		t.Fatal(err)
	}
	logs, err := rt.Logs(ctx, id, edge.LogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(logs); err != nil {
		t.Errorf("follow the logs of %s: %v", id, err)
	}
	logs.Close()
	if _, err := rt.Wait(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := rt.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	endSub()

	if err := agent.Assign(edge.Assignment{Revision: rev + 2}); err != nil {
		t.Fatal(err)
	}
	waitAgent(t, agent, 30*time.Second, "no task", func(ts []dao.Task) bool { return len(ts) == 0 })
	waitNoContainers(t, ctx, rt)

	if err := agent.Close(); err != nil {
		t.Errorf("Agent.Close: %v", err)
	}
	if err := <-runErr; !errors.Is(err, edge.ErrClosed) {
		t.Errorf("Run returned %v after Close, want ErrClosed", err)
	}
	if err := agent.Run(ctx); !errors.Is(err, edge.ErrClosed) {
		t.Errorf("Run after Close: %v, want ErrClosed", err)
	}
	if err := rt.Close(); err != nil {
		t.Errorf("Runtime.Close: %v", err)
	}
	if err := rt.Close(); err != nil {
		t.Errorf("a second Runtime.Close: %v", err)
	}
	err = rt.Create(ctx, "after-close", dao.ContainerSpec{Image: app})
	if !errors.Is(err, edge.ErrClosed) || !errdefs.IsFailedPrecondition(err) {
		t.Errorf("Create after Close: %v, want ErrClosed, of class FailedPrecondition", err)
	}
}

// waitNoContainers waits until rt lists no container (checked with containerd, through the
// Runtime's List), failing the test after 30s.
func waitNoContainers(t *testing.T, ctx context.Context, rt *edge.Runtime) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		list, err := rt.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d containers left 30s after they were unassigned", len(list))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitAgent waits until the agent's tasks satisfy ok.
func waitAgent(t *testing.T, a *edge.Agent, within time.Duration, what string, ok func([]dao.Task) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok(a.Tasks()) {
		if time.Now().After(deadline) {
			t.Fatalf("not %s within %s: %+v", what, within, a.Tasks())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSlowSubscriberBlocksNoOne has a subscriber that never reads while containers start and
// exit: the other subscriber gets every event, the slow one is dropped with ErrSlowSubscriber
// once its buffer is full, and Close returns at once.
func TestSlowSubscriberBlocksNoOne(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const buffer = 2
	rt := e.runtime(edge.WithSubscribeBuffer(buffer))
	stuck := rt.Subscribe(context.Background())
	events := rt.Subscribe(e.ctx)
	// The reader receives as events come; what it saw is sent on when the channel ends.
	type seen struct {
		exits map[string]bool
		last  edge.Event
	}
	read := make(chan seen, 1)
	go func() {
		s := seen{exits: map[string]bool{}}
		for ev := range events {
			if ev.Type == edge.EventExit {
				s.exits[ev.ContainerID] = true
			}
			s.last = ev
		}
		read <- s
	}()
	const n = 4
	var ids []string
	for i := range n {
		id := uniqueID("sub", i)
		ids = append(ids, id)
		if _, err := rt.Run(e.ctx, id, dao.ContainerSpec{Image: e.app, Args: []string{"-exit", "0"}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		e.wait(id, 30*time.Second)
	}
	time.Sleep(100 * time.Millisecond) // the exit events have been published

	// The stuck one holds its buffer's worth, then the error, and is closed.
	var got []edge.Event
	for ev := range stuck {
		got = append(got, ev)
	}
	if len(got) != buffer+1 {
		t.Fatalf("the stuck subscriber got %d events, want %d and its end: %v", len(got), buffer, got)
	}
	if last := got[len(got)-1]; last.Type != edge.EventError || !errors.Is(last.Err, edge.ErrSlowSubscriber) {
		t.Errorf("the stuck subscriber's last event is %v, want an EventError with ErrSlowSubscriber", last)
	}

	// Another stuck one, and Close is not held up by it.
	_ = rt.Subscribe(context.Background())
	closed := make(chan error, 1)
	go func() { closed <- rt.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close still waits 5s after it was called, with a subscriber that does not read")
	}
	// The reader was not dropped, got every exit, and the end of the Runtime.
	got2 := <-read
	for _, id := range ids {
		if !got2.exits[id] {
			t.Errorf("the reading subscriber missed the exit of %s", id)
		}
	}
	if last := got2.last; last.Type != edge.EventError || !errors.Is(last.Err, edge.ErrClosed) {
		t.Errorf("last event of the reading subscriber = %v, want an EventError with ErrClosed", last)
	}
	if ev, ok := <-rt.Subscribe(e.ctx); !ok || !errors.Is(ev.Err, edge.ErrClosed) {
		t.Errorf("Subscribe after Close: first event %v (ok %v), want an EventError with ErrClosed", ev, ok)
	}
}

// TestAgentCloseCutsOffARemovalTheNextAgentFinishes closes an Agent while it waits out the
// stop grace period of a container no longer assigned: Close returns at once, the container
// is left as it was (running), and the next Agent on the same namespace and state directory
// stops and removes it.
func TestAgentCloseCutsOffARemovalTheNextAgentFinishes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	state := t.TempDir()
	first := e.startAgent(e.rt, state)
	stubborn := appTask(e, uniqueID("stubborn", 0))
	stubborn.Spec.Args = []string{"-ignore-term"}
	stubborn.Spec.StopGracePeriod = dao.Duration(3 * time.Second)
	if err := first.agent.Assign(edge.Assignment{Revision: 1, Tasks: []dao.Task{stubborn}}); err != nil {
		t.Fatal(err)
	}
	first.waitTask(t, stubborn.ID, 30*time.Second, "running", running)
	time.Sleep(300 * time.Millisecond) // testapp has set itself up to ignore SIGTERM
	if err := first.agent.Assign(edge.Assignment{Revision: 2}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the removal has begun: SIGTERM, ignored

	begin := time.Now()
	if err := first.agent.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if took := time.Since(begin); took > 1500*time.Millisecond {
		t.Errorf("Close took %s with a removal in its 3s grace period", took)
	}
	if err := <-first.done; !errors.Is(err, edge.ErrClosed) {
		t.Errorf("Run returned %v after Close, want ErrClosed", err)
	}
	first.cancel = nil
	st, err := e.rt.Status(e.ctx, stubborn.ID)
	if err != nil || st.State != edge.StateRunning {
		t.Fatalf("%s after its removal was cut off: %v %+v, want it running", stubborn.ID, err, st)
	}
	if err := first.agent.Assign(edge.Assignment{Revision: 3}); !errors.Is(err, edge.ErrClosed) {
		t.Errorf("Assign after Close: %v, want ErrClosed", err)
	}

	// The next agent takes the kept assignment (no tasks), and does the removal again:
	// SIGTERM, ignored, and SIGKILL after the grace period.
	next := e.startAgent(e.rt, state)
	if got := next.agent.Revision(); got != 2 {
		t.Errorf("the next agent has revision %d, want the kept 2", got)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := e.rt.Status(e.ctx, stubborn.ID)
		if errors.Is(err, edge.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still there 30s after the next agent started: %v", stubborn.ID, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAgentCarriesOnWhenDroppedAsSlow: an Agent whose loop lags (its heartbeat function
// takes a second) on a Runtime with a one-event subscriber buffer is dropped as a slow
// subscriber; it subscribes again, and still converges.
func TestAgentCarriesOnWhenDroppedAsSlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rt := e.runtime(edge.WithSubscribeBuffer(1))
	logs := newRecordHandler()
	ar := e.startAgent(rt, t.TempDir(), edge.WithAgentLogger(slog.New(logs)),
		edge.WithHeartbeat(10*time.Millisecond, func() { time.Sleep(time.Second) }))
	tasks := ar.assignApps(t, e, uniqueID("lag", 0), 6)
	for _, task := range tasks {
		ar.waitTask(t, task.ID, 30*time.Second, "running", running)
	}
	resubscribed := func() bool {
		logs.mu.Lock()
		defer logs.mu.Unlock()
		for _, r := range *logs.recs {
			if r.Message == "agent fell behind containerd's events: subscribing again" {
				return true
			}
		}
		return false
	}
	// The loop reads the end of its subscription after a beat or two.
	for wait := time.Now().Add(10 * time.Second); !resubscribed(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatal("the agent was never dropped as a slow subscriber; the test did not test it")
		}
	}
	if err := ar.agent.Assign(edge.Assignment{Revision: 2}); err != nil {
		t.Fatal(err)
	}
	waitNoContainers(t, e.ctx, rt)
}
