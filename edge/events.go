package edge

import (
	"context"
	"fmt"
	"sync"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/typeurl/v2"
)

// EventType says what happened to a container.
type EventType string

// Event types.
const (
	// EventStart: the container's process started.
	EventStart EventType = "start"
	// EventExit: the container's main process exited; Event.ExitCode is set.
	EventExit EventType = "exit"
	// EventOOM: the kernel killed a process of the container for lack of memory. The exit
	// follows.
	EventOOM EventType = "oom"
	// EventResync: events may have been missed (containerd restarted, or the event stream
	// broke); re-read the status of every container. ContainerID is empty.
	EventResync EventType = "resync"
	// EventError: the subscription ends, for the reason in Event.Err (ErrSlowSubscriber or
	// ErrClosed); the channel is closed after it. ContainerID is empty.
	EventError EventType = "error"
)

// Event is something that happened to one of the Runtime's containers, as containerd's event
// stream told it.
type Event struct {
	Type        EventType
	ContainerID string
	// ExitCode and OOMKilled are set for EventExit.
	ExitCode  int
	OOMKilled bool
	// Err is set for EventError: why the subscription ended.
	Err  error
	Time time.Time
}

func (e Event) String() string {
	switch e.Type {
	case EventExit:
		return fmt.Sprintf("%s exit code %d oom=%v", e.ContainerID, e.ExitCode, e.OOMKilled)
	case EventResync:
		return "resync"
	case EventError:
		return fmt.Sprintf("error: %v", e.Err)
	}
	return fmt.Sprintf("%s %s", e.ContainerID, e.Type)
}

type subscriber struct {
	// ch holds up to limit events, and one more slot for the last event (EventError).
	ch    chan Event
	limit int
	// stop stops the call that unsubscribes when the subscriber's context is done; it
	// reports whether it stopped it (see Runtime.stopWatching).
	stop func() bool

	mu     sync.Mutex // held while sending, so that the channel is not closed meanwhile
	closed bool
}

// send delivers e unless the subscriber is gone, without waiting: a subscriber that has limit
// events waiting already is ended instead, with a last EventError of ErrSlowSubscriber. It
// reports whether it ended it.
func (s *subscriber) send(e Event) (dropped bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if len(s.ch) >= s.limit {
		// Only senders add, under s.mu, and never past limit: the last slot is free.
		s.ch <- Event{Type: EventError, Err: ErrSlowSubscriber, Time: time.Now()}
		s.closed = true
		close(s.ch)
		return true
	}
	s.ch <- e
	return false
}

// end closes the channel, after a last EventError of err when err is not nil and there is
// room for it.
func (s *subscriber) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if err != nil {
		select {
		case s.ch <- Event{Type: EventError, Err: err, Time: time.Now()}:
		default:
		}
	}
	s.closed = true
	close(s.ch)
}

// Subscribe returns a channel of the events of the Runtime's containers, from now until ctx
// is done or the Runtime is closed.
//
// The Runtime never waits for a subscriber: each subscription holds up to the Runtime's
// subscriber buffer (WithSubscribeBuffer; DefaultSubscribeBuffer) events that its reader has
// not received yet. A reader that lets more than that wait is dropped: it receives a last
// Event of type EventError with Err set to ErrSlowSubscriber, and the channel is closed; it
// may have missed events, so it should re-read the status of the containers it cares about
// and subscribe again. When the Runtime is closed the channel gets a last EventError with
// ErrClosed and is closed. When ctx is done the channel is closed with no such event.
//
// No goroutine waits on a subscription: when ctx is done, a short one ends it (Close waits
// for that one). A subscription costs its buffer until it ends.
func (r *Runtime) Subscribe(ctx context.Context) <-chan Event {
	s := &subscriber{ch: make(chan Event, r.opts.subBuffer+1), limit: r.opts.subBuffer}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		s.end(ErrClosed)
		return s.ch
	}
	r.subs[s] = struct{}{}
	// The unsubscription runs in a goroutine of its own when ctx is done: Close waits for
	// it, or stops it (stopWatching).
	r.wg.Add(1)
	s.stop = context.AfterFunc(ctx, func() {
		defer r.wg.Done()
		r.unsubscribe(s)
	})
	r.mu.Unlock()
	return s.ch
}

// stopWatching stops watching the subscriber's context, once the subscriber was taken off
// r.subs: the unsubscription that was to run when it is done is not needed any more.
func (r *Runtime) stopWatching(s *subscriber) {
	if s.stop != nil && s.stop() {
		r.wg.Done() // the call that stop stopped would have
	}
}

func (r *Runtime) unsubscribe(s *subscriber) {
	r.mu.Lock()
	delete(r.subs, s)
	r.mu.Unlock()
	s.end(nil)
}

