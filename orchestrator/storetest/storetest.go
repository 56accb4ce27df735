package storetest

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendao/dao"
	"github.com/opendao/dao/orchestrator"
)

// Config is what the suite asks of a store it opens.
type Config struct {
	// History is the number of events the store must keep, at least, for watches from a
	// past revision. A store may keep more, but not without bound: after ten times as
	// many, the first revisions must be compacted.
	History int
	// WatchBuffer is the number of events a watch may fall behind, at least, before the
	// store ends it with ErrSlowWatcher, when its reader does not take them. A store may
	// allow more, but not without bound.
	WatchBuffer int
}

// defaultConfig is what most tests use: enough not to get in the way.
var defaultConfig = Config{History: 10_000, WatchBuffer: 10_000}

// Opener opens a new, empty store with the config; it fails t if it cannot.
type Opener func(t *testing.T, c Config) orchestrator.Store

// DurableOpener opens the store kept in dir, a directory for this test alone (the same
// directory every time within one test): the first call finds it empty, the next ones the
// data the last store left when it was closed. A store that keeps data elsewhere than on
// a local disk can use dir as a name.
type DurableOpener func(t *testing.T, dir string, c Config) orchestrator.Store

// timeout bounds every wait for an event.
const timeout = 10 * time.Second

// Run runs the conformance tests against stores that open opens.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		f    func(t *testing.T, open Opener)
	}{
		{"CreateAndGet", testCreateAndGet},
		{"CreateExisting", testCreateExisting},
		{"EmptyID", testEmptyID},
		{"UpdateConflict", testUpdateConflict},
		{"Delete", testDelete},
		{"ServiceVersion", testServiceVersion},
		{"Rollback", testRollback},
		{"RollbackOnPanic", testRollbackOnPanic},
		{"EmptyTransaction", testEmptyTransaction},
		{"Copies", testCopies},
		{"Indexes", testIndexes},
		{"ReadYourWrites", testReadYourWrites},
		{"IterateWhileWriting", testIterateWhileWriting},
		{"LargeBatch", testLargeBatch},
		{"TxnLimit", testTxnLimit},
		{"WatchEvents", testWatchEvents},
		{"WatchCoalesces", testWatchCoalesces},
		{"WatchFromRevision", testWatchFromRevision},
		{"WatchFutureRevision", testWatchFutureRevision},
		{"WatchFilters", testWatchFilters},
		{"WatchCompacted", testWatchCompacted},
		{"SlowWatcher", testSlowWatcher},
		{"StalledWatcherBlocksNothing", testStalledWatcher},
		{"BurstDoesNotEndReader", testBurstDoesNotEndReader},
		{"WatchCancel", testWatchCancel},
		{"Close", testClose},
		{"ContextDone", testContextDone},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"ListThenWatch", testListThenWatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.f(t, open) })
	}
}

// RunDurable runs the tests of a store that keeps its data across Close: what was
// committed, and the revision, survive; what was not, does not. Run the tests of Run as
// well.
func RunDurable(t *testing.T, open DurableOpener) {
	tests := []struct {
		name string
		f    func(t *testing.T, open func(t *testing.T) orchestrator.Store)
	}{
		{"Reopen", testReopen},
		{"ReopenRevision", testReopenRevision},
		{"ReopenAfterRollback", testReopenAfterRollback},
		{"ReopenAfterDelete", testReopenAfterDelete},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.f(t, func(t *testing.T) orchestrator.Store { return open(t, dir, defaultConfig) })
		})
	}
}

// Objects for the tests.

func service(id string) *orchestrator.Service {
	return &orchestrator.Service{
		ID: id,
		Spec: dao.ServiceSpec{
			Name:     id,
			Labels:   map[string]string{"team": "a"},
			Replicas: 2,
			Container: dao.ContainerSpec{
				Image:     "registry.example.com/" + id + ":1.0",
				Env:       []string{"MODE=test"},
				Resources: dao.Resources{MilliCPU: 100, Memory: 64 * dao.MiB},
			},
			Placement: dao.Placement{Constraints: []string{"node.labels.zone == a"}},
		},
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

func task(id, serviceID, nodeID string) *orchestrator.Task {
	return &orchestrator.Task{Task: dao.Task{
		ID:             id,
		ServiceID:      serviceID,
		ServiceVersion: 1,
		Slot:           1,
		NodeID:         nodeID,
		Spec: dao.ContainerSpec{
			Image:     "registry.example.com/" + serviceID + ":1.0",
			Env:       []string{"MODE=test"},
			Labels:    map[string]string{"app": serviceID},
			Resources: dao.Resources{MilliCPU: 100, Memory: 64 * dao.MiB},
		},
		DesiredState: dao.TaskRunning,
		Status:       dao.TaskStatus{State: dao.TaskPending, Message: "created"},
		CreatedAt:    time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}}
}

func node(id string) *orchestrator.Node {
	return &orchestrator.Node{Node: dao.Node{
		ID:          id,
		Address:     "10.0.0.1",
		Labels:      map[string]string{"zone": "a"},
		Capacity:    dao.Resources{MilliCPU: 4000, Memory: 8 * dao.GiB},
		Allocatable: dao.Resources{MilliCPU: 4000, Memory: 8 * dao.GiB},
		Status:      dao.NodeStatus{State: dao.NodeReady},
	}}
}

// Helpers.

func openStore(t *testing.T, open Opener, c Config) orchestrator.Store {
	t.Helper()
	s := open(t, c)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func update(t *testing.T, s orchestrator.Store, fn func(tx orchestrator.Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), "test", fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func revision(t *testing.T, s orchestrator.Store) uint64 {
	t.Helper()
	var rev uint64
	if err := s.View(context.Background(), func(tx orchestrator.ReadTx) error {
		rev = tx.Revision()
		return nil
	}); err != nil {
		t.Fatalf("View: %v", err)
	}
	return rev
}

func getTask(t *testing.T, s orchestrator.Store, id string) (orchestrator.Task, error) {
	t.Helper()
	var got orchestrator.Task
	var gerr error
	if err := s.View(context.Background(), func(tx orchestrator.ReadTx) error {
		got, gerr = tx.Task(id)
		return nil
	}); err != nil {
		t.Fatalf("View: %v", err)
	}
	return got, gerr
}

func getService(t *testing.T, s orchestrator.Store, id string) (orchestrator.Service, error) {
	t.Helper()
	var got orchestrator.Service
	var gerr error
	if err := s.View(context.Background(), func(tx orchestrator.ReadTx) error {
		got, gerr = tx.Service(id)
		return nil
	}); err != nil {
		t.Fatalf("View: %v", err)
	}
	return got, gerr
}

func getNode(t *testing.T, s orchestrator.Store, id string) (orchestrator.Node, error) {
	t.Helper()
	var got orchestrator.Node
	var gerr error
	if err := s.View(context.Background(), func(tx orchestrator.ReadTx) error {
		got, gerr = tx.Node(id)
		return nil
	}); err != nil {
		t.Fatalf("View: %v", err)
	}
	return got, gerr
}

// taskIDs collects the IDs an iterator of a View yields, sorted.
func taskIDs(t *testing.T, s orchestrator.Store, list func(tx orchestrator.ReadTx) iter.Seq[orchestrator.Task]) []string {
	t.Helper()
	var ids []string
	if err := s.View(context.Background(), func(tx orchestrator.ReadTx) error {
		for task := range list(tx) {
			ids = append(ids, task.ID)
		}
		return nil
	}); err != nil {
		t.Fatalf("View: %v", err)
	}
	sort.Strings(ids)
	return ids
}

func watch(t *testing.T, s orchestrator.Store, from uint64, filters ...orchestrator.WatchFilter) <-chan orchestrator.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := s.Watch(ctx, from, filters...)
	if err != nil {
		t.Fatalf("Watch(%d): %v", from, err)
	}
	return ch
}

// next returns the next event, failing the test if none comes in time.
func next(t *testing.T, ch <-chan orchestrator.Event) orchestrator.Event {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed, want an event")
		}
		return e
	case <-time.After(timeout):
		t.Fatal("no event in time")
	}
	return orchestrator.Event{}
}

// nextN returns the next n events.
func nextN(t *testing.T, ch <-chan orchestrator.Event, n int) []orchestrator.Event {
	t.Helper()
	out := make([]orchestrator.Event, 0, n)
	for range n {
		e := next(t, ch)
		if e.Err != nil {
			t.Fatalf("event %d of %d: %v", len(out)+1, n, e.Err)
		}
		out = append(out, e)
	}
	return out
}

// quiet checks that no event is waiting.
func quiet(t *testing.T, ch <-chan orchestrator.Event) {
	t.Helper()
	select {
	case e, ok := <-ch:
		if ok {
			t.Fatalf("unexpected event: %s", describe(e))
		}
		t.Fatal("watch channel closed")
	case <-time.After(50 * time.Millisecond):
	}
}

// describe is an event in a few words: "7 created task t1 (test)".
func describe(e orchestrator.Event) string {
	if e.Err != nil {
		return "error " + e.Err.Error()
	}
	return fmt.Sprintf("%d %s %s %s (%s)", e.Revision, e.Kind, e.Type, e.ID(), e.Cause)
}

func describeAll(events []orchestrator.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = describe(e)
	}
	return out
}

