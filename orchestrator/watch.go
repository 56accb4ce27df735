package orchestrator

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
)

// The event log behind Watch. Committed events go, once, into a log of fixed-size chunks
// that point to the next one. The log's head is trimmed to the history size; a watcher
// holds a position in the log (a chunk and an index in it), so that what it has not read
// stays reachable while it reads, and is released when it moves on or ends. Writers append
// and never wait for watchers: they only end those whose readers are stuck too far behind.

// maxChunk is the most events in one chunk of the log. A chunk holds at most a quarter of
// the history, so that the log keeps at most 1.25 times the history.
const maxChunk = 1024

// watchChanSize is the capacity of a watch's channel.
const watchChanSize = 128

// watchBatch is the most events a watcher takes out of the log at once.
const watchBatch = 256

// logEvent is an event as the log keeps it: the store's own immutable objects, not copies.
type logEvent struct {
	rev   uint64
	kind  EventKind
	typ   ObjectType
	cause string
	// obj is the *Service, *taskRec or *Node after the change, or as it was when
	// deleted; prev is the one before an update.
	obj, prev any
}

// exportShared is export for the orchestrator's own watch (watchInternal): the event's
// objects are copies of the store's, but share their specs, labels and lists, which no
// one writes to.
func (e *logEvent) exportShared() Event {
	ev := Event{Revision: e.rev, Kind: e.kind, Type: e.typ, Cause: e.cause}
	switch o := e.obj.(type) {
	case *Service:
		s := *o
		ev.Service = &s
		if p, ok := e.prev.(*Service); ok {
			ps := *p
			ev.PrevService = &ps
		}
	case *taskRec:
		t := o.shallow()
		ev.Task = &t
		if p, ok := e.prev.(*taskRec); ok {
			pt := p.shallow()
			ev.PrevTask = &pt
		}
	case *Node:
		n := *o
		ev.Node = &n
		if p, ok := e.prev.(*Node); ok {
			pn := *p
			ev.PrevNode = &pn
		}
	}
	return ev
}

// export copies the event for a watcher.
func (e *logEvent) export() Event {
	ev := Event{Revision: e.rev, Kind: e.kind, Type: e.typ, Cause: e.cause}
	switch o := e.obj.(type) {
	case *Service:
		ev.Service = cloneService(o)
		if p, ok := e.prev.(*Service); ok {
			ev.PrevService = cloneService(p)
		}
	case *taskRec:
		t := o.value()
		ev.Task = &t
		if p, ok := e.prev.(*taskRec); ok {
			pt := p.value()
			ev.PrevTask = &pt
		}
	case *Node:
		n := cloneNodeValue(o)
		ev.Node = &n
		if p, ok := e.prev.(*Node); ok {
			pn := cloneNodeValue(p)
			ev.PrevNode = &pn
		}
	}
	return ev
}

type chunk struct {
	first  uint64     // log sequence number of events[0]
	events []logEvent // appended up to its capacity; never reallocated
	next   *chunk
}

type hub struct {
	mu        sync.Mutex
	head      *chunk // oldest chunk of the history
	tail      *chunk // the chunk appended to
	next      uint64 // sequence number of the next event
	rev       uint64 // revision of the last published event (or the store's, at start)
	compacted uint64 // a watch from this revision or older fails with ErrCompacted
	history   int
	buffer    int
	chunkSize int
	watchers  map[*watcher]struct{}
	notify    chan struct{} // closed, and replaced, at each publish
	closed    bool
	wg        sync.WaitGroup
}

// newHub returns a log at revision rev, with no history: a watch from rev or older fails
// with ErrCompacted, except from 0.
func newHub(rev uint64, history, buffer int) *hub {
	size := min(maxChunk, max(1, history/4))
	c := &chunk{events: make([]logEvent, 0, size)}
	return &hub{head: c, tail: c, rev: rev, compacted: rev, history: history, buffer: buffer,
		chunkSize: size, watchers: map[*watcher]struct{}{}, notify: make(chan struct{})}
}

// publish appends the events of the changes of one transaction at revision rev, trims
// the history, ends the watchers whose readers are stuck too far behind, and wakes the
// others.
func (h *hub) publish(rev uint64, cause string, changes []change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range changes {
		ch := &changes[i]
		e := logEvent{rev: rev, kind: ch.kind(), typ: ch.typ, cause: cause, obj: ch.cur}
		switch e.kind {
		case 0:
			continue
		case EventDeleted:
			e.obj = ch.prev
		case EventUpdated:
			e.prev = ch.prev
		}
		if len(h.tail.events) == h.chunkSize {
			c := &chunk{first: h.next, events: make([]logEvent, 0, h.chunkSize)}
			h.tail.next = c
			h.tail = c
		}
		h.tail.events = append(h.tail.events, e)
		h.next++
	}
	h.rev = rev
	// Drop the oldest chunk while the others still hold the history. Its last revision
	// may go on in the next chunk, so it is incomplete: compacted.
	for h.head != h.tail && h.next-(h.head.first+uint64(h.chunkSize)) >= uint64(h.history) {
		h.compacted = max(h.compacted, h.head.events[h.chunkSize-1].rev)
		h.head = h.head.next
	}
	for w := range h.watchers {
		if !w.internal && h.next-w.pos > uint64(h.buffer) && w.blocked.Load() {
			h.endLocked(w, ErrSlowWatcher)
		}
	}
	close(h.notify)
	h.notify = make(chan struct{})
}

