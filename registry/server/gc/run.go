package gc

import (
	"context"
	"fmt"
	"time"
)

// Run collects st every interval until ctx is done, and returns then (with nil). Each
// collection's report, and its error, go to report if it is not nil; a collection that
// fails is tried again at the next interval. interval must be positive.
func Run(ctx context.Context, st Store, interval time.Duration, report func(Report, error), opts ...Option) error {
	if interval <= 0 {
		return fmt.Errorf("%w: Run: interval %v: must be positive", ErrInvalidOption, interval)
	}
	if _, err := newOptions(opts); err != nil {
		return err
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		rep, err := Collect(ctx, st, opts...)
		if ctx.Err() != nil {
			return nil
		}
		if report != nil {
			report(rep, err)
		}
	}
}
