package pipeline

import (
	"errors"
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/opendao/dao"
)

// TestOptionsRejectBadValues: each option refuses a value it does not accept with an error
// that names it and wraps ErrInvalidOption, dao.ErrInvalid and errdefs.ErrInvalidArgument.
func TestOptionsRejectBadValues(t *testing.T) {
	t.Parallel()
	check := func(err error, want string) {
		t.Helper()
		if err == nil || err.Error() != want {
			t.Errorf("got %v, want %s", err, want)
		}
		if !errors.Is(err, ErrInvalidOption) || !errors.Is(err, dao.ErrInvalid) || !errdefs.IsInvalidArgument(err) {
			t.Errorf("%v: not ErrInvalidOption, dao.ErrInvalid and errdefs.ErrInvalidArgument", err)
		}
	}
	for _, tc := range []struct {
		opt  Option
		want string
	}{
		{WithParallelism(0), "pipeline: invalid option: WithParallelism(0): must be at least 1"},
		{WithCacheDir("cache"), `pipeline: invalid option: WithCacheDir("cache"): must be an absolute path`},
		{WithPusher(nil), "pipeline: invalid option: WithPusher(nil): must not be nil"},
		{WithDeployer(nil), "pipeline: invalid option: WithDeployer(nil): must not be nil"},
		{WithStopGrace(-1), "pipeline: invalid option: WithStopGrace(-1ns): must be >= 0"},
		{WithLogLimit(0), "pipeline: invalid option: WithLogLimit(0): must be at least 1"},
		{WithScratchDir(""), `pipeline: invalid option: WithScratchDir(""): must be an absolute path`},
		{WithClock(nil), "pipeline: invalid option: WithClock(nil): must not be nil"},
	} {
		o := defaultOptions()
		check(tc.opt(&o), tc.want)
	}
	for _, tc := range []struct {
		opt  RunOption
		want string
	}{
		{WithWorkspace("ws"), `pipeline: invalid option: WithWorkspace("ws"): must be an absolute path`},
		{WithSecrets(map[string]string{"A-B": "x"}), `pipeline: invalid option: WithSecrets: secret name "A-B": must be a variable name`},
		{WithRunID("Run1"), `pipeline: invalid option: WithRunID("Run1"): must be 1-16 lowercase letters and digits`},
		{WithRunID(strings.Repeat("a", 17)), `pipeline: invalid option: WithRunID("aaaaaaaaaaaaaaaaa"): must be 1-16 lowercase letters and digits`},
	} {
		var o runOptions
		check(tc.opt(&o), tc.want)
	}
	_, err := NewRunner(nil)
	check(err, "pipeline: invalid option: NewRunner: the Runtime must not be nil")
	_, err = (&Runner{}).Run(t.Context(), nil)
	check(err, "pipeline: invalid option: Run: the Pipeline must not be nil")
	var ro runOptions
	if err := WithLogFunc(nil)(&ro); err != nil {
		t.Errorf("WithLogFunc(nil): %v, want nil (no live log)", err)
	}
}
