package main

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/typeurl/v2"
)

// A mark is a named moment of a restart.
type mark struct {
	name string
	at   time.Time
}

func sortMarks(ms []mark) []mark {
	slices.SortStableFunc(ms, func(a, b mark) int { return a.at.Compare(b.at) })
	return ms
}

// taskEvent is one of containerd's task events as this program received it.
type taskEvent struct {
	ns, id, topic string
	stamp         time.Time // the envelope's: set where the event was made (the shim, mostly)
	received      time.Time
}

// eventLog keeps every task event of the subscription, for wait and marks.
type eventLog struct {
	mu     sync.Mutex
	events []taskEvent
	err    error
	more   chan struct{} // closed and replaced at each event
}

func newEventLog() *eventLog { return &eventLog{more: make(chan struct{})} }

func (l *eventLog) follow(envelopes <-chan *events.Envelope, errs <-chan error) {
	for {
		select {
		case env := <-envelopes:
			now := time.Now()
			v, err := typeurl.UnmarshalAny(env.Event)
			if err != nil {
				continue
			}
			var id string
			switch e := v.(type) {
			case *apievents.TaskExit:
				if e.ID != e.ContainerID {
					continue
				}
				id = e.ContainerID
			case *apievents.TaskDelete:
				id = e.ContainerID
			case *apievents.TaskCreate:
				id = e.ContainerID
			case *apievents.TaskStart:
				id = e.ContainerID
			default:
				continue
			}
			l.mu.Lock()
			l.events = append(l.events, taskEvent{ns: env.Namespace, id: id, topic: env.Topic, stamp: env.Timestamp, received: now})
			close(l.more)
			l.more = make(chan struct{})
			l.mu.Unlock()
		case err := <-errs:
			l.mu.Lock()
			l.err = fmt.Errorf("event stream: %v", err)
			close(l.more)
			l.mu.Unlock()
			return
		}
	}
}

// wait returns when this program received the first event of topic for the container after
// since.
func (l *eventLog) wait(ns, id, topic string, since time.Time, timeout time.Duration) (time.Time, error) {
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		for _, e := range l.events {
			if e.ns == ns && e.id == id && e.topic == topic && !e.received.Before(since) {
				l.mu.Unlock()
				return e.received, nil
			}
		}
		err, more := l.err, l.more
		l.mu.Unlock()
		if err != nil {
			return time.Time{}, err
		}
		select {
		case <-more:
		case <-deadline:
			return time.Time{}, fmt.Errorf("no %s event of %s within %s", topic, id, timeout)
		}
	}
}

// marks returns the events of the container received after since, each stamped with its
// envelope's time, and forgets older events.
func (l *eventLog) marks(ns, id string, since time.Time) []mark {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ms []mark
	seen := map[string]bool{}
	for _, e := range l.events {
		if e.ns == ns && e.id == id && !e.received.Before(since) && !seen[e.topic] {
			seen[e.topic] = true
			ms = append(ms, mark{"event " + strings.TrimPrefix(e.topic, "/tasks/"), e.stamp})
		}
	}
	l.events = slices.DeleteFunc(l.events, func(e taskEvent) bool { return e.received.Before(since) })
	return ms
}
