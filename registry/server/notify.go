package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
)

// Endpoint is a receiver of webhooks: each event the server emits that it wants is POSTed
// to it, in a JSON envelope like distribution's notifications
// ({"events":[{"id","timestamp","action","target":{...},"request":{...},"actor":{...},
// "source":{...}}]}), with Content-Type application/vnd.docker.distribution.events.v1+json.
type Endpoint struct {
	// Name names the endpoint in logs; its URL's host if empty.
	Name string `yaml:"name"`
	// URL is where the envelopes are POSTed. Required, http or https.
	URL string `yaml:"url"`
	// Events are the actions sent (EventPush, EventPull, EventDelete); all if empty.
	Events []string `yaml:"events"`
	// Headers are added to each request (an Authorization for the receiver).
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds each request; 5 seconds if 0.
	Timeout time.Duration `yaml:"timeout"`
	// Queue is how many events wait to be sent at most; past it, new events are dropped
	// (and counted, and logged). 1024 if 0.
	Queue int `yaml:"queue"`
	// Retries is how many times a failed envelope is sent again, after 1 s, 2 s, 4 s...
	// (up to Backoff's cap of a minute), before it is dropped; 5 if 0, none if negative.
	Retries int `yaml:"retries"`
	// Backoff is the first wait before a retry; 1 second if 0.
	Backoff time.Duration `yaml:"backoff"`
}

// Notifier sends the server's events to webhook endpoints, asynchronously: its Send is an
// EventFunc (give it to WithEvents) that only queues, so a receiver that is slow or down
// never slows a push. Each endpoint has its own queue and goroutine, which send up to 100
// queued events in one envelope. Close stops them. It is safe for simultaneous use.
type Notifier struct {
	sinks  []*sink
	source envelopeSource
	log    *slog.Logger
	client *http.Client
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
}

type sink struct {
	ep      Endpoint
	name    string
	q       chan notification
	dropped atomic.Int64
	failed  atomic.Int64
	sent    atomic.Int64
	logged  atomic.Int64 // unix seconds of the last drop logged
	// pending counts the events queued or being sent: Close waits for it, so that a batch
	// the sender has taken out of the queue is not cut off mid-send.
	pending atomic.Int64
}

// NotifierOption configures NewNotifier. Each rejects a value it does not take with an
// error matching ErrInvalidOption that names it.
type NotifierOption func(*Notifier) error

// WithNotifierLogger makes the notifier log drops and failures to l. The default is
// slog.Default().
func WithNotifierLogger(l *slog.Logger) NotifierOption {
	return func(n *Notifier) error {
		if l == nil {
			return fmt.Errorf("%w: WithNotifierLogger: nil logger", ErrInvalidOption)
		}
		n.log = l
		return nil
	}
}

// WithNotifierSource sets the envelope's source: the address of the registry (its
// host:port as clients know it), also the base of each target's url. The default is
// the request's Host.
func WithNotifierSource(addr string) NotifierOption {
	return func(n *Notifier) error {
		n.source.Addr = addr
		return nil
	}
}

// WithNotifierClient makes the notifier send with c. The default is an http.Client with
// no timeout of its own (each Endpoint's Timeout applies).
func WithNotifierClient(c *http.Client) NotifierOption {
	return func(n *Notifier) error {
		if c == nil {
			return fmt.Errorf("%w: WithNotifierClient: nil client", ErrInvalidOption)
		}
		n.client = c
		return nil
	}
}