// endIfBehind ends a watcher whose reader leaves the channel full while the log holds
// more than a buffer of events for it, of transactions later than the one it delivers
// (at revision rev). A reader that is taking one transaction far bigger than the buffer
// is not ended for it.
func (h *hub) endIfBehind(w *watcher, rev uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.watchers[w]; !ok || w.internal || h.next-w.pos <= uint64(h.buffer) {
		return
	}
	c, i := w.c, w.i
	if i == len(c.events) {
		if c.next == nil {
			return
		}
		c, i = c.next, 0
	}
	if c.events[i].rev > rev {
		h.endLocked(w, ErrSlowWatcher)
	}
}

// endLocked ends a watcher with err.
func (h *hub) endLocked(w *watcher, err error) {
	delete(h.watchers, w)
	w.err = err
	close(w.stop)
}

// reset drops the history and ends every watcher with err, for a store whose state
// jumped to revision rev without the events in between (EtcdStore, when etcd compacted
// what it had not read): a watch from rev or older fails with ErrCompacted.
func (h *hub) reset(rev uint64, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		h.endLocked(w, err)
	}
	c := &chunk{first: h.next, events: make([]logEvent, 0, h.chunkSize)}
	h.head, h.tail = c, c
	h.rev, h.compacted = rev, rev
	close(h.notify)
	h.notify = make(chan struct{})
}

// close ends every watcher with ErrClosed and waits for their goroutines.
func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	for w := range h.watchers {
		h.endLocked(w, ErrClosed)
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// watch starts a watcher of the events at from and after.
func (h *hub) watch(ctx context.Context, from uint64, filters []WatchFilter) (<-chan Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w := &watcher{h: h, from: from, ch: make(chan Event, watchChanSize), stop: make(chan struct{})}
	for _, f := range filters {
		if f.raw != nil {
			w.raw = append(w.raw, f.raw)
		}
		if f.user != nil {
			w.user = append(w.user, f.user)
		}
		w.internal = w.internal || f.internal
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	switch {
	case from == 0 || from > h.rev:
		w.c, w.i, w.pos = h.tail, len(h.tail.events), h.next
	case from <= h.compacted:
		return nil, ErrCompacted
	default:
		w.c, w.i, w.pos = h.find(from)
	}
	h.watchers[w] = struct{}{}
	h.wg.Add(1)
	go w.run(ctx)
	return w.ch, nil
}

// find returns the position of the first event at revision rev or later, which is in the
// history.
func (h *hub) find(rev uint64) (*chunk, int, uint64) {
	c := h.head
	for c.next != nil && c.events[len(c.events)-1].rev < rev {
		c = c.next
	}
	i := sort.Search(len(c.events), func(i int) bool { return c.events[i].rev >= rev })
	if i == len(c.events) && c.next != nil {
		return c.next, 0, c.next.first
	}
	return c, i, c.first + uint64(i)
}

type watcher struct {
	h    *hub
	from uint64
	raw  []func(*logEvent) bool
	user []func(Event) bool
	ch   chan Event
	// internal: see watchInternal.
	internal bool

	// Guarded by h.mu.
	c   *chunk
	i   int
	pos uint64 // sequence number of the next event to take from the log

	// blocked is set while the reader leaves the channel full.
	blocked atomic.Bool
	// stop is closed, once, by the hub when it ends the watcher; err says why.
	stop chan struct{}
	err  error
}

func (w *watcher) run(ctx context.Context) {
	defer w.h.wg.Done()
	batch := make([]logEvent, 0, watchBatch)
	for {
		batch = batch[:0]
		w.h.mu.Lock()
		for len(batch) < watchBatch {
			if w.i == len(w.c.events) {
				if w.c.next == nil {
					break
				}
				w.c, w.i = w.c.next, 0
				continue
			}
			batch = append(batch, w.c.events[w.i])
			w.i++
			w.pos++
		}
		notify := w.h.notify
		w.h.mu.Unlock()

		if len(batch) == 0 {
			select {
			case <-notify:
				continue
			case <-ctx.Done():
				w.cancel()
				return
			case <-w.stop:
				w.fail()
				return
			}
		}
		for i := range batch {
			e := &batch[i]
			if e.rev < w.from || !w.pass(e) {
				continue
			}
			var ev Event
			if w.internal {
				ev = e.exportShared()
			} else {
				ev = e.export()
			}
			if !w.passUser(ev) {
				continue
			}
			select {
			case w.ch <- ev:
				continue
			default:
			}
			w.blocked.Store(true)
			// The writers check this at each publish, but a watcher whose goroutine did
			// not run while they wrote blocks only after the last publish: it checks too.
			w.h.endIfBehind(w, e.rev)
			select {
			case w.ch <- ev:
				w.blocked.Store(false)
			case <-ctx.Done():
				w.cancel()
				return
			case <-w.stop:
				w.fail()
				return
			}
		}
		clear(batch) // let go of the objects
	}
}

func (w *watcher) pass(e *logEvent) bool {
	for _, f := range w.raw {
		if !f(e) {
			return false
		}
	}
	return true
}

func (w *watcher) passUser(e Event) bool {
	for _, f := range w.user {
		if !f(e) {
			return false
		}
	}
	return true
}

// cancel ends a watch whose context is done: the channel is closed with no error event.
func (w *watcher) cancel() {
	w.h.mu.Lock()
	if _, ok := w.h.watchers[w]; ok {
		delete(w.h.watchers, w)
		close(w.stop)
	}
	w.h.mu.Unlock()
	close(w.ch)
}

// fail ends a watch that the hub ended: the reader gets one last event with the error,
// even when the channel is full, as the events it has not taken are no use to it now.
func (w *watcher) fail() {
	last := Event{Err: w.err}
	for {
		select {
		case w.ch <- last:
			close(w.ch)
			return
		default:
		}
		select {
		case <-w.ch:
		default:
		}
	}
}
