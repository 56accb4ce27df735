package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/opendao/dao"
)

// conflictingStore refuses the next conflicts Updates with ErrConflict, as a store shared
// with another replica does when that replica wrote the same objects first.
type conflictingStore struct {
	*MemoryStore
	conflicts int
	updates   int
}

func (s *conflictingStore) Update(ctx context.Context, cause string, fn func(Tx) error) error {
	s.updates++
	if s.conflicts > 0 {
		s.conflicts--
		return fmt.Errorf("test: another replica wrote first: %w", ErrConflict)
	}
	return s.MemoryStore.Update(ctx, cause, fn)
}

// API calls whose transaction reads what it writes run it again on ErrConflict (a few
// times), so a write of another replica between their read and their commit does not fail
// them; past the tries, the conflict is the caller's.
func TestAPICallsTryAgainOnConflict(t *testing.T) {
	ctx := context.Background()
	st := &conflictingStore{MemoryStore: newTestStore(t)}
	err := st.MemoryStore.Update(ctx, "test", func(tx Tx) error {
		if err := tx.CreateNode(&Node{Node: dao.Node{ID: "n1"}}); err != nil {
			return err
		}
		return tx.CreateService(&Service{ID: "web", Spec: dao.ServiceSpec{Name: "web", Replicas: 1,
			Container: dao.ContainerSpec{Image: "example.com/web:1"}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	o, err := New(st)
	if err != nil {
		t.Fatal(err)
	}
	st.conflicts = apiTries - 1
	svc, err := o.ScaleService(ctx, "web", 3)
	if err != nil || svc.Spec.Replicas != 3 {
		t.Fatalf("scale after %d conflicts: %v, %+v", apiTries-1, err, svc)
	}
	if st.updates != apiTries {
		t.Errorf("scale ran %d transactions, want %d", st.updates, apiTries)
	}
	st.conflicts, st.updates = apiTries, 0
	if err := o.DrainNode(ctx, "n1"); !errors.Is(err, ErrConflict) {
		t.Errorf("drain after %d conflicts: %v, want ErrConflict", apiTries, err)
	}
	if st.updates != apiTries {
		t.Errorf("drain ran %d transactions, want %d", st.updates, apiTries)
	}
	st.conflicts, st.updates = 1, 0
	if err := o.RemoveNode(ctx, "n1"); err != nil {
		t.Fatalf("remove after a conflict: %v", err)
	}
}
