package remote

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// TestResumerPolicy checks the resume policy of the fetch engine: progress resumes at
// once, an answer without progress (or cut as too slow, whatever it brought) counts, and
// MaxAttempts of those in a row give the endpoint up.
func TestResumerPolicy(t *testing.T) {
	t.Parallel()
	c, err := NewClient(WithRetry(RetryPolicy{MaxAttempts: 3, MinDelay: time.Microsecond, MaxDelay: time.Microsecond, MaxRetryAfter: time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	slow := &errTooSlow{limit: SpeedLimit{BytesPerSecond: 1 << 10, Period: time.Second}}
	r := resumer{c: c}
	for i, step := range []struct {
		progressed bool
		err        error
		giveUp     bool
	}{
		{false, io.ErrUnexpectedEOF, false}, // 1
		{false, io.ErrUnexpectedEOF, false}, // 2
		{true, io.ErrUnexpectedEOF, false},  // progress: back to 0
		{false, io.ErrUnexpectedEOF, false}, // 1
		{true, slow, false},                 // too slow counts whatever it brought: 2
		{false, io.ErrUnexpectedEOF, true},  // 3: given up
	} {
		err := r.broke(ctx, "h", 10, step.progressed, step.err)
		var gu *givenUp
		if got := errors.As(err, &gu); got != step.giveUp {
			t.Fatalf("step %d: broke = %v, give up %v, want %v", i, err, got, step.giveUp)
		}
		if step.giveUp && !errors.Is(err, step.err) {
			t.Errorf("step %d: %v does not wrap %v", i, err, step.err)
		}
		if !step.giveUp && err != nil {
			t.Errorf("step %d: %v, want resume", i, err)
		}
	}
	r.reset()
	if err := r.broke(ctx, "h", 0, false, io.ErrUnexpectedEOF); err != nil {
		t.Errorf("after reset: %v, want resume", err)
	}
}