// publish delivers e to every subscriber and wakes those waiting on the container. It never
// waits for a subscriber: one too far behind is dropped (see Subscribe).
func (r *Runtime) publish(e Event) {
	r.mu.Lock()
	subs := make([]*subscriber, 0, len(r.subs))
	for s := range r.subs {
		subs = append(subs, s)
	}
	var woken []chan struct{}
	if e.Type == EventExit || e.Type == EventResync {
		if e.Type == EventExit {
			woken = r.waiters[e.ContainerID]
			delete(r.waiters, e.ContainerID)
		} else {
			for id, ws := range r.waiters {
				woken = append(woken, ws...)
				delete(r.waiters, id)
			}
		}
	}
	r.mu.Unlock()
	for _, w := range woken {
		close(w)
	}
	for _, s := range subs {
		if s.send(e) {
			r.log.Warn("event subscriber fell too far behind: dropped", "buffer", s.limit)
			r.mu.Lock()
			_, had := r.subs[s]
			delete(r.subs, s)
			r.mu.Unlock()
			if had { // else Close took it off, and stops watching it
				r.stopWatching(s)
			}
		}
	}
}

// exitSignal returns a channel closed at the next exit event of the container (or a resync).
func (r *Runtime) exitSignal(id string) <-chan struct{} {
	ch := make(chan struct{})
	r.mu.Lock()
	r.waiters[id] = append(r.waiters[id], ch)
	r.mu.Unlock()
	return ch
}

// eventLoop follows containerd's task events and re-subscribes when the stream breaks, as it
// does when containerd restarts. ready is closed after the first attempt to subscribe.
func (r *Runtime) eventLoop(ctx context.Context, ready chan struct{}) {
	filters := []string{
		fmt.Sprintf(`namespace==%s,topic=="/tasks/exit"`, r.opts.namespace),
		fmt.Sprintf(`namespace==%s,topic=="/tasks/oom"`, r.opts.namespace),
		fmt.Sprintf(`namespace==%s,topic=="/tasks/start"`, r.opts.namespace),
	}
	backoff := 50 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		sctx, cancel := context.WithCancel(ctx)
		envelopes, errs := r.client.Subscribe(sctx, filters...)
		if !first {
			// Whatever happened while the stream was down is unknown.
			r.publish(Event{Type: EventResync, Time: time.Now()})
		}
		healthy := r.follow(sctx, envelopes, errs, ready)
		cancel()
		if first {
			first = false
			closeOnce(ready)
		}
		if ctx.Err() != nil {
			return
		}
		if healthy {
			backoff = 50 * time.Millisecond
		}
		r.log.Warn("containerd event stream broke; re-subscribing", "after", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// follow delivers events until the stream ends; it reports whether any event arrived or the
// stream stayed up for a while.
func (r *Runtime) follow(ctx context.Context, envelopes <-chan *events.Envelope, errs <-chan error, ready chan struct{}) bool {
	began := time.Now()
	// containerd sends nothing to confirm a subscription; give it a moment before saying ready.
	readyTimer := time.NewTimer(20 * time.Millisecond)
	defer readyTimer.Stop()
	got := false
	for {
		select {
		case <-readyTimer.C:
			closeOnce(ready)
		case err := <-errs:
			if err != nil && ctx.Err() == nil {
				r.log.Warn("containerd event stream", "err", err)
			}
			return got || time.Since(began) > 5*time.Second
		case env, ok := <-envelopes:
			if !ok {
				return got
			}
			got = true
			r.handle(env)
		}
	}
}

func (r *Runtime) handle(env *events.Envelope) {
	if env.Event == nil {
		return
	}
	v, err := typeurl.UnmarshalAny(env.Event)
	if err != nil {
		r.log.Warn("undecodable containerd event", "topic", env.Topic, "err", err)
		return
	}
	switch e := v.(type) {
	case *apievents.TaskExit:
		if e.ID != e.ContainerID { // an exec'd process, not the container's own
			return
		}
		r.mu.Lock()
		_, oom := r.oom[e.ContainerID]
		r.mu.Unlock()
		if !oom && e.ExitStatus == sigkillExit && r.oomAtExit(e.ContainerID, e.ExitedAt.AsTime()) {
			oom = true
			r.markOOM(e.ContainerID, true)
		}
		if oom && r.announceInferredOOM(e.ContainerID) {
			// The shim missed it (see cgroupOOMKilled); say it as it would have.
			r.publish(Event{Type: EventOOM, ContainerID: e.ContainerID, Time: e.ExitedAt.AsTime()})
		}
		r.publish(Event{Type: EventExit, ContainerID: e.ContainerID, ExitCode: int(e.ExitStatus),
			OOMKilled: oom, Time: e.ExitedAt.AsTime()})
	case *apievents.TaskOOM:
		r.mu.Lock()
		m, had := r.oom[e.ContainerID]
		r.mu.Unlock()
		if had && m.inferred {
			return // a late event for a kill already reported at the exit
		}
		r.markOOM(e.ContainerID, false)
		r.publish(Event{Type: EventOOM, ContainerID: e.ContainerID, Time: env.Timestamp})
	case *apievents.TaskStart:
		r.publish(Event{Type: EventStart, ContainerID: e.ContainerID, Time: env.Timestamp})
	}
}