// NewNotifier starts a goroutine per endpoint, which runs until Close.
func NewNotifier(endpoints []Endpoint, opts ...NotifierOption) (*Notifier, error) {
	n := &Notifier{log: slog.Default(), client: &http.Client{}}
	var id [8]byte
	rand.Read(id[:])
	n.source.InstanceID = hex.EncodeToString(id[:])
	for _, o := range opts {
		if err := o(n); err != nil {
			return nil, err
		}
	}
	for i, ep := range endpoints {
		u, err := url.Parse(ep.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%w: notifications[%d]: url %q: an http or https URL is required", ErrInvalidOption, i, ep.URL)
		}
		for _, a := range ep.Events {
			if a != EventPush && a != EventPull && a != EventDelete {
				return nil, fmt.Errorf("%w: notifications[%d]: event %q: push, pull or delete", ErrInvalidOption, i, a)
			}
		}
		if ep.Timeout < 0 || ep.Queue < 0 || ep.Backoff < 0 {
			return nil, fmt.Errorf("%w: notifications[%d]: negative timeout, queue or backoff", ErrInvalidOption, i)
		}
		if ep.Timeout == 0 {
			ep.Timeout = 5 * time.Second
		}
		if ep.Queue == 0 {
			ep.Queue = 1024
		}
		if ep.Retries == 0 {
			ep.Retries = 5
		}
		if ep.Backoff == 0 {
			ep.Backoff = time.Second
		}
		name := ep.Name
		if name == "" {
			name = u.Host
		}
		n.sinks = append(n.sinks, &sink{ep: ep, name: name, q: make(chan notification, ep.Queue)})
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	for _, s := range n.sinks {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.run(ctx, s)
		}()
	}
	return n, nil
}

// notification is an event as queued: what the envelope needs of it, copied from the
// request while it is still there.
type notification struct {
	action string
	event  envelopeEvent
}

// Envelope is the JSON body of a webhook: the events, in the order they happened.
type envelope struct {
	Events []envelopeEvent `json:"events"`
}

type envelopeEvent struct {
	ID        string          `json:"id"`
	Timestamp time.Time       `json:"timestamp"`
	Action    string          `json:"action"`
	Target    envelopeTarget  `json:"target"`
	Request   envelopeRequest `json:"request"`
	Actor     envelopeActor   `json:"actor"`
	Source    envelopeSource  `json:"source"`
}

type envelopeTarget struct {
	MediaType  string        `json:"mediaType,omitempty"`
	Size       int64         `json:"size,omitempty"`
	Digest     digest.Digest `json:"digest,omitempty"`
	Length     int64         `json:"length,omitempty"`
	Repository string        `json:"repository"`
	URL        string        `json:"url,omitempty"`
	Tag        string        `json:"tag,omitempty"`
}

type envelopeRequest struct {
	ID        string `json:"id,omitempty"`
	Addr      string `json:"addr,omitempty"`
	Host      string `json:"host,omitempty"`
	Method    string `json:"method,omitempty"`
	UserAgent string `json:"useragent,omitempty"`
}

type envelopeActor struct {
	Name string `json:"name,omitempty"`
}

type envelopeSource struct {
	Addr       string `json:"addr,omitempty"`
	InstanceID string `json:"instanceID,omitempty"`
}

// EventMediaType is the Content-Type of a webhook's body, distribution's.
const EventMediaType = "application/vnd.docker.distribution.events.v1+json"

var eventSeq atomic.Uint64

