package hub

import (
	"context"
	"testing"

	"go.uber.org/goleak"
)

// TestCloseStopsItsGoroutine: the hub's writer of usage stops with Close.
func TestCloseStopsItsGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	h, err := New(context.Background(), Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	h.event(eventPush("team-a/app", "blob", 10))
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
}
