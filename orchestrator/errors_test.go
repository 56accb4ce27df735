package orchestrator_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/opendao/dao"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/orchestrator/simnode"
)

// Every sentinel is of the errdefs class its doc names, and of no other that matters to a
// caller deciding what to do.
func TestSentinelClasses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err   error
		class func(error) bool
		name  string
	}{
		{orchestrator.ErrNotFound, errdefs.IsNotFound, "NotFound"},
		{orchestrator.ErrExists, errdefs.IsAlreadyExists, "AlreadyExists"},
		{orchestrator.ErrConflict, errdefs.IsConflict, "Conflict"},
		{orchestrator.ErrCompacted, errdefs.IsOutOfRange, "OutOfRange"},
		{orchestrator.ErrSlowWatcher, errdefs.IsResourceExhausted, "ResourceExhausted"},
		{orchestrator.ErrCorrupt, errdefs.IsDataLoss, "DataLoss"},
		{orchestrator.ErrClosed, errdefs.IsFailedPrecondition, "FailedPrecondition"},
		{orchestrator.ErrAlreadyRunning, errdefs.IsFailedPrecondition, "FailedPrecondition"},
		{orchestrator.ErrNoPreviousSpec, errdefs.IsFailedPrecondition, "FailedPrecondition"},
		{orchestrator.ErrUpdateFailed, errdefs.IsAborted, "Aborted"},
		{orchestrator.ErrRolledBack, errdefs.IsAborted, "Aborted"},
		{orchestrator.ErrUpdatePaused, errdefs.IsFailedPrecondition, "FailedPrecondition"},
		{simnode.ErrStaleRevision, errdefs.IsConflict, "Conflict"},
		{simnode.ErrUnreachable, errdefs.IsUnavailable, "Unavailable"},
		{simnode.ErrUnknownTask, errdefs.IsNotFound, "NotFound"},
		{simnode.ErrClosed, errdefs.IsFailedPrecondition, "FailedPrecondition"},
	}
	for _, tt := range tests {
		if !tt.class(tt.err) {
			t.Errorf("%v: not of class %s", tt.err, tt.name)
		}
		if errdefs.IsInvalidArgument(tt.err) || errors.Is(tt.err, dao.ErrInvalid) {
			t.Errorf("%v: of class InvalidArgument", tt.err)
		}
	}
	// Two packages' sentinels of one class do not match each other.
	if errors.Is(orchestrator.ErrNotFound, simnode.ErrUnknownTask) || errors.Is(orchestrator.ErrClosed, simnode.ErrClosed) {
		t.Error("orchestrator's and simnode's sentinels match each other")
	}
}

// A missing service is errdefs.IsNotFound (and orchestrator.ErrNotFound) from every API
// call that names one, over both stores.
func TestMissingServiceIsNotFound(t *testing.T) {
	t.Parallel()
	stores := map[string]func(t *testing.T) orchestrator.Store{
		"memory": func(t *testing.T) orchestrator.Store {
			s, err := orchestrator.NewMemoryStore()
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"bbolt": func(t *testing.T) orchestrator.Store {
			s, err := orchestrator.OpenBoltStore(filepath.Join(t.TempDir(), "state.db"))
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			store := open(t)
			defer store.Close()
			o, err := orchestrator.New(store)
			if err != nil {
				t.Fatal(err)
			}
			spec := dao.ServiceSpec{Name: "nope", Replicas: 1, Container: dao.ContainerSpec{Image: "example.com/web:1"}}
			calls := map[string]func() error{
				"Service":       func() error { _, err := o.Service(ctx, "nope"); return err },
				"Deploy":        func() error { return o.Deploy(ctx, "nope", "example.com/web:2") },
				"RemoveService": func() error { return o.RemoveService(ctx, "nope") },
				"UpdateService": func() error { _, err := o.UpdateService(ctx, "nope", spec); return err },
				"ScaleService":  func() error { _, err := o.ScaleService(ctx, "nope", 2); return err },
				"RollbackService": func() error {
					_, err := o.RollbackService(ctx, "nope")
					return err
				},
				"Task":       func() error { _, err := o.Task(ctx, "nope.1"); return err },
				"DrainNode":  func() error { return o.DrainNode(ctx, "n0") },
				"RemoveNode": func() error { return o.RemoveNode(ctx, "n0") },
				"Heartbeat":  func() error { return o.Heartbeat("n0") },
				"Disconnect": func() error { return o.Disconnect("n0", "connection closed") },
			}
			for call, f := range calls {
				err := f()
				if !errdefs.IsNotFound(err) || !errors.Is(err, orchestrator.ErrNotFound) {
					t.Errorf("%s of a missing object: %v, want errdefs.IsNotFound and ErrNotFound", call, err)
				}
			}
		})
	}
}
