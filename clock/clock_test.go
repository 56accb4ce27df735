package clock_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opendao/dao/clock"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestManual(t *testing.T) {
	c := clock.NewManual(t0)
	var got []string
	at := func(name string) func() {
		return func() { got = append(got, fmt.Sprintf("%s@%s", name, c.Now().Sub(t0))) }
	}
	c.AfterFunc(2*time.Second, at("b"))
	c.AfterFunc(time.Second, at("a"))
	c.AfterFunc(2*time.Second, at("b2")) // same time: in order of arrangement
	stopped := c.AfterFunc(1500*time.Millisecond, at("stopped"))
	c.AfterFunc(3*time.Second, func() {
		at("c")()
		c.AfterFunc(0, at("c-next"))            // due now: made in the same move
		c.AfterFunc(time.Second, at("c-later")) // 4s: beyond this move
	})
	if !stopped.Stop() {
		t.Error("Stop of a pending call = false, want true")
	}
	if stopped.Stop() {
		t.Error("second Stop = true, want false")
	}
	if got := c.Pending(); got != 4 {
		t.Errorf("Pending = %d, want 4", got)
	}
	c.Advance(3500 * time.Millisecond)
	want := []string{"a@1s", "b@2s", "b2@2s", "c@3s", "c-next@3s"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if now := c.Now().Sub(t0); now != 3500*time.Millisecond {
		t.Errorf("Now after Advance = %s, want 3.5s", now)
	}
	got = nil
	if !c.Step() {
		t.Fatal("Step with a pending call = false")
	}
	if diff := cmp.Diff([]string{"c-later@4s"}, got); diff != "" {
		t.Errorf("Step (-want +got):\n%s", diff)
	}
	if c.Step() {
		t.Error("Step with nothing pending = true")
	}
	// A call made at 0 waits for the next move, even by 0.
	got = nil
	c.AfterFunc(0, at("zero"))
	if len(got) != 0 {
		t.Fatal("AfterFunc(0) called at once")
	}
	c.Advance(0)
	if diff := cmp.Diff([]string{"zero@4s"}, got); diff != "" {
		t.Errorf("Advance(0) (-want +got):\n%s", diff)
	}
	// Going back is not possible.
	c.AdvanceTo(t0)
	if c.Now().Before(t0.Add(4 * time.Second)) {
		t.Errorf("AdvanceTo the past moved the clock back to %s", c.Now())
	}
}

func TestManualConcurrentArrangement(t *testing.T) {
	c := clock.NewManual(t0)
	var mu sync.Mutex
	calls := 0
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 100 {
				c.AfterFunc(time.Duration(i*100+j)*time.Millisecond, func() {
					mu.Lock()
					calls++
					mu.Unlock()
				})
			}
		}()
	}
	wg.Wait()
	c.Advance(time.Minute)
	if calls != 800 {
		t.Errorf("%d calls, want 800", calls)
	}
}

func TestSystem(t *testing.T) {
	c := clock.System()
	done := make(chan time.Time, 1)
	start := c.Now()
	c.AfterFunc(10*time.Millisecond, func() { done <- time.Now() })
	select {
	case at := <-done:
		if at.Sub(start) < 10*time.Millisecond {
			t.Errorf("called after %s, want at least 10ms", at.Sub(start))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not called")
	}
	if c.AfterFunc(time.Hour, func() {}).Stop() != true {
		t.Error("Stop of a pending timer = false")
	}
}
