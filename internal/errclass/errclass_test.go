package errclass_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/opendao/dao/internal/errclass"
)

func TestSentinelMatchesItsClassesOnly(t *testing.T) {
	invalid := errclass.New(errdefs.ErrInvalidArgument, "x: invalid")
	option := errclass.New(invalid, "x: invalid option")
	other := errclass.New(errdefs.ErrInvalidArgument, "y: invalid")
	err := fmt.Errorf("x: WithThing(-1): %w", option)
	if !errors.Is(err, option) || !errors.Is(err, invalid) || !errdefs.IsInvalidArgument(err) {
		t.Errorf("%v does not match its classes", err)
	}
	if errors.Is(err, other) || errdefs.IsNotFound(err) {
		t.Errorf("%v matches a sentinel it is not of", err)
	}
	if got := err.Error(); got != "x: WithThing(-1): x: invalid option" {
		t.Errorf("text %q", got)
	}
}
