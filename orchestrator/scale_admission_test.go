package orchestrator_test

import (
	"context"
	"errors"
	"testing"

	"github.com/opendao/dao"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/policy"
)

// TestScaleServiceIsAdmitted: ScaleService took a billion replicas, which the orchestrator
// then died allocating slots for, and went past the operator's policy.MaxReplicas.
func TestScaleServiceIsAdmitted(t *testing.T) {
	ctx := context.Background()
	store, err := orchestrator.NewMemoryStore()
	if err != nil {
		t.Fatal(err)
	}
	o, err := orchestrator.New(store, orchestrator.WithAdmission(policy.MaxReplicas(5)))
	if err != nil {
		t.Fatal(err)
	}
	spec := dao.ServiceSpec{Name: "web", Replicas: 2, Container: dao.ContainerSpec{Image: "registry.example.com/web:1"}}
	if _, err := o.CreateService(ctx, spec); err != nil {
		t.Fatal(err)
	}
	spec.Replicas = 6
	if _, err := o.CreateService(ctx, spec); !errors.Is(err, policy.ErrNotAdmitted) {
		t.Errorf("CreateService(6 replicas) = %v, want policy.ErrNotAdmitted", err)
	}
	if _, err := o.ScaleService(ctx, "web", 6); !errors.Is(err, policy.ErrNotAdmitted) {
		t.Errorf("ScaleService(6) = %v, want policy.ErrNotAdmitted", err)
	}
	for _, n := range []int{1_000_000_000, dao.MaxReplicas + 1} {
		_, err := o.ScaleService(ctx, "web", n)
		var verr *dao.ValidationError
		if !errors.As(err, &verr) || !verr.Has("replicas") {
			t.Errorf("ScaleService(%d) = %v, want a validation error of replicas", n, err)
		}
	}
	if s, err := o.ScaleService(ctx, "web", 5); err != nil || s.Spec.Replicas != 5 {
		t.Errorf("ScaleService(5) = %+v, %v", s, err)
	}
}
