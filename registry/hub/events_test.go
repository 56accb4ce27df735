package hub

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendao/dao/registry/server"
)

// TestEvents: pushes, pulls and deletes through the hub call Config.Events with the
// project and the actor: a user with a token, a robot, a maintainer deleting, nobody for
// an anonymous pull of a public project; refused requests call nothing. A Notifier given
// the events sends the actor in its webhooks.
func TestEvents(t *testing.T) {
	type seen struct {
		Action, Kind, Repository, Tag, Project, Actor string
		Robot                                         bool
	}
	var mu sync.Mutex
	var got []seen
	var hooks []envelopeEvent
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env struct{ Events []envelopeEvent }
		if err := json.NewDecoder(r.Body).Decode(&env); err != nil {
			t.Error(err)
		}
		mu.Lock()
		hooks = append(hooks, env.Events...)
		mu.Unlock()
	}))
	t.Cleanup(recv.Close)
	n, err := server.NewNotifier([]server.Endpoint{{URL: recv.URL, Events: []string{server.EventPush, server.EventDelete}}})
	if err != nil {
		t.Fatal(err)
	}
	th := newTestHub(t, func(c *Config) {
		c.Events = func(e Event) {
			mu.Lock()
			got = append(got, seen{e.Action, e.Kind, e.Repository, e.Tag, e.Project, e.Actor, e.Robot})
			mu.Unlock()
			n.Send(e.Event)
		}
	})
	take := func() []seen {
		mu.Lock()
		defer mu.Unlock()
		g := got
		got = nil
		return g
	}
	img := newImage([]byte("layer of events"), nil, nil)
	tok := bearer(th.token(basic("alice", password), "repository:team-a/app:pull,push"))
	th.pushImage(tok, "team-a/app", "v1", img)
	want := []seen{
		{"push", "blob", "team-a/app", "", "team-a", "alice", false},
		{"push", "blob", "team-a/app", "", "team-a", "alice", false},
		{"push", "manifest", "team-a/app", "v1", "team-a", "alice", false},
	}
	if diff := cmp.Diff(want, take()); diff != "" {
		t.Errorf("alice's push (-want +got):\n%s", diff)
	}

	name, secret, err := th.h.CreateRobot(context.Background(), Robot{Name: "puller", Permissions: []Permission{{Repository: "team-a/*", Actions: []string{"pull"}}}})
	if err != nil {
		t.Fatal(err)
	}
	rtok := bearer(th.token(basic(name, secret), "repository:team-a/app:pull"))
	th.do(rtok, "GET", "/v2/team-a/app/manifests/v1", nil).want(t, http.StatusOK, "")
	th.do(rtok, "GET", "/v2/team-a/app/blobs/"+digestFromBytes(img.layer).String(), nil).want(t, http.StatusOK, "")
	th.do(rtok, "HEAD", "/v2/team-a/app/manifests/v1", nil).want(t, http.StatusOK, "") // no event for a HEAD
	// Refused: no event.
	th.pushBlob(rtok, "team-a/app", []byte("not allowed")).want(t, http.StatusForbidden, "DENIED")
	th.do("", "GET", "/v2/team-a/app/manifests/v1", nil).want(t, http.StatusUnauthorized, "")
	want = []seen{
		{"pull", "manifest", "team-a/app", "v1", "team-a", "robot$puller", true},
		{"pull", "blob", "team-a/app", "", "team-a", "robot$puller", true},
	}
	if diff := cmp.Diff(want, take()); diff != "" {
		t.Errorf("the robot's pull (-want +got):\n%s", diff)
	}

	th.do(basic("mo", password), "DELETE", "/v2/team-a/app/manifests/v1", nil).want(t, http.StatusAccepted, "")
	th.pushImage(basic("root", password), "library/app", "latest", img)
	take()
	th.do("", "GET", "/v2/library/app/manifests/latest", nil).want(t, http.StatusOK, "")
	want = []seen{{"pull", "manifest", "library/app", "latest", "library", "", false}}
	if diff := cmp.Diff(want, take()); diff != "" {
		t.Errorf("an anonymous pull (-want +got):\n%s", diff)
	}

	// The webhooks carry the actors: alice's pushes (with a token, no basic auth), mo's
	// delete.
	if err := n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	actors := map[string]string{}
	for _, e := range hooks {
		actors[e.Action+" "+e.Target.Repository+":"+e.Target.Tag] = e.Actor.Name
	}
	for k, v := range map[string]string{"push team-a/app:v1": "alice", "delete team-a/app:v1": "mo", "push library/app:latest": "root"} {
		if actors[k] != v {
			t.Errorf("webhook %s: actor %q, want %q (all: %v)", k, actors[k], v, actors)
		}
	}
}

// envelopeEvent is what TestEvents reads of a webhook's event.
type envelopeEvent struct {
	Action string
	Target struct{ Repository, Tag string }
	Actor  struct{ Name string }
}

// TestListenAndServeNotifiesAndCollects: a hub run from a file with gc and notifications
// sections collects (its garbage blob goes) and sends webhooks with the actor.
func TestListenAndServeNotifiesAndCollects(t *testing.T) {
	hooks := make(chan envelopeEvent, 100)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env struct{ Events []envelopeEvent }
		json.NewDecoder(r.Body).Decode(&env)
		for _, e := range env.Events {
			hooks <- e
		}
	}))
	t.Cleanup(recv.Close)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "hub.yaml")
	yaml := `addr: 127.0.0.1:0
root: ` + filepath.Join(dir, "root") + `
gc: {interval: 20ms, grace: 10ms}
notifications:
  - {url: "` + recv.URL + `", events: [push]}
hub:
  users:
    - {name: alice, password: ` + password + `}
  projects:
    - {name: team-a, members: {alice: developer}}
`
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := listenAndServe(t, cfg)
	garbage := []byte("a blob no manifest references")
	d := digestFromBytes(garbage)
	req, _ := http.NewRequest("POST", "http://"+addr.String()+"/v2/team-a/app/blobs/uploads/?digest="+d.String(), strings.NewReader(string(garbage)))
	req.SetBasicAuth("alice", password)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("push: %d", res.StatusCode)
	}
	select {
	case e := <-hooks:
		if e.Action != "push" || e.Target.Repository != "team-a/app" || e.Actor.Name != "alice" {
			t.Errorf("webhook %+v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook")
	}
	head := func() int {
		req, _ := http.NewRequest("HEAD", "http://"+addr.String()+"/v2/team-a/app/blobs/"+d.String(), nil)
		req.SetBasicAuth("alice", password)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for deadline := time.Now().Add(10 * time.Second); head() != http.StatusNotFound; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the garbage blob was not collected")
		}
	}
}
