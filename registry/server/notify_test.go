package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/opendao/dao/registry/server"
)

// TestNotifierPush checks that a push sends push events with the digests pushed, in
// distribution's envelope, and that pulls are not sent to an endpoint that wants pushes.
func TestNotifierPush(t *testing.T) {
	type event struct {
		Action string
		Target struct {
			MediaType, Repository, Tag, URL string
			Digest                          digest.Digest
			Size                            int64
		}
		Request struct{ Method string }
		Source  struct{ Addr string }
	}
	var mu sync.Mutex
	var got []event
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") != server.EventMediaType || r.Header.Get("Authorization") != "Bearer hook" {
			t.Errorf("webhook headers: %v", r.Header)
		}
		var env struct{ Events []event }
		if err := json.NewDecoder(r.Body).Decode(&env); err != nil {
			t.Error(err)
		}
		mu.Lock()
		got = append(got, env.Events...)
		mu.Unlock()
	}))
	t.Cleanup(recv.Close)
	n, err := server.NewNotifier([]server.Endpoint{{URL: recv.URL, Events: []string{server.EventPush}, Headers: map[string]string{"Authorization": "Bearer hook"}}},
		server.WithNotifierSource("hub.test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	h := newHub(t, server.WithEvents(n.Send))
	layer := []byte("layer")
	_, md := h.pushImage("team/app", "v1", layer)
	h.do("GET", "/v2/team/app/manifests/v1", nil).want(t, http.StatusOK, "")

	want := map[digest.Digest]bool{digest.FromBytes(layer): false, md: false, digest.FromString(`{"architecture":"amd64","os":"linux"}`): false}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 {
		t.Fatalf("got %d events, want 3: %+v", len(got), got)
	}
	for _, e := range got {
		if e.Action != "push" || e.Target.Repository != "team/app" || e.Request.Method == "" || e.Source.Addr != "hub.test" {
			t.Errorf("event %+v", e)
		}
		if _, ok := want[e.Target.Digest]; !ok {
			t.Errorf("event of %s, not pushed", e.Target.Digest)
		}
		want[e.Target.Digest] = true
		if e.Target.Digest == md && (e.Target.Tag != "v1" || e.Target.URL != "http://hub.test/v2/team/app/manifests/"+md.String()) {
			t.Errorf("manifest event %+v", e)
		}
	}
	for d, seen := range want {
		if !seen {
			t.Errorf("no event of %s", d)
		}
	}
}

// TestNotifierDownReceiver checks that a receiver that hangs neither blocks nor slows
// pushes: the queue fills and drops, counting and logging it.
func TestNotifierDownReceiver(t *testing.T) {
	release := make(chan struct{})
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(recv.Close)
	var logs bytes.Buffer
	var logMu sync.Mutex
	n, err := server.NewNotifier([]server.Endpoint{{URL: recv.URL, Queue: 8, Timeout: time.Minute}},
		server.WithNotifierLogger(slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.Close(ctx)
	})
	t.Cleanup(func() { close(release) }) // before Close, which sends what is queued
	h := newHub(t, server.WithEvents(n.Send))
	start := time.Now()
	for i := range 200 {
		h.pushBlob("team/app", []byte(fmt.Sprint("blob ", i)))
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("200 pushes took %v with the receiver hanging", d)
	}
	st := n.Stats()[0]
	if st.Dropped < 150 {
		t.Errorf("stats %+v: want most of 200 events dropped", st)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !bytes.Contains(logs.Bytes(), []byte("events dropped")) {
		t.Errorf("no drop logged: %s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestNotifierCloseWaitsForTheBatchInFlight: Close sends what the sender has already taken
// out of its queue too. It used to wait only for the queue to be empty and then cancel the
// send in progress, which dropped the last events (seen as a missing webhook in the hub's
// TestEvents, 1 run in 7).
func TestNotifierCloseWaitsForTheBatchInFlight(t *testing.T) {
	inFlight := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	received := 0
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(inFlight) })
		time.Sleep(300 * time.Millisecond) // a slow receiver
		var env struct{ Events []json.RawMessage }
		if err := json.NewDecoder(r.Body).Decode(&env); err != nil {
			t.Error(err)
		}
		mu.Lock()
		received += len(env.Events)
		mu.Unlock()
	}))
	t.Cleanup(recv.Close)
	n, err := server.NewNotifier([]server.Endpoint{{URL: recv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	n.Send(server.Event{Action: server.EventPush, Kind: "blob", Repository: "app", Digest: digest.FromString("a")})
	<-inFlight // the queue is empty now; the event is being sent
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if st := n.Stats()[0]; received != 1 || st.Sent != 1 || st.Failed != 0 {
		t.Errorf("after Close: %d received, stats %+v; want the event sent", received, st)
	}
}
