package edge_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/opendao/dao"
	"github.com/opendao/dao/edge"
)

// TestSentinelsHaveErrdefsClasses: every sentinel of edge is of the errdefs class its doc
// names, and of no other of those asked here.
func TestSentinelsHaveErrdefsClasses(t *testing.T) {
	t.Parallel()
	classes := map[string]func(error) bool{
		"NotFound":           errdefs.IsNotFound,
		"AlreadyExists":      errdefs.IsAlreadyExists,
		"FailedPrecondition": errdefs.IsFailedPrecondition,
		"PermissionDenied":   errdefs.IsPermissionDenied,
		"Conflict":           errdefs.IsConflict,
		"ResourceExhausted":  errdefs.IsResourceExhausted,
		"InvalidArgument":    errdefs.IsInvalidArgument,
		"Unavailable":        errdefs.IsUnavailable,
	}
	for _, tc := range []struct {
		err   error
		class string
	}{
		{edge.ErrNotFound, "NotFound"},
		{edge.ErrAlreadyExists, "AlreadyExists"},
		{edge.ErrImageNotFound, "NotFound"},
		{edge.ErrRunning, "FailedPrecondition"},
		{edge.ErrNotOwned, "PermissionDenied"},
		{edge.ErrClosed, "FailedPrecondition"},
		{edge.ErrStaleRevision, "Conflict"},
		{edge.ErrNoNetwork, "FailedPrecondition"},
		{edge.ErrSlowSubscriber, "ResourceExhausted"},
		{edge.ErrInvalidOption, "InvalidArgument"},
	} {
		if !strings.HasPrefix(tc.err.Error(), "edge: ") {
			t.Errorf("%q: no \"edge: \" prefix", tc.err)
		}
		for name, is := range classes {
			if got, want := is(tc.err), name == tc.class; got != want {
				t.Errorf("errdefs.Is%s(%q) = %v, want %v", name, tc.err, got, want)
			}
		}
	}
	if !errors.Is(edge.ErrInvalidOption, dao.ErrInvalid) {
		t.Errorf("ErrInvalidOption is not dao.ErrInvalid")
	}
	if errors.Is(edge.ErrNotFound, edge.ErrImageNotFound) || errors.Is(edge.ErrImageNotFound, edge.ErrNotFound) {
		t.Errorf("ErrNotFound and ErrImageNotFound match each other")
	}
}

// TestErrorsOnARealContainerd: what a Runtime returns for a container that is missing, one
// that exists, one that runs and an image that is missing is of the errdefs class a caller
// of containerd expects, and still edge's own sentinel.
func TestErrorsOnARealContainerd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const missing = "no-such-container"
	_, statusErr := e.rt.Status(e.ctx, missing)
	removeErr := e.rt.Remove(e.ctx, missing)
	_, logsErr := e.rt.Logs(e.ctx, missing, edge.LogOptions{})
	_, stopErr := e.rt.Stop(e.ctx, missing)
	_, startErr := e.rt.Start(e.ctx, missing)
	_, waitErr := e.rt.Wait(e.ctx, missing)
	for name, err := range map[string]error{"Status": statusErr, "Remove": removeErr, "Logs": logsErr,
		"Stop": stopErr, "Start": startErr, "Wait": waitErr} {
		if !errdefs.IsNotFound(err) || !errors.Is(err, edge.ErrNotFound) {
			t.Errorf("%s of a missing container: %v, want errdefs.IsNotFound and edge.ErrNotFound", name, err)
		}
	}

	err := e.rt.Create(e.ctx, "noimage", dao.ContainerSpec{Image: "example.com/not/here:1"})
	if !errdefs.IsNotFound(err) || !errors.Is(err, edge.ErrImageNotFound) {
		t.Errorf("Create of a missing image: %v, want errdefs.IsNotFound and edge.ErrImageNotFound", err)
	}

	id := uniqueID("classes", 0)
	spec := dao.ContainerSpec{Image: e.app, StopGracePeriod: dao.Duration(time.Second)}
	e.run(id, spec)
	err = e.rt.Create(e.ctx, id, spec)
	if !errdefs.IsAlreadyExists(err) || !errors.Is(err, edge.ErrAlreadyExists) {
		t.Errorf("Create of an existing container: %v, want errdefs.IsAlreadyExists and edge.ErrAlreadyExists", err)
	}
	err = e.rt.Remove(e.ctx, id)
	if !errdefs.IsFailedPrecondition(err) || !errors.Is(err, edge.ErrRunning) {
		t.Errorf("Remove of a running container: %v, want errdefs.IsFailedPrecondition and edge.ErrRunning", err)
	}
	if err := e.rt.Create(e.ctx, "bad id!", spec); !errdefs.IsInvalidArgument(err) || !errors.Is(err, dao.ErrInvalid) {
		t.Errorf("Create with an invalid ID: %v, want errdefs.IsInvalidArgument and dao.ErrInvalid", err)
	}
}
