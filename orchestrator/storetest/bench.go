package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/opendao/dao"
	"github.com/opendao/dao/orchestrator"
)

// The benchmarks measure stores the same way. Each operation is one task, so ns/op is the
// cost of one task, whatever the batch; each also reports the time of one transaction of
// batch tasks, as ms/tx.

// benchTask is a task as a reconciler creates it: a spec with an image, environment,
// labels and resources, waiting for a node.
func benchTask(i int) *orchestrator.Task {
	return &orchestrator.Task{Task: dao.Task{
		ID:             fmt.Sprintf("web.%d", i),
		ServiceID:      "web",
		ServiceVersion: 1,
		Slot:           i + 1,
		Spec: dao.ContainerSpec{
			Image:     "registry.example.com/web:1.0",
			Env:       []string{"MODE=production", "PORT=8080"},
			Labels:    map[string]string{"app": "web"},
			Resources: dao.Resources{MilliCPU: 100, Memory: 64 * dao.MiB},
		},
		DesiredState: dao.TaskRunning,
		Status:       dao.TaskStatus{State: dao.TaskPending, Message: "created"},
	}}
}

// createTasks creates tasks from up to n, in transactions of batch.
func createTasks(b *testing.B, s orchestrator.Store, from, n, batch int) {
	ctx := context.Background()
	for start := from; start < from+n; start += batch {
		end := min(start+batch, from+n)
		err := s.Update(ctx, "benchmark", func(tx orchestrator.Tx) error {
			for i := start; i < end; i++ {
				if err := tx.CreateTask(benchTask(i)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func reportPerTx(b *testing.B, batch int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)*float64(batch)/1e6, "ms/tx")
}

// BenchCreateTasks measures creating tasks, in transactions of batch tasks, in the store.
func BenchCreateTasks(b *testing.B, s orchestrator.Store, batch int) {
	b.ReportAllocs()
	b.ResetTimer()
	createTasks(b, s, 0, b.N, batch)
	b.StopTimer()
	reportPerTx(b, batch)
}

// BenchUpdateTasks measures updating tasks as a scheduler places them (node and status),
// in transactions of batch tasks, each read and written in the transaction. The tasks are
// created first, untimed.
func BenchUpdateTasks(b *testing.B, s orchestrator.Store, batch int) {
	createTasks(b, s, 0, b.N, 10_000)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for start := 0; start < b.N; start += batch {
		end := min(start+batch, b.N)
		err := s.Update(ctx, "benchmark", func(tx orchestrator.Tx) error {
			for i := start; i < end; i++ {
				t, err := tx.Task(fmt.Sprintf("web.%d", i))
				if err != nil {
					return err
				}
				t.NodeID = fmt.Sprintf("node-%d", i%5000)
				t.Status.State = dao.TaskAssigned
				t.Status.Message = "assigned"
				if err := tx.UpdateTask(&t); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportPerTx(b, batch)
}

// BenchGetTask measures reading one task by ID, in Views of 1,000 reads.
func BenchGetTask(b *testing.B, s orchestrator.Store) {
	const n = 10_000
	createTasks(b, s, 0, n, n)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("web.%d", i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		err := s.View(ctx, func(tx orchestrator.ReadTx) error {
			for i := 0; i < 1000 && done < b.N; i++ {
				if _, err := tx.Task(ids[done%n]); err != nil {
					return err
				}
				done++
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchListTasks measures iterating over the tasks of one node out of 100 (ns/op is per
// task yielded).
func BenchListTasks(b *testing.B, s orchestrator.Store) {
	const n = 100_000
	createTasks(b, s, 0, n, 10_000)
	ctx := context.Background()
	err := s.Update(ctx, "benchmark", func(tx orchestrator.Tx) error {
		for t := range tx.TasksByNode("") {
			t.NodeID = fmt.Sprintf("node-%d", t.Slot%100)
			if err := tx.UpdateTask(&t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		err := s.View(ctx, func(tx orchestrator.ReadTx) error {
			for range tx.TasksByNode("node-7") {
				done++
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchWatch measures delivering events: tasks are created in transactions of batch while
// one watcher takes every event (ns/op is per event, from the first write to the last
// event taken).
func BenchWatch(b *testing.B, s orchestrator.Store, batch int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := s.Watch(ctx, 0)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for range b.N {
			if e := <-events; e.Err != nil {
				done <- e.Err
				return
			}
		}
		done <- nil
	}()
	createTasks(b, s, 0, b.N, batch)
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
