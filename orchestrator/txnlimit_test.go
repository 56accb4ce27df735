package orchestrator_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/opendao/dao/orchestrator"
)

// limitedStore is a memory store that takes at most limit objects in a transaction, as an
// EtcdStore does (far fewer, to cross the limit often), and counts what it refused.
type limitedStore struct {
	*orchestrator.MemoryStore
	limit   int
	refused atomic.Int64
	most    atomic.Int64
}

func (s *limitedStore) TxnLimit() int { return s.limit }

func (s *limitedStore) Update(ctx context.Context, cause string, fn func(tx orchestrator.Tx) error) error {
	return s.MemoryStore.Update(ctx, cause, func(tx orchestrator.Tx) error {
		c := &countingTx{Tx: tx}
		if err := fn(c); err != nil {
			return err
		}
		if c.n > s.limit {
			s.refused.Add(1)
			return fmt.Errorf("%w: %d writes (%s)", orchestrator.ErrTxnTooLarge, c.n, cause)
		}
		for cur := s.most.Load(); int64(c.n) > cur && !s.most.CompareAndSwap(cur, int64(c.n)); cur = s.most.Load() {
		}
		return nil
	})
}

// countingTx counts the writes of a transaction (an object written twice counts twice:
// a bound, as the limit is one on objects).
type countingTx struct {
	orchestrator.Tx
	n int
}

func (c *countingTx) CreateService(s *orchestrator.Service) error {
	c.n++
	return c.Tx.CreateService(s)
}
func (c *countingTx) UpdateService(s *orchestrator.Service) error {
	c.n++
	return c.Tx.UpdateService(s)
}
func (c *countingTx) DeleteService(id string, r uint64) error {
	c.n++
	return c.Tx.DeleteService(id, r)
}
func (c *countingTx) CreateTask(t *orchestrator.Task) error { c.n++; return c.Tx.CreateTask(t) }
func (c *countingTx) UpdateTask(t *orchestrator.Task) error { c.n++; return c.Tx.UpdateTask(t) }
func (c *countingTx) DeleteTask(id string, r uint64) error  { c.n++; return c.Tx.DeleteTask(id, r) }
func (c *countingTx) CreateNode(n *orchestrator.Node) error { c.n++; return c.Tx.CreateNode(n) }
func (c *countingTx) UpdateNode(n *orchestrator.Node) error { c.n++; return c.Tx.UpdateNode(n) }
func (c *countingTx) DeleteNode(id string, r uint64) error  { c.n++; return c.Tx.DeleteNode(id, r) }

// The loops write what they decide in transactions a limited store takes: a service of
// many times the limit is created, placed, run, scaled down, moved off a lost node and
// removed, and no transaction is ever refused.
func TestLoopsKeepToTheStoresTransactionLimit(t *testing.T) {
	mem, err := orchestrator.NewMemoryStore()
	if err != nil {
		t.Fatal(err)
	}
	store := &limitedStore{MemoryStore: mem, limit: 16}
	s := newSimWith(t, simConfig{nodes: 8, store: store})
	const n = 150
	victim := s.runThenLoseANode(n)
	if _, err := s.o.ScaleService(s.ctx, "web", 30); err != nil {
		t.Fatal(err)
	}
	s.waitFor("30 running", func() bool { return slotsCovered(s.running("web"), 30) })
	if err := s.o.RemoveService(s.ctx, "web"); err != nil {
		t.Fatal(err)
	}
	s.waitFor("every task ended", func() bool {
		for _, tk := range s.tasks(orchestrator.TaskFilter{}) {
			if !tk.Status.State.Terminal() && tk.NodeID != victim.ID() {
				return false
			}
		}
		return true
	})
	if r := store.refused.Load(); r != 0 {
		t.Errorf("%d transactions refused as too large", r)
	}
	if m := store.most.Load(); m > int64(store.limit) || m < int64(store.limit)/2 {
		t.Errorf("the largest transaction wrote %d objects, want close to the limit %d", m, store.limit)
	}
}
