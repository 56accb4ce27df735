package orchestrator_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"

	"github.com/opendao/dao"
	"github.com/opendao/dao/orchestrator"
)

func ExampleNewMemoryStore() {
	ctx := context.Background()
	s, err := orchestrator.NewMemoryStore()
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	// A service and its two tasks, in one transaction: one revision.
	web := &orchestrator.Service{ID: "web", Spec: dao.ServiceSpec{
		Name: "web", Replicas: 2, Container: dao.ContainerSpec{Image: "registry.example.com/web:1.0"},
	}}
	err = s.Update(ctx, "api: create web", func(tx orchestrator.Tx) error {
		if err := tx.CreateService(web); err != nil {
			return err
		}
		for slot := 1; slot <= web.Spec.Replicas; slot++ {
			t := &orchestrator.Task{Task: dao.Task{
				ID: fmt.Sprintf("web.%d", slot), ServiceID: "web", ServiceVersion: web.Version, Slot: slot,
				Spec: web.Spec.Container, DesiredState: dao.TaskRunning,
			}}
			if err := tx.CreateTask(t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("service", web.ID, "version", web.Version, "at revision", web.Revision)

	// Read, decide, write: a write from a stale read fails with ErrConflict.
	var t1 orchestrator.Task
	err = s.View(ctx, func(tx orchestrator.ReadTx) error {
		t1, err = tx.Task("web.1")
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
	stale := t1
	t1.NodeID = "node-1"
	err = s.Update(ctx, "scheduler", func(tx orchestrator.Tx) error { return tx.UpdateTask(&t1) })
	fmt.Println("placed web.1 at revision", t1.Revision, err)
	stale.NodeID = "node-2"
	err = s.Update(ctx, "scheduler", func(tx orchestrator.Tx) error { return tx.UpdateTask(&stale) })
	fmt.Println("stale write:", errors.Is(err, orchestrator.ErrConflict))

	// Indexes: the tasks of a node, and those on no node.
	err = s.View(ctx, func(tx orchestrator.ReadTx) error {
		for t := range tx.TasksByNode("node-1") {
			fmt.Println("on node-1:", t.ID)
		}
		for t := range tx.TasksByNode("") {
			fmt.Println("to schedule:", t.ID)
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// service web version 1 at revision 1
	// placed web.1 at revision 2 <nil>
	// stale write: true
	// on node-1: web.1
	// to schedule: web.2
}

func ExampleMemoryStore_Watch() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := orchestrator.NewMemoryStore()
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	create := func(id string) {
		err := s.Update(ctx, "reconciler", func(tx orchestrator.Tx) error {
			return tx.CreateTask(&orchestrator.Task{Task: dao.Task{ID: id, ServiceID: "web"}})
		})
		if err != nil {
			log.Fatal(err)
		}
	}
	create("web.1") // revision 1
	create("web.2") // revision 2

	// From revision 2: the history replays web.2's creation, then live events follow.
	events, err := s.Watch(ctx, 2, orchestrator.WatchTypes(orchestrator.TaskObject))
	if err != nil {
		log.Fatal(err)
	}
	err = s.Update(ctx, "scheduler", func(tx orchestrator.Tx) error {
		t, err := tx.Task("web.1")
		if err != nil {
			return err
		}
		t.NodeID = "node-1"
		return tx.UpdateTask(&t)
	})
	if err != nil {
		log.Fatal(err)
	}
	for range 2 {
		e := <-events
		if e.Err != nil {
			log.Fatal(e.Err) // ErrSlowWatcher or ErrClosed: list again, watch again
		}
		fmt.Printf("%d %s %s %s by %s", e.Revision, e.Kind, e.Type, e.Task.ID, e.Cause)
		if e.PrevTask != nil {
			fmt.Printf(": node %q -> %q", e.PrevTask.NodeID, e.Task.NodeID)
		}
		fmt.Println()
	}

	// A revision older than the history fails.
	s2, _ := orchestrator.NewMemoryStore(orchestrator.WithHistory(1))
	defer s2.Close()
	for i := range 3 {
		_ = s2.Update(ctx, "test", func(tx orchestrator.Tx) error {
			return tx.CreateNode(&orchestrator.Node{Node: dao.Node{ID: fmt.Sprint("n", i)}})
		})
	}
	_, err = s2.Watch(ctx, 1)
	fmt.Println(err)
	// Output:
	// 2 created task web.2 by reconciler
	// 3 updated task web.1 by scheduler: node "" -> "node-1"
	// orchestrator: revision compacted
}

func ExampleOpenBoltStore() {
	dir, err := os.MkdirTemp("", "dao-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "state.db")
	ctx := context.Background()

	s, err := orchestrator.OpenBoltStore(path)
	if err != nil {
		log.Fatal(err)
	}
	err = s.Update(ctx, "api", func(tx orchestrator.Tx) error {
		return errors.Join(
			tx.CreateNode(&orchestrator.Node{Node: dao.Node{ID: "node-1"}}),
			tx.CreateNode(&orchestrator.Node{Node: dao.Node{ID: "node-2"}}))
	})
	if err != nil {
		log.Fatal(err)
	}
	s.Close()

	// After a restart of the program: the data and the revision are back.
	s, err = orchestrator.OpenBoltStore(path)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	err = s.View(ctx, func(tx orchestrator.ReadTx) error {
		var ids []string
		for n := range tx.Nodes() {
			ids = append(ids, n.ID)
		}
		slices.Sort(ids)
		fmt.Println("revision", tx.Revision(), "nodes", ids)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// revision 1 nodes [node-1 node-2]
}

// A loop that reads many tasks and only reads them can skip the deep copies: with
// SharedReads, the tasks it gets share the store's specs. What it writes back is copied
// by UpdateTask as always.
func ExampleSharedReads() {
	ctx := context.Background()
	s, err := orchestrator.NewMemoryStore()
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	err = s.Update(ctx, "api: create tasks", func(tx orchestrator.Tx) error {
		for i := range 3 {
			t := &orchestrator.Task{Task: dao.Task{ID: fmt.Sprintf("web.%d", i+1), ServiceID: "web",
				Spec: dao.ContainerSpec{Image: "registry.example.com/web:1.0", Env: []string{"MODE=prod"}}, DesiredState: dao.TaskRunning}}
			if err := tx.CreateTask(t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Read, never write, what a shared read returns.
	err = s.Update(orchestrator.SharedReads(ctx), "scheduler: place", func(tx orchestrator.Tx) error {
		for t := range tx.TasksByNode("") {
			t.NodeID = "n1" // a field of the copy: fine
			if err := tx.UpdateTask(&t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	err = s.View(ctx, func(tx orchestrator.ReadTx) error {
		n := 0
		for t := range tx.TasksByNode("n1") {
			n++
			_ = t
		}
		fmt.Println(n, "tasks on n1")
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output: 3 tasks on n1
}