// Send queues e for each endpoint that wants its action, dropping it for an endpoint whose
// queue is full. It never blocks; it is an EventFunc.
func (n *Notifier) Send(e Event) {
	if n.closed.Load() {
		return
	}
	ne := envelopeEvent{
		ID:        fmt.Sprintf("%s-%d", n.source.InstanceID, eventSeq.Add(1)),
		Timestamp: e.Time,
		Action:    e.Action,
		Target: envelopeTarget{MediaType: e.MediaType, Size: e.Size, Length: e.Size, Digest: e.Digest,
			Repository: e.Repository, Tag: e.Tag},
		Source: n.source,
	}
	if ne.Target.MediaType == "" && e.Kind == "blob" {
		ne.Target.MediaType = "application/octet-stream"
	}
	if r := e.Request; r != nil {
		ne.Request = envelopeRequest{ID: r.Header.Get("X-Request-Id"), Addr: r.RemoteAddr, Host: r.Host, Method: r.Method, UserAgent: r.UserAgent()}
		if u, _, ok := r.BasicAuth(); ok {
			ne.Actor.Name = u
		}

		if ne.Source.Addr == "" {
			ne.Source.Addr = r.Host
		}
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		kind := "manifests"
		if e.Kind == "blob" {
			kind = "blobs"
		}
		if e.Digest != "" {
			ne.Target.URL = scheme + "://" + ne.Source.Addr + "/v2/" + e.Repository + "/" + kind + "/" + e.Digest.String()
		}
	}
	if e.Actor != "" {
		ne.Actor.Name = e.Actor
	}
	for _, s := range n.sinks {
		if len(s.ep.Events) > 0 && !slices.Contains(s.ep.Events, e.Action) {
			continue
		}
		s.pending.Add(1)
		select {
		case s.q <- notification{action: e.Action, event: ne}:
		default:
			s.pending.Add(-1)
			d := s.dropped.Add(1)
			now := time.Now().Unix()
			if last := s.logged.Load(); now-last >= 10 && s.logged.CompareAndSwap(last, now) {
				n.log.Warn("registry notifications: queue full, events dropped", "endpoint", s.name, "dropped", d)
			}
		}
	}
}

// NotifierStats counts, per endpoint, what a Notifier did.
type NotifierStats struct {
	// Endpoint is the endpoint's Name.
	Endpoint string
	// Sent and Failed count the events sent and those given up after the retries;
	// Dropped those dropped because the queue was full; Queued those waiting.
	Sent, Failed, Dropped int64
	Queued                int
}

// Stats returns the counts of each endpoint, in the order they were given.
func (n *Notifier) Stats() []NotifierStats {
	out := make([]NotifierStats, 0, len(n.sinks))
	for _, s := range n.sinks {
		out = append(out, NotifierStats{Endpoint: s.name, Sent: s.sent.Load(), Failed: s.failed.Load(), Dropped: s.dropped.Load(), Queued: len(s.q)})
	}
	return out
}

// Close stops sending; what is still queued, or being sent, is sent first until ctx is
// done, then dropped. It returns once the goroutines have exited.
func (n *Notifier) Close(ctx context.Context) error {
	n.closed.Store(true)
	done := make(chan struct{})
	go func() {
		for _, s := range n.sinks {
			for s.pending.Load() > 0 && ctx.Err() == nil {
				time.Sleep(10 * time.Millisecond)
			}
		}
		n.cancel()
		n.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		n.cancel()
		<-done
		return ctx.Err()
	}
}

// maxBatch bounds the events of one envelope.
const maxBatch = 100

func (n *Notifier) run(ctx context.Context, s *sink) {
	for {
		var batch []envelopeEvent
		select {
		case <-ctx.Done():
			return
		case first := <-s.q:
			batch = append(batch, first.event)
		}
	more:
		for len(batch) < maxBatch {
			select {
			case nt := <-s.q:
				batch = append(batch, nt.event)
			default:
				break more
			}
		}
		body, _ := json.Marshal(envelope{Events: batch})
		wait := s.ep.Backoff
		for try := 0; ; try++ {
			err := n.post(ctx, s, body)
			if err == nil {
				s.sent.Add(int64(len(batch)))
				break
			}
			if try >= s.ep.Retries || ctx.Err() != nil {
				s.failed.Add(int64(len(batch)))
				n.log.Warn("registry notifications: events not delivered", "endpoint", s.name, "events", len(batch), "err", err)
				break
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
			wait = min(2*wait, time.Minute)
		}
		s.pending.Add(-int64(len(batch)))
	}
}

func (n *Notifier) post(ctx context.Context, s *sink, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.ep.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.ep.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", EventMediaType)
	for k, v := range s.ep.Headers {
		req.Header.Set(k, v)
	}
	res, err := n.client.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("%s: %s", s.ep.URL, res.Status)
	}
	return nil
}
