package pipeline

import (
	"errors"
	"testing"

	"github.com/containerd/errdefs"
)

type closer struct{ err error }

func (c closer) Close() error { return c.err }

// TestCloseAllSeesEveryError: closing several resources closes them all, and errors.Is
// finds the error of each that failed, in a text of one line.
func TestCloseAllSeesEveryError(t *testing.T) {
	t.Parallel()
	a, b := errors.New("a failed"), errors.New("b failed")
	err := closeAll([]closer{{a}, {nil}, {b}})
	if !errors.Is(err, a) || !errors.Is(err, b) {
		t.Errorf("closeAll = %v, want both errors", err)
	}
	if got, want := err.Error(), "a failed; b failed"; got != want {
		t.Errorf("text %q, want %q", got, want)
	}
	if err := closeAll([]closer{{nil}, {nil}}); err != nil {
		t.Errorf("closeAll of closers that succeed = %v", err)
	}
}

// TestSentinelClasses: the package's sentinels are of the errdefs classes their docs state.
func TestSentinelClasses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err error
		is  func(error) bool
	}{
		{ErrFailed, errdefs.IsAborted},
		{&RunError{}, errdefs.IsAborted},
		{ErrServiceNotReady, errdefs.IsUnavailable},
		{ErrNoNetwork, errdefs.IsFailedPrecondition},
		{ErrInvalidOption, errdefs.IsInvalidArgument},
	} {
		if !tc.is(tc.err) {
			t.Errorf("%v: not of its class", tc.err)
		}
		if errdefs.IsNotFound(tc.err) || errdefs.IsUnknown(tc.err) {
			t.Errorf("%v: of another class", tc.err)
		}
	}
	if !errors.Is(&RunError{}, ErrFailed) {
		t.Error("a *RunError is not ErrFailed")
	}
}
