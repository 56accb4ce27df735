package orchestrator_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/testutil/fixture"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/orchestrator/storetest"
)

// Benchmarks of the stores:
//
//	go test -run '^$' -bench 'Store' -benchmem ./orchestrator/
//
// Each operation is one task (see package storetest).

func benchMemoryStore(b *testing.B) orchestrator.Store {
	s, err := orchestrator.NewMemoryStore()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func benchBoltStore(b *testing.B) orchestrator.Store {
	s, err := orchestrator.OpenBoltStore(filepath.Join(b.TempDir(), "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func BenchmarkMemoryStoreCreateTasks(b *testing.B) {
	storetest.BenchCreateTasks(b, benchMemoryStore(b), 10_000)
}

func BenchmarkBoltStoreCreateTasks(b *testing.B) {
	storetest.BenchCreateTasks(b, benchBoltStore(b), 10_000)
}

func BenchmarkMemoryStoreUpdateTasks(b *testing.B) {
	storetest.BenchUpdateTasks(b, benchMemoryStore(b), 10_000)
}

func BenchmarkBoltStoreUpdateTasks(b *testing.B) {
	storetest.BenchUpdateTasks(b, benchBoltStore(b), 10_000)
}

func BenchmarkBoltStoreCreateTasksOneByOne(b *testing.B) {
	storetest.BenchCreateTasks(b, benchBoltStore(b), 1)
}

func BenchmarkMemoryStoreGetTask(b *testing.B) {
	storetest.BenchGetTask(b, benchMemoryStore(b))
}

func BenchmarkMemoryStoreListTasksByNode(b *testing.B) {
	storetest.BenchListTasks(b, benchMemoryStore(b))
}

func BenchmarkMemoryStoreWatch(b *testing.B) {
	storetest.BenchWatch(b, benchMemoryStore(b), 10_000)
}

// BenchmarkMemoryStoreMillionTasks measures the memory a million tasks take in the memory
// store, tasks, indexes and history included: B/task after creating them (in transactions
// of 10,000), and placed-B/task after placing each on one of 5,000 nodes (an update, whose
// old version the history keeps for a while). Run it once:
//
//	go test -run '^$' -bench MillionTasks -benchtime 1x ./orchestrator/
func BenchmarkMemoryStoreMillionTasks(b *testing.B) {
	const n, batch = 1_000_000, 10_000
	ctx := context.Background()
	for range b.N {
		before := fixture.HeapInUse()
		s, err := orchestrator.NewMemoryStore()
		if err != nil {
			b.Fatal(err)
		}
		for start := 0; start < n; start += batch {
			err := s.Update(ctx, "benchmark", func(tx orchestrator.Tx) error {
				for i := start; i < start+batch; i++ {
					t := &orchestrator.Task{Task: dao.Task{
						ID: fmt.Sprintf("web-%07d", i), ServiceID: "web", ServiceVersion: 1, Slot: i + 1,
						Spec: dao.ContainerSpec{
							Image:     "registry.example.com/web:1.0",
							Env:       []string{"MODE=production", "PORT=8080"},
							Labels:    map[string]string{"app": "web"},
							Resources: dao.Resources{MilliCPU: 100, Memory: 64 * dao.MiB},
						},
						DesiredState: dao.TaskRunning,
						Status:       dao.TaskStatus{State: dao.TaskPending},
					}}
					if err := tx.CreateTask(t); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		created := fixture.HeapInUse()
		for start := 0; start < n; start += batch {
			err := s.Update(ctx, "benchmark", func(tx orchestrator.Tx) error {
				for i := start; i < start+batch; i++ {
					t, err := tx.Task(fmt.Sprintf("web-%07d", i))
					if err != nil {
						return err
					}
					t.NodeID = fmt.Sprintf("node-%04d", i%5000)
					t.Status.State = dao.TaskAssigned
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
		placed := fixture.HeapInUse()
		b.ReportMetric(float64(created-before)/n, "B/task")
		b.ReportMetric(float64(placed-before)/n, "placed-B/task")
		runtime.KeepAlive(s)
		s.Close()
	}
}

// heapInUse returns the bytes of live heap objects, after a full collection.
