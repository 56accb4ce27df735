package clock

import (
	"container/heap"
	"sync"
	"time"
)

// Manual is a Clock that moves only when told to, so that a simulation of hours runs
// in milliseconds and always the same way. Calls that AfterFunc arranged are made by
// Advance, AdvanceTo and Step, in order of their time (and of arrangement, for the same
// time), on the goroutine that moves the clock, with the clock set to their time.
//
// It is safe for simultaneous use, but only one goroutine should move it at a time, and
// not from a call it makes.
type Manual struct {
	mu     sync.Mutex
	now    time.Time
	timers timerHeap
	seq    uint64
}

var _ Clock = (*Manual)(nil)

// NewManual returns a clock at start.
func NewManual(start time.Time) *Manual {
	return &Manual{now: start}
}

// Now returns the clock's time.
func (c *Manual) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc arranges for f to be called when the clock reaches Now()+d. A d of 0 or less
// means at the next move of the clock, even a move by 0.
func (c *Manual) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{c: c, when: c.now.Add(max(d, 0)), seq: c.seq, f: f}
	c.seq++
	heap.Push(&c.timers, t)
	return t
}

// Advance moves the clock forward by d, making the calls due on the way.
func (c *Manual) Advance(d time.Duration) {
	c.AdvanceTo(c.Now().Add(d))
}

// AdvanceTo moves the clock to t, making the calls due on the way, those they arrange
// included. A t before the clock's time makes the calls due now, and leaves the time as it
// is.
func (c *Manual) AdvanceTo(t time.Time) {
	for c.fireNext(t) {
	}
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	c.mu.Unlock()
}

// Step moves the clock to the time of the next arranged call, makes every call due then,
// and reports whether there was one. A loop of Step runs a simulation to its end.
func (c *Manual) Step() bool {
	c.mu.Lock()
	if len(c.timers) == 0 {
		c.mu.Unlock()
		return false
	}
	next := c.timers[0].when
	c.mu.Unlock()
	c.AdvanceTo(next)
	return true
}

// Pending returns the number of calls arranged and not made or stopped yet.
func (c *Manual) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// fireNext makes the next call due at or before t, if any.
func (c *Manual) fireNext(t time.Time) bool {
	c.mu.Lock()
	if len(c.timers) == 0 || c.timers[0].when.After(t) {
		c.mu.Unlock()
		return false
	}
	next := heap.Pop(&c.timers).(*manualTimer)
	if next.when.After(c.now) {
		c.now = next.when
	}
	c.mu.Unlock()
	next.f()
	return true
}

type manualTimer struct {
	c     *Manual
	when  time.Time
	seq   uint64
	f     func()
	index int // in the heap; -1 once made or stopped
}

// Stop implements Timer.
func (t *manualTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.index < 0 {
		return false
	}
	heap.Remove(&t.c.timers, t.index)
	return true
}

type timerHeap []*manualTimer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].when.Equal(h[j].when) {
		return h[i].when.Before(h[j].when)
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *timerHeap) Push(x any) {
	t := x.(*manualTimer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*h = old[:len(old)-1]
	return t
}