// waitEnd reads the channel until it closes and returns the error of its last event.
func waitEnd(t *testing.T, ch <-chan orchestrator.Event) error {
	t.Helper()
	deadline := time.After(timeout)
	var last error
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return last
			}
			last = e.Err
		case <-deadline:
			t.Fatal("watch channel not closed in time")
		}
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want %v", what, err, want)
	}
}

// The tests of Run.

func testCreateAndGet(t *testing.T, open Opener) {
	s := openStore(t, open, defaultConfig)
	if got := revision(t, s); got != 0 {
		t.Errorf("revision of an empty store = %d, want 0", got)
	}
	svc, tk, nd := service("web"), task("web.1", "web", "n1"), node("n1")
	svc.Version, svc.Revision = 7, 99 // both ignored
	update(t, s, func(tx orchestrator.Tx) error {
		if err := tx.CreateService(svc); err != nil {
			return err
		}
		if err := tx.CreateTask(tk); err != nil {
			return err
		}
		return tx.CreateNode(nd)
	})
	if svc.Revision != 1 || tk.Revision != 1 || nd.Revision != 1 {
		t.Errorf("revisions set on the values = %d, %d, %d, want 1 each", svc.Revision, tk.Revision, nd.Revision)
	}
	if svc.Version != 1 {
		t.Errorf("service version = %d, want 1", svc.Version)
	}
	if got := revision(t, s); got != 1 {
		t.Errorf("revision after one transaction = %d, want 1", got)
	}
	gotSvc, err := getService(t, s, "web")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(*svc, gotSvc); diff != "" {
		t.Errorf("service (-wrote +read):\n%s", diff)
	}
	gotTask, err := getTask(t, s, "web.1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(*tk, gotTask); diff != "" {
		t.Errorf("task (-wrote +read):\n%s", diff)
	}
	gotNode, err := getNode(t, s, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(*nd, gotNode); diff != "" {
		t.Errorf("node (-wrote +read):\n%s", diff)
	}

	update(t, s, func(tx orchestrator.Tx) error { return tx.CreateTask(task("web.2", "web", "")) })
	if got := revision(t, s); got != 2 {
		t.Errorf("revision after two transactions = %d, want 2", got)
	}
	_, err = getTask(t, s, "nope")
	wantErr(t, "Task(nope)", err, orchestrator.ErrNotFound)
	_, err = getService(t, s, "nope")
	wantErr(t, "Service(nope)", err, orchestrator.ErrNotFound)
	_, err = getNode(t, s, "nope")
	wantErr(t, "Node(nope)", err, orchestrator.ErrNotFound)

	var services, nodes []string
	err = s.View(context.Background(), func(tx orchestrator.ReadTx) error {
		for s := range tx.Services() {
			services = append(services, s.ID)
		}
		for n := range tx.Nodes() {
			nodes = append(nodes, n.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(services, []string{"web"}) || !slices.Equal(nodes, []string{"n1"}) {
		t.Errorf("Services() = %v, Nodes() = %v, want [web] and [n1]", services, nodes)
	}
	if got, want := taskIDs(t, s, orchestrator.ReadTx.Tasks), []string{"web.1", "web.2"}; !slices.Equal(got, want) {
		t.Errorf("Tasks() = %v, want %v", got, want)
	}
}

func testCreateExisting(t *testing.T, open Opener) {
	s := openStore(t, open, defaultConfig)
	update(t, s, func(tx orchestrator.Tx) error {
		if err := tx.CreateService(service("web")); err != nil {
			return err
		}
		if err := tx.CreateTask(task("web.1", "web", "")); err != nil {
			return err
		}
		return tx.CreateNode(node("n1"))
	})
	update(t, s, func(tx orchestrator.Tx) error {
		wantErr(t, "CreateService again", tx.CreateService(service("web")), orchestrator.ErrExists)
		wantErr(t, "CreateTask again", tx.CreateTask(task("web.1", "web", "")), orchestrator.ErrExists)
		wantErr(t, "CreateNode again", tx.CreateNode(node("n1")), orchestrator.ErrExists)
		// A failed write changes nothing, and the transaction goes on.
		return tx.CreateTask(task("web.2", "web", ""))
	})
	if _, err := getTask(t, s, "web.2"); err != nil {
		t.Errorf("a write after a failed one in the same transaction: %v", err)
	}
	if got := revision(t, s); got != 2 {
		t.Errorf("revision = %d, want 2", got)
	}
}

func testEmptyID(t *testing.T, open Opener) {
	s := openStore(t, open, defaultConfig)
	update(t, s, func(tx orchestrator.Tx) error {
		wantErr(t, "CreateService", tx.CreateService(service("")), dao.ErrInvalid)
		wantErr(t, "CreateTask", tx.CreateTask(task("", "web", "")), dao.ErrInvalid)
		wantErr(t, "CreateNode", tx.CreateNode(node("")), dao.ErrInvalid)
		wantErr(t, "UpdateTask", tx.UpdateTask(task("", "web", "")), dao.ErrInvalid)
		return nil
	})
	if got := revision(t, s); got != 0 {
		t.Errorf("revision = %d, want 0", got)
	}
}

func testUpdateConflict(t *testing.T, open Opener) {
	s := openStore(t, open, defaultConfig)
	svc, tk, nd := service("web"), task("web.1", "web", ""), node("n1")
	update(t, s, func(tx orchestrator.Tx) error {
		return errors.Join(tx.CreateService(svc), tx.CreateTask(tk), tx.CreateNode(nd))
	})
	stale := *tk // read at revision 1
	tk.NodeID = "n1"
	update(t, s, func(tx orchestrator.Tx) error { return tx.UpdateTask(tk) })
	if tk.Revision != 2 {
		t.Errorf("task revision after update = %d, want 2", tk.Revision)
	}
	stale.Status.Message = "lost update"
	err := s.Update(context.Background(), "test", func(tx orchestrator.Tx) error { return tx.UpdateTask(&stale) })
	wantErr(t, "UpdateTask with a stale revision", err, orchestrator.ErrConflict)
	got, _ := getTask(t, s, "web.1")
	if got.NodeID != "n1" || got.Status.Message != "created" || got.Revision != 2 {
		t.Errorf("after a conflict: node %q, message %q, revision %d, want n1, created, 2",
			got.NodeID, got.Status.Message, got.Revision)
	}

	staleSvc, staleNode := *svc, *nd
	svc.UpdateStatus.State = orchestrator.UpdateCompleted
	nd.Status.State = dao.NodeDown
	update(t, s, func(tx orchestrator.Tx) error { return errors.Join(tx.UpdateService(svc), tx.UpdateNode(nd)) })
	err = s.Update(context.Background(), "test", func(tx orchestrator.Tx) error { return tx.UpdateService(&staleSvc) })
	wantErr(t, "UpdateService with a stale revision", err, orchestrator.ErrConflict)
	err = s.Update(context.Background(), "test", func(tx orchestrator.Tx) error { return tx.UpdateNode(&staleNode) })
	wantErr(t, "UpdateNode with a stale revision", err, orchestrator.ErrConflict)
	zero := *tk
	zero.Revision = 0
	err = s.Update(context.Background(), "test", func(tx orchestrator.Tx) error { return tx.UpdateTask(&zero) })
	wantErr(t, "UpdateTask with revision 0", err, orchestrator.ErrConflict)

	err = s.Update(context.Background(), "test", func(tx orchestrator.Tx) error {
		wantErr(t, "UpdateTask of a missing task", tx.UpdateTask(task("nope", "web", "")), orchestrator.ErrNotFound)
		wantErr(t, "UpdateService of a missing service", tx.UpdateService(service("nope")), orchestrator.ErrNotFound)
		wantErr(t, "UpdateNode of a missing node", tx.UpdateNode(node("nope")), orchestrator.ErrNotFound)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Twice in one transaction: the second write names the revision the first one set.
	update(t, s, func(tx orchestrator.Tx) error {
		tk.Status.State = dao.TaskAssigned
		if err := tx.UpdateTask(tk); err != nil {
			return err
		}
		tk.Status.State = dao.TaskPreparing
		return tx.UpdateTask(tk)
	})
	got, _ = getTask(t, s, "web.1")
	if got.Status.State != dao.TaskPreparing || got.Revision != tk.Revision {
		t.Errorf("after two updates in one transaction: state %s, revision %d, want preparing, %d",
			got.Status.State, got.Revision, tk.Revision)
	}
}

func testDelete(t *testing.T, open Opener) {
	s := openStore(t, open, defaultConfig)
	svc, tk, nd := service("web"), task("web.1", "web", "n1"), node("n1")
	update(t, s, func(tx orchestrator.Tx) error {
		return errors.Join(tx.CreateService(svc), tx.CreateTask(tk), tx.CreateNode(nd),
			tx.CreateTask(task("web.2", "web", "n1")))
	})
	err := s.Update(context.Background(), "test", func(tx orchestrator.Tx) error {
		wantErr(t, "DeleteTask with a wrong revision", tx.DeleteTask("web.1", 7), orchestrator.ErrConflict)
		wantErr(t, "DeleteService with a wrong revision", tx.DeleteService("web", 7), orchestrator.ErrConflict)
		wantErr(t, "DeleteNode with a wrong revision", tx.DeleteNode("n1", 7), orchestrator.ErrConflict)
		wantErr(t, "DeleteTask of a missing task", tx.DeleteTask("nope", 0), orchestrator.ErrNotFound)
		wantErr(t, "DeleteService of a missing service", tx.DeleteService("nope", 0), orchestrator.ErrNotFound)
		wantErr(t, "DeleteNode of a missing node", tx.DeleteNode("nope", 0), orchestrator.ErrNotFound)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	update(t, s, func(tx orchestrator.Tx) error {
		return errors.Join(tx.DeleteTask("web.1", tk.Revision), tx.DeleteService("web", 0), tx.DeleteNode("n1", nd.Revision))
	})
	if _, err := getTask(t, s, "web.1"); !errors.Is(err, orchestrator.ErrNotFound) {
		t.Errorf("deleted task: got %v, want ErrNotFound", err)
	}
	if _, err := getService(t, s, "web"); !errors.Is(err, orchestrator.ErrNotFound) {
		t.Errorf("deleted service: got %v, want ErrNotFound", err)
	}
	if _, err := getNode(t, s, "n1"); !errors.Is(err, orchestrator.ErrNotFound) {
		t.Errorf("deleted node: got %v, want ErrNotFound", err)
	}
	// Deleting a service or a node leaves their tasks.
	if got := taskIDs(t, s, func(tx orchestrator.ReadTx) iter.Seq[orchestrator.Task] { return tx.TasksByNode("n1") }); !slices.Equal(got, []string{"web.2"}) {
		t.Errorf("tasks of the deleted node = %v, want [web.2]", got)
	}
	// The ID can be used again.
	update(t, s, func(tx orchestrator.Tx) error { return tx.CreateTask(task("web.1", "web", "")) })
	if got := revision(t, s); got != 3 {
		t.Errorf("revision = %d, want 3", got)
	}
}

func testServiceVersion(t *testing.T, open Opener) {
	s := openStore(t, open, defaultConfig)
	svc := service("web")
	update(t, s, func(tx orchestrator.Tx) error { return tx.CreateService(svc) })

	old := svc.Spec
	svc.Spec.Container.Image = "registry.example.com/web:2.0"
	svc.PreviousSpec = &old
	svc.Version = 42 // ignored
	update(t, s, func(tx orchestrator.Tx) error { return tx.UpdateService(svc) })
	if svc.Version != 2 {
		t.Errorf("version after a spec change = %d, want 2", svc.Version)
	}
	svc.UpdateStatus = orchestrator.UpdateStatus{State: orchestrator.UpdateInProgress, Message: "1 of 2"}
	update(t, s, func(tx orchestrator.Tx) error { return tx.UpdateService(svc) })
	if svc.Version != 2 {
		t.Errorf("version after a status change = %d, want 2", svc.Version)
	}
	// An empty slice where nil was is no change.
	svc.Spec.Placement.Spread = []string{}
	update(t, s, func(tx orchestrator.Tx) error { return tx.UpdateService(svc) })
	if svc.Version != 2 {
		t.Errorf("version after an empty slice = %d, want 2", svc.Version)
	}
	// Two changes in one transaction are one new version.
	update(t, s, func(tx orchestrator.Tx) error {
		svc.Spec.Replicas = 3
		if err := tx.UpdateService(svc); err != nil {
			return err
		}
		svc.Spec.Replicas = 4
		return tx.UpdateService(svc)
	})
	if svc.Version != 3 {
		t.Errorf("version after two changes in one transaction = %d, want 3", svc.Version)
	}
	// Created and changed in one transaction: version 1.
	other := service("api")
	update(t, s, func(tx orchestrator.Tx) error {
		if err := tx.CreateService(other); err != nil {
			return err
		}
		other.Spec.Replicas = 9
		return tx.UpdateService(other)
	})
	if other.Version != 1 {
		t.Errorf("version of a service created and changed in one transaction = %d, want 1", other.Version)
	}
	got, err := getService(t, s, "web")
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 3 || got.Spec.Replicas != 4 || got.PreviousSpec == nil ||
		got.PreviousSpec.Container.Image != "registry.example.com/web:1.0" {
		t.Errorf("stored service: version %d, replicas %d, previous spec %+v", got.Version, got.Spec.Replicas, got.PreviousSpec)
	}
}

var errTest = errors.New("test: give up")

func testRollback(t *testing.T, open Opener) {
	s := openStore(t, open, defaultConfig)
	svc, tk, nd := service("web"), task("web.1", "web", "n1"), node("n1")
	update(t, s, func(tx orchestrator.Tx) error {
		return errors.Join(tx.CreateService(svc), tx.CreateTask(tk), tx.CreateNode(nd))
	})
	events := watch(t, s, 0)
	err := s.Update(context.Background(), "test", func(tx orchestrator.Tx) error {
		moved := *tk
		moved.NodeID = "n2"
		svc2 := *svc
		svc2.Spec.Replicas = 5
		if err := errors.Join(tx.UpdateTask(&moved), tx.CreateTask(task("web.2", "web", "n1")),
			tx.DeleteNode("n1", 0), tx.UpdateService(&svc2), tx.CreateNode(node("n2")),
			tx.DeleteTask("web.2", 0), tx.CreateTask(task("web.2", "web", "n2"))); err != nil {
			return err
		}
		if tx.Revision() != 1 {
			t.Errorf("Revision() in the transaction = %d, want 1", tx.Revision())
		}
		return errTest
	})
	wantErr(t, "Update", err, errTest)
	if got := revision(t, s); got != 1 {
		t.Errorf("revision after a failed transaction = %d, want 1", got)
	}
	got, err := getTask(t, s, "web.1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(*tk, got); diff != "" {
		t.Errorf("task after a failed transaction (-before +after):\n%s", diff)
	}
	gotSvc, _ := getService(t, s, "web")
	if diff := cmp.Diff(*svc, gotSvc); diff != "" {
		t.Errorf("service after a failed transaction (-before +after):\n%s", diff)
	}
	if _, err := getNode(t, s, "n1"); err != nil {
		t.Errorf("node n1 after a failed transaction: %v", err)
	}
	if _, err := getNode(t, s, "n2"); !errors.Is(err, orchestrator.ErrNotFound) {
		t.Errorf("node n2 after a failed transaction: got %v, want ErrNotFound", err)
	}
	if got := taskIDs(t, s, func(tx orchestrator.ReadTx) iter.Seq[orchestrator.Task] { return tx.TasksByNode("n1") }); !slices.Equal(got, []string{"web.1"}) {
		t.Errorf("tasks on n1 after a failed transaction = %v, want [web.1]", got)
	}
	if got := taskIDs(t, s, func(tx orchestrator.ReadTx) iter.Seq[orchestrator.Task] { return tx.TasksByNode("n2") }); len(got) != 0 {
		t.Errorf("tasks on n2 after a failed transaction = %v, want none", got)
	}
	if got := taskIDs(t, s, orchestrator.ReadTx.Tasks); !slices.Equal(got, []string{"web.1"}) {
		t.Errorf("tasks after a failed transaction = %v, want [web.1]", got)
	}
	// No event came of it: the next one is the next transaction's, at revision 2.
	update(t, s, func(tx orchestrator.Tx) error { return tx.CreateTask(task("web.3", "web", "")) })
	if e := next(t, events); e.Revision != 2 || e.Task == nil || e.Task.ID != "web.3" {
		t.Errorf("first event after a failed transaction: %s, want 2 created task web.3", describe(e))
	}
}

func testRollbackOnPanic(t *testing.T, open Opener) {
	s := openStore(t, open, defaultConfig)
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want the panic of the function", r)
			}
		}()
		_ = s.Update(context.Background(), "test", func(tx orchestrator.Tx) error {
			if err := tx.CreateTask(task("web.1", "web", "")); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	if _, err := getTask(t, s, "web.1"); !errors.Is(err, orchestrator.ErrNotFound) {
		t.Errorf("task of a transaction that panicked: got %v, want ErrNotFound", err)
	}
	// The store works on.
	update(t, s, func(tx orchestrator.Tx) error { return tx.CreateTask(task("web.1", "web", "")) })
	if got := revision(t, s); got != 1 {
		t.Errorf("revision = %d, want 1", got)
	}
}

func testEmptyTransaction(t *testing.T, open Opener) {
	s := openStore(t, open, defaultConfig)
	update(t, s, func(tx orchestrator.Tx) error { return tx.CreateTask(task("web.1", "web", "")) })
	events := watch(t, s, 0)
	update(t, s, func(tx orchestrator.Tx) error { return nil })
	// Created and deleted in one transaction is no change either.
	update(t, s, func(tx orchestrator.Tx) error {
		return errors.Join(tx.CreateTask(task("tmp", "web", "")), tx.DeleteTask("tmp", 0))
	})
	if got := revision(t, s); got != 1 {
		t.Errorf("revision after transactions that change nothing = %d, want 1", got)
	}
	quiet(t, events)
}

func testCopies(t *testing.T, open Opener) {
	s := openStore(t, open, defaultConfig)
	svc, tk, nd := service("web"), task("web.1", "web", "n1"), node("n1")
	tk.Status.Addresses = []string{"10.1.0.2"}
	tk.Spec.HealthCheck = &dao.HealthCheck{Command: []string{"true"}}
	want := *tk
	want.Spec.Env = slices.Clone(tk.Spec.Env)
	want.Spec.Labels = maps.Clone(tk.Spec.Labels)
	want.Status.Addresses = slices.Clone(tk.Status.Addresses)
	want.Spec.HealthCheck = &dao.HealthCheck{Command: []string{"true"}}
	events := watch(t, s, 0)
	update(t, s, func(tx orchestrator.Tx) error {
		return errors.Join(tx.CreateService(svc), tx.CreateTask(tk), tx.CreateNode(nd))
	})
	want.Revision = tk.Revision

	// The writer changes its values afterwards.
	tk.Spec.Env[0] = "MODE=changed"
	tk.Spec.Labels["app"] = "changed"
	tk.Status.Addresses[0] = "changed"
	tk.Spec.HealthCheck.Command[0] = "changed"
	svc.Spec.Labels["team"] = "changed"
	svc.Spec.Container.Env[0] = "changed"
	svc.Spec.Placement.Constraints[0] = "changed"
	nd.Labels["zone"] = "changed"

	// A reader changes what it read.
	err := s.View(context.Background(), func(tx orchestrator.ReadTx) error {
		got, err := tx.Task("web.1")
		if err != nil {
			return err
		}
		got.Spec.Env[0] = "MODE=reader"
		got.Spec.Labels["app"] = "reader"
		got.Status.Addresses[0] = "reader"
		got.Spec.HealthCheck.Command[0] = "reader"
		for got := range tx.TasksByNode("n1") {
			got.Spec.Env[0] = "MODE=iterator"
			got.Spec.Labels["app"] = "iterator"
		}
		gs, err := tx.Service("web")
		if err != nil {
			return err
		}
		gs.Spec.Labels["team"] = "reader"
		gs.Spec.Container.Env[0] = "reader"
		for n := range tx.Nodes() {
			n.Labels["zone"] = "reader"
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A watcher changes its events.
	for _, e := range nextN(t, events, 3) {
		switch {
		case e.Task != nil:
			e.Task.Spec.Env[0] = "MODE=watcher"
			e.Task.Spec.Labels["app"] = "watcher"
		case e.Service != nil:
			e.Service.Spec.Labels["team"] = "watcher"
		case e.Node != nil:
			e.Node.Labels["zone"] = "watcher"
		}
	}

	got, err := getTask(t, s, "web.1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored task changed through a copy (-want +got):\n%s", diff)
	}
	gotSvc, _ := getService(t, s, "web")
	if gotSvc.Spec.Labels["team"] != "a" || gotSvc.Spec.Container.Env[0] != "MODE=test" ||
		gotSvc.Spec.Placement.Constraints[0] != "node.labels.zone == a" {
		t.Errorf("stored service changed through a copy: %+v", gotSvc.Spec)
	}
	gotNode, _ := getNode(t, s, "n1")
	if gotNode.Labels["zone"] != "a" {
		t.Errorf("stored node changed through a copy: labels %v", gotNode.Labels)
	}

	// Empty slices and maps are stored as nil.
	empty := task("empty", "web", "")
	empty.Spec.Env = []string{}
	empty.Spec.Labels = map[string]string{}
	empty.Status.Addresses = []string{}
	update(t, s, func(tx orchestrator.Tx) error { return tx.CreateTask(empty) })
	gotEmpty, _ := getTask(t, s, "empty")
	if gotEmpty.Spec.Env != nil || gotEmpty.Spec.Labels != nil || gotEmpty.Status.Addresses != nil {
		t.Errorf("empty slices and maps read back as %#v, %#v, %#v, want nil", gotEmpty.Spec.Env, gotEmpty.Spec.Labels, gotEmpty.Status.Addresses)
	}
}

func testIndexes(t *testing.T, open Opener) {
	s := openStore(t, open, defaultConfig)
	update(t, s, func(tx orchestrator.Tx) error {
		var errs []error
		for i := range 6 {
			svc := []string{"web", "api"}[i%2]
			nd := []string{"n1", "n2", ""}[i%3]
			errs = append(errs, tx.CreateTask(task(fmt.Sprintf("t%d", i), svc, nd)))
		}
		return errors.Join(errs...)
	})
	byNode := func(id string) []string {
		return taskIDs(t, s, func(tx orchestrator.ReadTx) iter.Seq[orchestrator.Task] { return tx.TasksByNode(id) })
	}
	byService := func(id string) []string {
		return taskIDs(t, s, func(tx orchestrator.ReadTx) iter.Seq[orchestrator.Task] { return tx.TasksByService(id) })
	}
	check := func(when string, want map[string][]string) {
		t.Helper()
		got := map[string][]string{
			"node n1": byNode("n1"), "node n2": byNode("n2"), "no node": byNode(""), "node n3": byNode("n3"),
			"service web": byService("web"), "service api": byService("api"), "service x": byService("x"),
		}
		for k, v := range got {
			if len(v) == 0 {
				delete(got, k)
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: index (-want +got):\n%s", when, diff)
		}
	}
	check("created", map[string][]string{
		"node n1": {"t0", "t3"}, "node n2": {"t1", "t4"}, "no node": {"t2", "t5"},
		"service web": {"t0", "t2", "t4"}, "service api": {"t1", "t3", "t5"},
	})
	update(t, s, func(tx orchestrator.Tx) error {
		// Schedule the pending tasks, move one, change one's service, delete one.
		var errs []error
		for id, nd := range map[string]string{"t2": "n1", "t5": "n3", "t0": "n2"} {
			tk, err := tx.Task(id)
			if err != nil {
				return err
			}
			tk.NodeID = nd
			errs = append(errs, tx.UpdateTask(&tk))
		}
		tk, err := tx.Task("t1")
		if err != nil {
			return err
		}
		tk.ServiceID = "x"
		errs = append(errs, tx.UpdateTask(&tk), tx.DeleteTask("t4", 0))
		return errors.Join(errs...)
	})
	check("updated", map[string][]string{
		"node n1": {"t2", "t3"}, "node n2": {"t0", "t1"}, "node n3": {"t5"},
		"service web": {"t0", "t2"}, "service api": {"t3", "t5"}, "service x": {"t1"},
	})
	// Stopping an iteration early is fine.
	err := s.View(context.Background(), func(tx orchestrator.ReadTx) error {
		for range tx.TasksByService("web") {
			break
		}
		for range tx.Tasks() {
			break
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testReadYourWrites(t *testing.T, open Opener) {
	s := openStore(t, open, defaultConfig)
	update(t, s, func(tx orchestrator.Tx) error { return tx.CreateTask(task("t1", "web", "")) })
	update(t, s, func(tx orchestrator.Tx) error {
		if err := tx.CreateTask(task("t2", "web", "n1")); err != nil {
			return err
		}
		if _, err := tx.Task("t2"); err != nil {
			t.Errorf("Task of a task created in the transaction: %v", err)
		}
		t1, err := tx.Task("t1")
		if err != nil {
			return err
		}
		t1.NodeID = "n1"
		if err := tx.UpdateTask(&t1); err != nil {
			return err
		}
		var onN1 []string
		for tk := range tx.TasksByNode("n1") {
			onN1 = append(onN1, tk.ID)
			if tk.Revision != tx.Revision()+1 {
				t.Errorf("task %s written in the transaction has revision %d, want %d", tk.ID, tk.Revision, tx.Revision()+1)
			}
		}
		sort.Strings(onN1)
		if !slices.Equal(onN1, []string{"t1", "t2"}) {
			t.Errorf("TasksByNode(n1) in the transaction = %v, want [t1 t2]", onN1)
		}
		for range tx.TasksByNode("") {
			t.Error("TasksByNode(\"\") in the transaction yields a task moved to n1")
		}
		if err := tx.DeleteTask("t2", 0); err != nil {
			return err
		}
		if _, err := tx.Task("t2"); !errors.Is(err, orchestrator.ErrNotFound) {
			t.Errorf("Task of a task deleted in the transaction: got %v, want ErrNotFound", err)
		}
		return nil
	})
}

func testIterateWhileWriting(t *testing.T, open Opener) {
	s := openStore(t, open, defaultConfig)
	n := 100
	if l := txnLimit(s); l > 0 && 3*n/2 > l {
		n = 2 * (l / 3) // the second transaction writes 3n/2 objects
	}
	update(t, s, func(tx orchestrator.Tx) error {
		for i := range n {
			if err := tx.CreateTask(task(fmt.Sprintf("t%d", i), "web", "")); err != nil {
				return err
			}
		}
		return nil
	})
	// Each task yielded is placed on a node, and deletes another pending one: no task is
	// yielded twice, or after it was deleted or moved off the list.
	update(t, s, func(tx orchestrator.Tx) error {
		yielded := map[string]bool{}
		gone := map[string]bool{}
		for tk := range tx.TasksByNode("") {
			if yielded[tk.ID] || gone[tk.ID] {
				t.Errorf("task %s yielded again, or after it was deleted or moved", tk.ID)
			}
			yielded[tk.ID] = true
			tk.NodeID = "n1"
			if err := tx.UpdateTask(&tk); err != nil {
				return err
			}
			gone[tk.ID] = true
			for other := range tx.TasksByNode("") {
				if err := tx.DeleteTask(other.ID, 0); err != nil {
					return err
				}
				gone[other.ID] = true
				break
			}
			if err := tx.CreateTask(task("new-"+tk.ID, "web", "n2")); err != nil {
				return err
			}
		}
		if len(yielded) != n/2 {
			t.Errorf("%d tasks yielded, want %d", len(yielded), n/2)
		}
		return nil
	})
	count := func(node string) int {
		return len(taskIDs(t, s, func(tx orchestrator.ReadTx) iter.Seq[orchestrator.Task] { return tx.TasksByNode(node) }))
	}
	if got := [3]int{count(""), count("n1"), count("n2")}; got != [3]int{0, n / 2, n / 2} {
		t.Errorf("tasks on no node, n1, n2 = %v, want [0 %d %d]", got, n/2, n/2)
	}
}

// txnLimit returns the most objects a transaction of s may write, or 0 for no limit
// (see orchestrator.TxnLimiter).
func txnLimit(s orchestrator.Store) int {
	if l, ok := s.(orchestrator.TxnLimiter); ok {
		return l.TxnLimit()
	}
	return 0
}

// updateBatched writes n objects, write(tx, i) each, in as few transactions as the
// store's limit allows: one when it has none.
func updateBatched(t *testing.T, s orchestrator.Store, n int, write func(tx orchestrator.Tx, i int) error) {
	t.Helper()
	batch := txnLimit(s)
	if batch == 0 {
		batch = n
	}
	for lo := 0; lo < n; lo += batch {
		update(t, s, func(tx orchestrator.Tx) error {
			for i := lo; i < min(n, lo+batch); i++ {
				if err := write(tx, i); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

func testLargeBatch(t *testing.T, open Opener) {
	s := openStore(t, open, defaultConfig)
	n := 10_000
	if txnLimit(s) > 0 {
		n = 2_000 // in transactions of the limit: enough to cross it many times
	}
	events := watch(t, s, 0, orchestrator.WatchKinds(orchestrator.EventUpdated))
	updateBatched(t, s, n, func(tx orchestrator.Tx, i int) error {
		return tx.CreateTask(task(fmt.Sprintf("web.%d", i), "web", ""))
	})
	var ids []string
	err := s.View(context.Background(), func(tx orchestrator.ReadTx) error {
		for tk := range tx.TasksByNode("") {
			ids = append(ids, tk.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	updateBatched(t, s, len(ids), func(tx orchestrator.Tx, i int) error {
		tk, err := tx.Task(ids[i])
		if err != nil {
			return err
		}
		tk.NodeID = "n" + strconv.Itoa(tk.Slot%7)
		tk.Slot = 0
		return tx.UpdateTask(&tk)
	})
	count := 0
	err = s.View(context.Background(), func(tx orchestrator.ReadTx) error {
		for range tx.TasksByService("web") {
			count++
		}
		for range tx.TasksByNode("") {
			t.Error("a task is left on no node")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if count != n {
		t.Errorf("TasksByService(web) yields %d tasks, want %d", count, n)
	}
	if got := len(nextN(t, events, n)); got != n {
		t.Errorf("got %d update events, want %d", got, n)
	}
}

// testTxnLimit: a store with a limit (orchestrator.TxnLimiter) commits a transaction of
// exactly the limit whole, at one revision, and refuses one object more, or one too big
// in bytes, whole: ErrTxnTooLarge, nothing written, the revision as it was. A store with
// no limit takes them all.
func testTxnLimit(t *testing.T, open Opener) {
	s := openStore(t, open, defaultConfig)
	limit := txnLimit(s)
	if limit == 0 {
		limit = 1000
	}
	events := watch(t, s, 0)
	write := func(prefix string, n int, spec func(*orchestrator.Task)) error {
		return s.Update(context.Background(), "test", func(tx orchestrator.Tx) error {
			for i := range n {
				tk := task(fmt.Sprintf("%s.%d", prefix, i), "web", "")
				if spec != nil {
					spec(tk)
				}
				if err := tx.CreateTask(tk); err != nil {
					return err
				}
			}
			return nil
		})
	}
	before := revision(t, s)
	if err := write("at", limit, nil); err != nil {
		t.Fatalf("a transaction of %d objects, the limit: %v", limit, err)
	}
	if got := revision(t, s); got != before+1 {
		t.Errorf("revision after a transaction at the limit = %d, want %d", got, before+1)
	}
	for _, e := range nextN(t, events, limit) {
		if e.Revision != before+1 {
			t.Fatalf("event %s, want all at revision %d", describe(e), before+1)
		}
	}
	if txnLimit(s) == 0 {
		return
	}
	before = revision(t, s)
	err := write("over", limit+1, nil)
	wantErr(t, "a transaction of one object over the limit", err, orchestrator.ErrTxnTooLarge)
	big := func(tk *orchestrator.Task) {
		tk.Spec.Env = []string{"BLOB=" + strings.Repeat("x", 64<<10)}
	}
	err = write("big", 64, big) // 4 MiB: more than etcd takes in one request
	wantErr(t, "a transaction of 64 tasks of 64 KiB each", err, orchestrator.ErrTxnTooLarge)
	if got := revision(t, s); got != before {
		t.Errorf("revision after refused transactions = %d, want %d", got, before)
	}
	for _, id := range []string{"over.0", "over." + strconv.Itoa(limit), "big.0", "big.63"} {
		if _, err := getTask(t, s, id); !errors.Is(err, orchestrator.ErrNotFound) {
			t.Errorf("task %s of a refused transaction: %v, want ErrNotFound", id, err)
		}
	}
	quiet(t, events)
}

func testWatchEvents(t *testing.T, open Opener) {
	s := openStore(t, open, defaultConfig)
	events := watch(t, s, 0)
	svc, tk, nd := service("web"), task("web.1", "web", ""), node("n1")
	if err := s.Update(context.Background(), "reconciler: scale web to 1", func(tx orchestrator.Tx) error {
		return errors.Join(tx.CreateService(svc), tx.CreateNode(nd), tx.CreateTask(tk))
	}); err != nil {
		t.Fatal(err)
	}
	before := *tk
	tk.NodeID = "n1"
	tk.Status.State = dao.TaskAssigned
	if err := s.Update(context.Background(), "scheduler", func(tx orchestrator.Tx) error { return tx.UpdateTask(tk) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(context.Background(), "reaper", func(tx orchestrator.Tx) error {
		return errors.Join(tx.DeleteTask("web.1", 0), tx.DeleteNode("n1", 0))
	}); err != nil {
		t.Fatal(err)
	}
	got := nextN(t, events, 6)
	want := []string{
		"1 created service web (reconciler: scale web to 1)",
		"1 created node n1 (reconciler: scale web to 1)",
		"1 created task web.1 (reconciler: scale web to 1)",
		"2 updated task web.1 (scheduler)",
		"3 deleted task web.1 (reaper)",
		"3 deleted node n1 (reaper)",
	}
	if diff := cmp.Diff(want, describeAll(got)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(svc, got[0].Service); diff != "" {
		t.Errorf("created service event (-want +got):\n%s", diff)
	}
	if got[0].PrevService != nil || got[0].Task != nil || got[0].Node != nil {
		t.Errorf("created service event has other objects: %+v", got[0])
	}
	if diff := cmp.Diff(tk, got[3].Task); diff != "" {
		t.Errorf("updated task event: task (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&before, got[3].PrevTask); diff != "" {
		t.Errorf("updated task event: previous task (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(tk, got[4].Task); diff != "" {
		t.Errorf("deleted task event: task (-want +got):\n%s", diff)
	}
	if got[4].PrevTask != nil {
		t.Errorf("deleted task event has a previous task")
	}
	for _, e := range got {
		if e.Err != nil {
			t.Errorf("event %s has an error", describe(e))
		}
	}
	quiet(t, events)
}

func testWatchCoalesces(t *testing.T, open Opener) {
	s := openStore(t, open, defaultConfig)
	update(t, s, func(tx orchestrator.Tx) error {
		return errors.Join(tx.CreateTask(task("a", "web", "")), tx.CreateTask(task("b", "web", "")))
	})
	events := watch(t, s, 0)
	update(t, s, func(tx orchestrator.Tx) error {
		c := task("c", "web", "")
		if err := tx.CreateTask(c); err != nil {
			return err
		}
		c.NodeID = "n1"
		b, _ := tx.Task("b")
		b.NodeID = "n2"
		if err := errors.Join(tx.UpdateTask(c), tx.UpdateTask(&b)); err != nil {
			return err
		}
		b.NodeID = "n3"
		return errors.Join(tx.UpdateTask(&b), tx.DeleteTask("a", 0), tx.CreateTask(task("d", "web", "")), tx.DeleteTask("d", 0))
	})
	got := nextN(t, events, 3)
	if diff := cmp.Diff([]string{"2 created task c (test)", "2 updated task b (test)", "2 deleted task a (test)"}, describeAll(got)); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	if got[0].Task.NodeID != "n1" {
		t.Errorf("created event of a task updated in the same transaction: node %q, want n1", got[0].Task.NodeID)
	}
	if got[1].Task.NodeID != "n3" || got[1].PrevTask.NodeID != "" || got[1].PrevTask.Revision != 1 {
		t.Errorf("updated event of a task updated twice: node %q, previous node %q at revision %d, want n3, \"\" at 1",
			got[1].Task.NodeID, got[1].PrevTask.NodeID, got[1].PrevTask.Revision)
	}
	quiet(t, events)
}

// writeN writes n transactions of one task each, and returns the revision of the last.
func writeN(t *testing.T, s orchestrator.Store, prefix string, n int) uint64 {
	t.Helper()
	for i := range n {
		update(t, s, func(tx orchestrator.Tx) error { return tx.CreateTask(task(fmt.Sprintf("%s%d", prefix, i), "web", "")) })
	}
	return revision(t, s)
}

func testWatchFromRevision(t *testing.T, open Opener) {
	s := openStore(t, open, defaultConfig)
	writeN(t, s, "t", 5) // revisions 1-5
	events := watch(t, s, 3)
	got := nextN(t, events, 3)
	for i, e := range got {
		if want := uint64(3 + i); e.Revision != want || e.Task.ID != fmt.Sprintf("t%d", want-1) {
			t.Errorf("replayed event %d: %s, want revision %d", i, describe(e), want)
		}
	}
	writeN(t, s, "u", 2) // 6, 7: live
	for i, e := range nextN(t, events, 2) {
		if want := uint64(6 + i); e.Revision != want {
			t.Errorf("live event %d: %s, want revision %d", i, describe(e), want)
		}
	}
	quiet(t, events)

	// From 0: only what comes next. From the current revision: that one, then what comes.
	now := watch(t, s, 0)
	current := watch(t, s, 7)
	writeN(t, s, "v", 1)
	if e := next(t, now); e.Revision != 8 {
		t.Errorf("watch from 0: first event %s, want revision 8", describe(e))
	}
	if e := next(t, current); e.Revision != 7 {
		t.Errorf("watch from the current revision: first event %s, want revision 7", describe(e))
	}
	if e := next(t, current); e.Revision != 8 {
		t.Errorf("watch from the current revision: second event %s, want revision 8", describe(e))
	}

	// A transaction of many objects is replayed whole.
	n := 3000
	if l := txnLimit(s); l > 0 {
		n = l
	}
	update(t, s, func(tx orchestrator.Tx) error {
		for i := range n {
			if err := tx.CreateTask(task(fmt.Sprintf("w%d", i), "web", "")); err != nil {
				return err
			}
		}
		return nil
	})
	if got := len(nextN(t, watch(t, s, 9), n)); got != n {
		t.Errorf("replay of a transaction of %d objects: %d events", n, got)
	}
}

func testWatchFutureRevision(t *testing.T, open Opener) {
	s := openStore(t, open, defaultConfig)
	writeN(t, s, "t", 2)
	events := watch(t, s, 5)
	writeN(t, s, "u", 4) // revisions 3-6
	if e := next(t, events); e.Revision != 5 {
		t.Errorf("watch from a future revision: first event %s, want revision 5", describe(e))
	}
	if e := next(t, events); e.Revision != 6 {
		t.Errorf("watch from a future revision: second event %s, want revision 6", describe(e))
	}
}

func testWatchFilters(t *testing.T, open Opener) {
	s := openStore(t, open, defaultConfig)
	tasksOnly := watch(t, s, 0, orchestrator.WatchTypes(orchestrator.TaskObject))
	nodesAndServices := watch(t, s, 0, orchestrator.WatchTypes(orchestrator.NodeObject, orchestrator.ServiceObject))
	deletes := watch(t, s, 0, orchestrator.WatchKinds(orchestrator.EventDeleted))
	web := watch(t, s, 0, orchestrator.WatchService("web"))
	n1 := watch(t, s, 0, orchestrator.WatchNode("n1"))
	pending := watch(t, s, 0, orchestrator.WatchNode(""))
	failed := watch(t, s, 0, orchestrator.WatchTypes(orchestrator.TaskObject), orchestrator.WatchFunc(func(e orchestrator.Event) bool {
		return e.Task.Status.State == dao.TaskFailed
	}))
	both := watch(t, s, 0, orchestrator.WatchService("web"), orchestrator.WatchNode("n2"))

	update(t, s, func(tx orchestrator.Tx) error { // 1
		return errors.Join(tx.CreateService(service("web")), tx.CreateService(service("api")),
			tx.CreateNode(node("n1")), tx.CreateNode(node("n2")),
			tx.CreateTask(task("web.1", "web", "")), tx.CreateTask(task("api.1", "api", "n2")))
	})
	update(t, s, func(tx orchestrator.Tx) error { // 2: place web.1 on n1
		tk, _ := tx.Task("web.1")
		tk.NodeID = "n1"
		return tx.UpdateTask(&tk)
	})
	update(t, s, func(tx orchestrator.Tx) error { // 3: move web.1 to n2, and it fails
		tk, _ := tx.Task("web.1")
		tk.NodeID = "n2"
		tk.Status.State = dao.TaskFailed
		return tx.UpdateTask(&tk)
	})
	update(t, s, func(tx orchestrator.Tx) error { // 4
		return errors.Join(tx.DeleteTask("api.1", 0), tx.DeleteNode("n1", 0))
	})
	tests := []struct {
		name string
		ch   <-chan orchestrator.Event
		want []string
	}{
		{"tasks", tasksOnly, []string{"1 created task web.1 (test)", "1 created task api.1 (test)",
			"2 updated task web.1 (test)", "3 updated task web.1 (test)", "4 deleted task api.1 (test)"}},
		{"nodes and services", nodesAndServices, []string{"1 created service web (test)", "1 created service api (test)",
			"1 created node n1 (test)", "1 created node n2 (test)", "4 deleted node n1 (test)"}},
		{"deletes", deletes, []string{"4 deleted task api.1 (test)", "4 deleted node n1 (test)"}},
		{"service web", web, []string{"1 created service web (test)", "1 created task web.1 (test)",
			"2 updated task web.1 (test)", "3 updated task web.1 (test)"}},
		{"node n1", n1, []string{"1 created node n1 (test)", "2 updated task web.1 (test)",
			"3 updated task web.1 (test)", "4 deleted node n1 (test)"}},
		{"no node", pending, []string{"1 created task web.1 (test)", "2 updated task web.1 (test)"}},
		{"func", failed, []string{"3 updated task web.1 (test)"}},
		{"service web and node n2", both, []string{"3 updated task web.1 (test)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := nextN(t, tt.ch, len(tt.want))
			if diff := cmp.Diff(tt.want, describeAll(got)); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			quiet(t, tt.ch)
		})
	}
}

func testWatchCompacted(t *testing.T, open Opener) {
	c := Config{History: 16, WatchBuffer: 10_000}
	s := openStore(t, open, c)
	last := writeN(t, s, "t", 10*c.History)
	ctx := context.Background()
	if _, err := s.Watch(ctx, 1); !errors.Is(err, orchestrator.ErrCompacted) {
		t.Errorf("Watch(1) after %d transactions with a history of %d: got %v, want ErrCompacted", last, c.History, err)
	}
	// The latest History revisions are kept.
	from := last - uint64(c.History) + 1
	events := watch(t, s, from)
	for i, e := range nextN(t, events, c.History) {
		if e.Revision != from+uint64(i) {
			t.Errorf("replayed event %d: %s, want revision %d", i, describe(e), from+uint64(i))
		}
	}
	quiet(t, events)
}

func testSlowWatcher(t *testing.T, open Opener) {
	c := Config{History: 64, WatchBuffer: 64}
	s := openStore(t, open, c)
	slow := watch(t, s, 0) // not read until the end
	// Writers do not wait for it: fifty times its buffer is written.
	const perTx = 8
	for i := range 50 * c.WatchBuffer / perTx {
		update(t, s, func(tx orchestrator.Tx) error {
			for j := range perTx {
				if err := tx.CreateTask(task(fmt.Sprintf("t%d.%d", i, j), "web", "")); err != nil {
					return err
				}
			}
			return nil
		})
	}
	// The store ended the watch: after what was left in the channel, if anything, comes
	// an event with ErrSlowWatcher, then the channel is closed.
	if err := waitEnd(t, slow); !errors.Is(err, orchestrator.ErrSlowWatcher) {
		t.Errorf("slow watcher's last event: error %v, want ErrSlowWatcher", err)
	}
	// A new watch works.
	events := watch(t, s, 0)
	writeN(t, s, "u", 1)
	if e := next(t, events); e.Err != nil {
		t.Errorf("new watch after a slow one: %v", e.Err)
	}
}

// testStalledWatcher: a reader that stops taking events, and stays within its buffer so
// that it is not ended, holds up no writer, no other watcher, and not Close, which ends
// its watch with ErrClosed.
func testStalledWatcher(t *testing.T, open Opener) {
	s := open(t, Config{History: 64, WatchBuffer: 10_000})
	stalled := watch(t, s, 0) // never read until Close
	reader := watch(t, s, 0)
	// Far more than any channel holds: the writers do not wait for either watcher.
	const n = 1000
	writeN(t, s, "t", n)
	if got := len(nextN(t, reader, n)); got != n {
		t.Errorf("the reading watcher got %d events, want %d", got, n)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(timeout):
		t.Fatal("Close held up by a watcher that does not read")
	}
	if err := waitEnd(t, stalled); !errors.Is(err, orchestrator.ErrClosed) {
		t.Errorf("stalled watcher's last event: error %v, want ErrClosed", err)
	}
	if err := waitEnd(t, reader); !errors.Is(err, orchestrator.ErrClosed) {
		t.Errorf("reading watcher's last event: error %v, want ErrClosed", err)
	}
}

func testBurstDoesNotEndReader(t *testing.T, open Opener) {
	c := Config{History: 64, WatchBuffer: 64}
	s := openStore(t, open, c)
	if l := txnLimit(s); l > 0 && 20*c.WatchBuffer > l {
		// A store that takes fewer objects at once, with a buffer as much smaller.
		s.Close()
		c = Config{History: 64, WatchBuffer: max(1, l/20)}
		s = openStore(t, open, c)
	}
	events := watch(t, s, 0)
	update(t, s, func(tx orchestrator.Tx) error {
		for i := range 20 * c.WatchBuffer {
			if err := tx.CreateTask(task(fmt.Sprintf("t%d", i), "web", "")); err != nil {
				return err
			}
		}
		return nil
	})
	// One transaction far bigger than the buffer: a reader that takes the events is not
	// ended.
	if got := len(nextN(t, events, 20*c.WatchBuffer)); got != 20*c.WatchBuffer {
		t.Errorf("got %d events", got)
	}
}

func testWatchCancel(t *testing.T, open Opener) {
	s := openStore(t, open, defaultConfig)
	ctx, cancel := context.WithCancel(context.Background())
	events, err := s.Watch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	writeN(t, s, "t", 3)
	cancel()
	if err := waitEnd(t, events); err != nil {
		t.Errorf("watch ended by its context: last event has error %v, want none", err)
	}
	// Writing goes on.
	writeN(t, s, "u", 3)
}

func testClose(t *testing.T, open Opener) {
	s := open(t, defaultConfig)
	events, err := s.Watch(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	writeN(t, s, "t", 2)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := waitEnd(t, events); !errors.Is(err, orchestrator.ErrClosed) {
		t.Errorf("watch of a closed store: last event has error %v, want ErrClosed", err)
	}
	ctx := context.Background()
	err = s.Update(ctx, "test", func(tx orchestrator.Tx) error { return nil })
	wantErr(t, "Update after Close", err, orchestrator.ErrClosed)
	err = s.View(ctx, func(tx orchestrator.ReadTx) error { return nil })
	wantErr(t, "View after Close", err, orchestrator.ErrClosed)
	_, err = s.Watch(ctx, 0)
	wantErr(t, "Watch after Close", err, orchestrator.ErrClosed)
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func testContextDone(t *testing.T, open Opener) {
	s := openStore(t, open, defaultConfig)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	err := s.Update(ctx, "test", func(tx orchestrator.Tx) error { called = true; return nil })
	wantErr(t, "Update with a done context", err, context.Canceled)
	err = s.View(ctx, func(tx orchestrator.ReadTx) error { called = true; return nil })
	wantErr(t, "View with a done context", err, context.Canceled)
	_, err = s.Watch(ctx, 0)
	wantErr(t, "Watch with a done context", err, context.Canceled)
	if called {
		t.Error("a function was called with a done context")
	}

	// A writer that waits for its turn gives up when its context is done.
	started, release := make(chan struct{}), make(chan struct{})
	go func() {
		_ = s.Update(context.Background(), "test", func(tx orchestrator.Tx) error {
			close(started)
			<-release
			return nil
		})
	}()
	<-started
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err = s.Update(ctx, "test", func(tx orchestrator.Tx) error { return nil })
	close(release)
	wantErr(t, "Update waiting for its turn", err, context.DeadlineExceeded)
}

func testConcurrentUpdates(t *testing.T, open Opener) {
	s := openStore(t, open, defaultConfig)
	svc := service("counter")
	update(t, s, func(tx orchestrator.Tx) error { return tx.CreateService(svc) })
	const writers, increments = 4, 25
	events := watch(t, s, 0, orchestrator.WatchService("counter"))
	ctx := context.Background()
	var wg sync.WaitGroup
	var conflicts sync.Map
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < increments; {
				// Read, decide, write; on conflict, again.
				var read orchestrator.Service
				if err := s.View(ctx, func(tx orchestrator.ReadTx) error {
					var err error
					read, err = tx.Service("counter")
					return err
				}); err != nil {
					t.Error(err)
					return
				}
				n, _ := strconv.Atoi(read.Spec.Labels["count"])
				read.Spec.Labels["count"] = strconv.Itoa(n + 1)
				err := s.Update(ctx, fmt.Sprintf("writer %d", w), func(tx orchestrator.Tx) error {
					if err := tx.UpdateService(&read); err != nil {
						return err
					}
					return tx.CreateTask(task(fmt.Sprintf("w%d.%d", w, i), "counter", ""))
				})
				switch {
				case errors.Is(err, orchestrator.ErrConflict):
					conflicts.Store(w, true)
					continue
				case err != nil:
					t.Error(err)
					return
				}
				i++
			}
		}()
	}
	// Readers list while writers write: every list is consistent (as many tasks as the
	// count says).
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := s.View(ctx, func(tx orchestrator.ReadTx) error {
					svc, err := tx.Service("counter")
					if err != nil {
						return err
					}
					n, _ := strconv.Atoi(svc.Spec.Labels["count"])
					count := 0
					for range tx.TasksByService("counter") {
						count++
					}
					if count != n {
						t.Errorf("a View sees count %d and %d tasks", n, count)
					}
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	got, err := getService(t, s, "counter")
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(writers * increments); got.Spec.Labels["count"] != want {
		t.Errorf("count = %s, want %s", got.Spec.Labels["count"], want)
	}
	if got.Version != 1+writers*increments {
		t.Errorf("version = %d, want %d", got.Version, 1+writers*increments)
	}
	// The watcher saw every change, in revision order.
	var prev uint64
	for _, e := range nextN(t, events, 2*writers*increments) {
		if e.Revision < prev {
			t.Fatalf("event %s after revision %d", describe(e), prev)
		}
		prev = e.Revision
	}
	if prev != got.Revision {
		t.Errorf("last event at revision %d, service at %d", prev, got.Revision)
	}
}

func testListThenWatch(t *testing.T, open Opener) {
	s := openStore(t, open, defaultConfig)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A writer moves tasks around while a follower lists, then watches.
	const total = 200
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range total {
			err := s.Update(ctx, "writer", func(tx orchestrator.Tx) error {
				if err := tx.CreateTask(task(fmt.Sprintf("t%d", i), "web", "")); err != nil {
					return err
				}
				if i%3 == 0 && i > 0 {
					return tx.DeleteTask(fmt.Sprintf("t%d", i-1), 0)
				}
				return nil
			})
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	time.Sleep(time.Millisecond)
	mirror := map[string]uint64{}
	var rev uint64
	err := s.View(ctx, func(tx orchestrator.ReadTx) error {
		rev = tx.Revision()
		for tk := range tx.Tasks() {
			mirror[tk.ID] = tk.Revision
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	events, err := s.Watch(ctx, rev+1)
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	final := revision(t, s)
	for rev < final {
		e := next(t, events)
		if e.Err != nil {
			t.Fatal(e.Err)
		}
		rev = e.Revision
		switch e.Kind {
		case orchestrator.EventCreated:
			if _, ok := mirror[e.Task.ID]; ok {
				t.Errorf("created event of %s, which the list had", e.Task.ID)
			}
			mirror[e.Task.ID] = e.Task.Revision
		case orchestrator.EventDeleted:
			if _, ok := mirror[e.Task.ID]; !ok {
				t.Errorf("deleted event of %s, which the list did not have", e.Task.ID)
			}
			delete(mirror, e.Task.ID)
		}
	}
	want := map[string]uint64{}
	err = s.View(ctx, func(tx orchestrator.ReadTx) error {
		for tk := range tx.Tasks() {
			want[tk.ID] = tk.Revision
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, mirror); diff != "" {
		t.Errorf("list then watch (-store +mirror):\n%s", diff)
	}
}

// The tests of RunDurable.

func testReopen(t *testing.T, open func(t *testing.T) orchestrator.Store) {
	s := open(t)
	svc, tk, nd := service("web"), task("web.1", "web", "n1"), node("n1")
	tk.Status.Addresses = []string{"10.1.0.2"}
	tk.Status.Timestamp = time.Now()
	svc.UpdateStatus = orchestrator.UpdateStatus{State: orchestrator.UpdateCompleted, Message: "done", StartedAt: time.Now()}
	update(t, s, func(tx orchestrator.Tx) error {
		return errors.Join(tx.CreateService(svc), tx.CreateTask(tk), tx.CreateNode(nd), tx.CreateTask(task("web.2", "web", "")))
	})
	svc.Spec.Replicas = 3
	update(t, s, func(tx orchestrator.Tx) error { return tx.UpdateService(svc) })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t)
	defer s.Close()
	gotSvc, err := getService(t, s, "web")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(*svc, gotSvc); diff != "" {
		t.Errorf("service after reopening (-before +after):\n%s", diff)
	}
	gotTask, err := getTask(t, s, "web.1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(*tk, gotTask); diff != "" {
		t.Errorf("task after reopening (-before +after):\n%s", diff)
	}
	gotNode, err := getNode(t, s, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(*nd, gotNode); diff != "" {
		t.Errorf("node after reopening (-before +after):\n%s", diff)
	}
	if got := taskIDs(t, s, func(tx orchestrator.ReadTx) iter.Seq[orchestrator.Task] { return tx.TasksByNode("") }); !slices.Equal(got, []string{"web.2"}) {
		t.Errorf("index of tasks on no node after reopening = %v, want [web.2]", got)
	}
	if got := taskIDs(t, s, func(tx orchestrator.ReadTx) iter.Seq[orchestrator.Task] { return tx.TasksByService("web") }); !slices.Equal(got, []string{"web.1", "web.2"}) {
		t.Errorf("index of tasks by service after reopening = %v, want [web.1 web.2]", got)
	}
	// Optimistic concurrency goes on with the revisions read before.
	tk.NodeID = "n2"
	update(t, s, func(tx orchestrator.Tx) error { return tx.UpdateTask(tk) })
	if tk.Revision != 3 {
		t.Errorf("revision of the first write after reopening = %d, want 3", tk.Revision)
	}
}

func testReopenRevision(t *testing.T, open func(t *testing.T) orchestrator.Store) {
	s := open(t)
	last := writeN(t, s, "t", 5)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	id := s.ID()
	s = open(t)
	defer s.Close()
	if got := revision(t, s); got != last {
		t.Errorf("revision after reopening = %d, want %d", got, last)
	}
	if s.ID() != id || id == "" {
		t.Errorf("ID after reopening = %q, want %q (not empty): the revisions go on", s.ID(), id)
	}
	// The history is gone: a watch from before the reopening is compacted; one from the
	// next revision works.
	if _, err := s.Watch(context.Background(), last); !errors.Is(err, orchestrator.ErrCompacted) {
		t.Errorf("Watch(%d) after reopening: got %v, want ErrCompacted", last, err)
	}
	events := watch(t, s, last+1)
	writeN(t, s, "u", 1)
	if e := next(t, events); e.Revision != last+1 {
		t.Errorf("first event after reopening: %s, want revision %d", describe(e), last+1)
	}
}

func testReopenAfterRollback(t *testing.T, open func(t *testing.T) orchestrator.Store) {
	s := open(t)
	writeN(t, s, "t", 1)
	err := s.Update(context.Background(), "test", func(tx orchestrator.Tx) error {
		if err := tx.CreateTask(task("lost", "web", "")); err != nil {
			return err
		}
		return errTest
	})
	wantErr(t, "Update", err, errTest)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t)
	defer s.Close()
	if _, err := getTask(t, s, "lost"); !errors.Is(err, orchestrator.ErrNotFound) {
		t.Errorf("task of a failed transaction after reopening: got %v, want ErrNotFound", err)
	}
	if got := revision(t, s); got != 1 {
		t.Errorf("revision after reopening = %d, want 1", got)
	}
}

func testReopenAfterDelete(t *testing.T, open func(t *testing.T) orchestrator.Store) {
	s := open(t)
	update(t, s, func(tx orchestrator.Tx) error {
		return errors.Join(tx.CreateService(service("web")), tx.CreateTask(task("t1", "web", "n1")), tx.CreateNode(node("n1")))
	})
	update(t, s, func(tx orchestrator.Tx) error {
		return errors.Join(tx.DeleteService("web", 0), tx.DeleteTask("t1", 0), tx.DeleteNode("n1", 0))
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t)
	defer s.Close()
	err := s.View(context.Background(), func(tx orchestrator.ReadTx) error {
		for range tx.Services() {
			t.Error("a deleted service is back")
		}
		for range tx.Tasks() {
			t.Error("a deleted task is back")
		}
		for range tx.TasksByNode("n1") {
			t.Error("a deleted task is back in the node index")
		}
		for range tx.Nodes() {
			t.Error("a deleted node is back")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := revision(t, s); got != 2 {
		t.Errorf("revision after reopening = %d, want 2", got)
	}
}
