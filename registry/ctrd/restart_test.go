package ctrd

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/containerd/errdefs"
)

// TestWhileRestarting calls again while containerd answers unavailable, and stops at the
// first other answer or when the context ends.
func TestWhileRestarting(t *testing.T) {
	t.Parallel()
	unavailable := fmt.Errorf("connection refused: %w", errdefs.ErrUnavailable)
	other := errors.New("not found")
	for _, tc := range []struct {
		name    string
		answers []error
		cancel  bool
		want    error
		calls   int
	}{
		{"success at once", []error{nil}, false, nil, 1},
		{"back after two refusals", []error{unavailable, unavailable, nil}, false, nil, 3},
		{"other error at once", []error{other}, false, other, 1},
		{"other error after a refusal", []error{unavailable, other}, false, other, 2},
		{"context ended", []error{unavailable, unavailable, unavailable}, true, unavailable, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				cancel()
			}
			calls := 0
			err := whileRestarting(ctx, func() error {
				err := tc.answers[min(calls, len(tc.answers)-1)]
				calls++
				return err
			})
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) || calls != tc.calls {
				t.Errorf("whileRestarting = %v after %d calls, want %v after %d", err, calls, tc.want, tc.calls)
			}
		})
	}
}
