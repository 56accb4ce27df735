package remote

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// TestWatchdogCountsOnlyTimeInRead reads a body that arrives at once, pausing three periods
// between reads (a reader busy elsewhere, such as writing into containerd): it is not cut.
// A body that trickles while it is read is.
func TestWatchdogCountsOnlyTimeInRead(t *testing.T) {
	limit := SpeedLimit{BytesPerSecond: 1 << 20, Period: 50 * time.Millisecond}

	pr, pw := io.Pipe()
	go func() {
		for range 5 {
			pw.Write(make([]byte, 64<<10))
		}
		pw.Close()
	}()
	_, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := watch(pr, limit, cancel)
	buf := make([]byte, 64<<10)
	for {
		time.Sleep(3 * limit.Period)
		if _, err := io.ReadFull(b, buf); err != nil {
			if err != io.EOF {
				t.Fatalf("Read of a slow reader: %v, want no cut", err)
			}
			break
		}
	}

	pr, pw = io.Pipe()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
				pw.Write([]byte{1})
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	b = watch(pr, limit, func() { cancel(); pr.CloseWithError(ctx.Err()) })
	start := time.Now()
	_, err := io.Copy(io.Discard, b)
	var slow *errTooSlow
	if !errors.As(err, &slow) || slow.got == 0 {
		t.Errorf("Read of a trickle: %v, want it cut as too slow", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("the trickle was cut after %v, want about %v", took, limit.Period)
	}
}
