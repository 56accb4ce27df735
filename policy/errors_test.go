package policy

import (
	"errors"
	"fmt"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/opendao/dao"
)

// TestSentinelClasses: every sentinel, and every typed error that matches one, is of the
// errdefs class its doc states, and of no other class of those tested.
func TestSentinelClasses(t *testing.T) {
	t.Parallel()
	classes := map[string]func(error) bool{
		"FailedPrecondition": errdefs.IsFailedPrecondition,
		"ResourceExhausted":  errdefs.IsResourceExhausted,
		"PermissionDenied":   errdefs.IsPermissionDenied,
		"InvalidArgument":    errdefs.IsInvalidArgument,
		"NotFound":           errdefs.IsNotFound,
		"Unavailable":        errdefs.IsUnavailable,
	}
	_, syntaxErr := ParseConstraint("node.labels.zone = a")
	unmet := &UnmetConstraint{reason: "zone != a"}
	tests := []struct {
		err      error
		sentinel error
		class    string
	}{
		{ErrNodeNotReady, ErrNodeNotReady, "FailedPrecondition"},
		{ErrNodePaused, ErrNodePaused, "FailedPrecondition"},
		{ErrNodeDraining, ErrNodeDraining, "FailedPrecondition"},
		{ErrPlatform, ErrPlatform, "FailedPrecondition"},
		{ErrRecentFailures, ErrRecentFailures, "FailedPrecondition"},
		{ErrInsufficientCPU, ErrInsufficientCPU, "ResourceExhausted"},
		{ErrInsufficientMemory, ErrInsufficientMemory, "ResourceExhausted"},
		{ErrInsufficientPids, ErrInsufficientPids, "ResourceExhausted"},
		{ErrHostPortInUse, ErrHostPortInUse, "ResourceExhausted"},
		{ErrMaxReplicasPerNode, ErrMaxReplicasPerNode, "ResourceExhausted"},
		{unmet, ErrConstraint, "FailedPrecondition"},
		{&PlacementError{TaskID: "t"}, ErrUnschedulable, "FailedPrecondition"},
		{&AdmissionError{}, ErrNotAdmitted, "PermissionDenied"},
		{syntaxErr, ErrSyntax, "InvalidArgument"},
		{fmt.Errorf("%w: window", ErrInvalidPolicy), ErrInvalidPolicy, "InvalidArgument"},
	}
	for _, tt := range tests {
		err := fmt.Errorf("wrapped: %w", tt.err)
		if !errors.Is(err, tt.sentinel) {
			t.Errorf("%v: errors.Is(err, %v) = false", err, tt.sentinel)
		}
		for name, is := range classes {
			if got, want := is(err), name == tt.class; got != want {
				t.Errorf("%v: errdefs.Is%s = %v, want %v", err, name, got, want)
			}
		}
		if got, want := errors.Is(err, dao.ErrInvalid), tt.class == "InvalidArgument"; got != want {
			t.Errorf("%v: errors.Is(err, dao.ErrInvalid) = %v, want %v", err, got, want)
		}
	}
	// Sentinels stay distinct from each other, even of one class.
	if errors.Is(ErrNodeNotReady, ErrNodePaused) || errors.Is(unmet, ErrUnschedulable) || errors.Is(ErrSyntax, ErrInvalidPolicy) {
		t.Error("a sentinel matches another of its class")
	}
}
