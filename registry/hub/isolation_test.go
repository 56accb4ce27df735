package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/server"
)

// catalog returns the repositories the catalog lists to a.
func (th *testHub) catalog(a auth) []string {
	th.t.Helper()
	ans := th.do(a, "GET", "/v2/_catalog", nil).want(th.t, http.StatusOK, "")
	var c struct{ Repositories []string }
	if err := json.Unmarshal(ans.body, &c); err != nil {
		th.t.Fatal(err)
	}
	return c.Repositories
}

// fill pushes an image into team-a/app, team-b/app and library/app as root.
func (th *testHub) fill() image {
	img := newImage(bytes.Repeat([]byte("x"), 1000), nil, nil)
	for _, repo := range []string{"team-a/app", "team-b/app", "library/app"} {
		th.pushImage(basic("root", password), repo, "1", img)
	}
	return img
}

// TestDeveloperCannotTouchAnotherProject: alice, a developer of team-a, can read, write,
// delete or list nothing of the private team-b, by token or by basic auth, and the token
// server grants her nothing there.
func TestDeveloperCannotTouchAnotherProject(t *testing.T) {
	th := newTestHub(t)
	img := th.fill()
	alice := basic("alice", password)

	if got := th.granted(th.token(alice, "repository:team-b/app:pull,push,delete", "repository:team-a/app:pull,push,delete")); !cmp.Equal(got, []accessEntry{{Type: "repository", Name: "team-a/app", Actions: []string{"pull", "push"}}}) {
		t.Errorf("granted %+v, want pull,push on team-a/app only", got)
	}
	tok := bearer(th.token(alice, "repository:team-b/app:pull,push,delete"))
	for _, a := range []auth{alice, tok} {
		for _, c := range []struct{ method, path string }{
			{"GET", "/v2/team-b/app/manifests/1"},
			{"HEAD", "/v2/team-b/app/manifests/1"},
			{"GET", "/v2/team-b/app/blobs/" + digestOf(img.layer)},
			{"GET", "/v2/team-b/app/tags/list"},
			{"GET", "/v2/team-b/app/referrers/" + img.digest().String()},
			{"POST", "/v2/team-b/app/blobs/uploads/"},
			{"POST", "/v2/team-b/new/blobs/uploads/"},
			{"PUT", "/v2/team-b/app/manifests/2"},
			{"DELETE", "/v2/team-b/app/manifests/" + img.digest().String()},
			{"DELETE", "/v2/team-b/app/manifests/1"},
			{"DELETE", "/v2/team-b/app/blobs/" + digestOf(img.layer)},
		} {
			ans := th.do(a, c.method, c.path, nil)
			if ans.status != http.StatusForbidden || (c.method != "HEAD" && ans.code() != "DENIED") {
				t.Errorf("%s %s as %s: %d %s, want 403 DENIED", c.method, c.path, a, ans.status, ans.body)
			}
		}
	}
	// A mount from team-b into team-a is a read of team-b.
	ans := th.do(alice, "POST", "/v2/team-a/app/blobs/uploads/?mount="+digestOf(img.layer)+"&from=team-b/app", nil)
	ans.want(t, http.StatusForbidden, "DENIED")
	// And a mount without a source opens an upload rather than link what team-b has.
	th.do(alice, "POST", "/v2/team-a/other/blobs/uploads/?mount="+digestOf(img.layer), nil).want(t, http.StatusAccepted, "")

	// team-b's content is untouched.
	th.do(basic("bob", password), "GET", "/v2/team-b/app/manifests/1", nil).want(t, http.StatusOK, "")
	// The catalog lists her team-a and the public library, not team-b, by either means.
	want := []string{"library/app", "team-a/app"}
	catTok := bearer(th.token(alice, "registry:catalog:*"))
	for _, a := range []auth{alice, catTok} {
		if diff := cmp.Diff(want, th.catalog(a)); diff != "" {
			t.Errorf("catalog as %s (-want +got):\n%s", a, diff)
		}
	}
	// The app store API does not show team-b, and says it is not found.
	ans = th.do(alice, "GET", "/api/v1/projects", nil).want(t, http.StatusOK, "")
	var ps []ProjectInfo
	json.Unmarshal(ans.body, &ps)
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	if diff := cmp.Diff([]string{"library", "team-a"}, names); diff != "" {
		t.Errorf("projects (-want +got):\n%s", diff)
	}
	th.do(alice, "GET", "/api/v1/projects/team-b/repositories", nil).want(t, http.StatusNotFound, "NOT_FOUND")
	th.do(alice, "GET", "/api/v1/projects/team-b", nil).want(t, http.StatusNotFound, "NOT_FOUND")
}

func digestOf(b []byte) string { return digestFromBytes(b).String() }

// TestGuestCannotPush: gina, a guest of team-a, pulls and cannot push or delete.
func TestGuestCannotPush(t *testing.T) {
	th := newTestHub(t)
	img := th.fill()
	gina := basic("gina", password)
	tok := th.token(gina, "repository:team-a/app:pull,push,delete")
	if got := th.granted(tok); !cmp.Equal(got, []accessEntry{{Type: "repository", Name: "team-a/app", Actions: []string{"pull"}}}) {
		t.Errorf("granted %+v, want pull only", got)
	}
	for _, a := range []auth{gina, bearer(tok)} {
		th.do(a, "GET", "/v2/team-a/app/manifests/1", nil).want(t, http.StatusOK, "")
		th.pushBlob(a, "team-a/app", []byte("guest's")).want(t, http.StatusForbidden, "DENIED")
		th.do(a, "POST", "/v2/team-a/app/blobs/uploads/", nil).want(t, http.StatusForbidden, "DENIED")
		th.do(a, "PUT", "/v2/team-a/app/manifests/2", img.manifest, "Content-Type", ocispec.MediaTypeImageManifest).want(t, http.StatusForbidden, "DENIED")
		th.do(a, "DELETE", "/v2/team-a/app/manifests/1", nil).want(t, http.StatusForbidden, "DENIED")
	}
	// The developer may push but not delete; the maintainer and the admin may delete.
	th.pushBlob(basic("alice", password), "team-a/app", []byte("developer's")).want(t, http.StatusCreated, "")
	th.do(basic("alice", password), "DELETE", "/v2/team-a/app/manifests/1", nil).want(t, http.StatusForbidden, "DENIED")
	th.do(basic("mo", password), "DELETE", "/v2/team-a/app/manifests/1", nil).want(t, http.StatusAccepted, "")
	th.do(basic("ada", password), "DELETE", "/v2/team-a/app/manifests/"+img.digest().String(), nil).want(t, http.StatusAccepted, "")
}

// TestRobotLimitedToItsScope: a robot allowed to pull and push team-a/app does that and
// nothing else, by basic auth or token; its secret is told once and checked.
func TestRobotLimitedToItsScope(t *testing.T) {
	th := newTestHub(t)
	img := th.fill()
	name, secret, err := th.h.CreateRobot(context.Background(), Robot{Name: "ci", Permissions: []Permission{{Repository: "team-a/app", Actions: []string{"pull", "push"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if name != "robot$ci" || len(secret) < 40 {
		t.Fatalf("robot %q, secret %q", name, secret)
	}
	th.do(basic(name, "wrong"), "GET", "/v2/team-a/app/manifests/1", nil).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
	robot := basic(name, secret)
	tok := th.token(robot, "repository:team-a/app:pull,push,delete", "repository:team-a/web:pull,push", "repository:team-b/app:pull")
	if got := th.granted(tok); !cmp.Equal(got, []accessEntry{{Type: "repository", Name: "team-a/app", Actions: []string{"pull", "push"}}}) {
		t.Errorf("granted %+v, want pull,push on team-a/app only", got)
	}
	for _, a := range []auth{robot, bearer(tok)} {
		th.pushImage(a, "team-a/app", "robot", newImage([]byte("robot's layer"), nil, nil))
		th.do(a, "GET", "/v2/team-a/app/manifests/1", nil).want(t, http.StatusOK, "")
		th.do(a, "DELETE", "/v2/team-a/app/manifests/1", nil).want(t, http.StatusForbidden, "DENIED")
		th.do(a, "GET", "/v2/team-b/app/manifests/1", nil).want(t, http.StatusForbidden, "DENIED")
		th.pushBlob(a, "team-a/web", []byte("elsewhere")).want(t, http.StatusForbidden, "DENIED")
		th.pushBlob(a, "team-b/app", []byte("elsewhere")).want(t, http.StatusForbidden, "DENIED")
	}
	if diff := cmp.Diff([]string{"library/app", "team-a/app"}, th.catalog(robot)); diff != "" {
		t.Errorf("catalog (-want +got):\n%s", diff)
	}
	// A robot with a pattern: every repository of team-a, pull only.
	_, s2, err := th.h.CreateRobot(context.Background(), Robot{Name: "reader", Permissions: []Permission{{Repository: "team-a/**", Actions: []string{"pull"}}}})
	if err != nil {
		t.Fatal(err)
	}
	th.do(basic("robot$reader", s2), "GET", "/v2/team-a/app/manifests/1", nil).want(t, http.StatusOK, "")
	th.pushBlob(basic("robot$reader", s2), "team-a/app", []byte("no")).want(t, http.StatusForbidden, "DENIED")
	// Deleted, its token stops working at once.
	if err := th.h.DeleteRobot(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	th.do(bearer(tok), "GET", "/v2/team-a/app/manifests/1", nil).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
	_ = img
}

// TestTokenForOneRepositoryNotAnother: a token for team-a/app does not open team-a/web,
// though its holder may push there: the answer is a challenge for the scope needed.
func TestTokenForOneRepositoryNotAnother(t *testing.T) {
	th := newTestHub(t)
	alice := basic("alice", password)
	img := newImage([]byte("layer"), nil, nil)
	th.pushImage(alice, "team-a/web", "1", img)
	tok := bearer(th.token(alice, "repository:team-a/app:pull,push"))
	th.pushImage(tok, "team-a/app", "1", img)
	ans := th.do(tok, "GET", "/v2/team-a/web/manifests/1", nil).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
	want := `Bearer realm="` + th.url + `/token",service="dao-hub",scope="repository:team-a/web:pull",error="insufficient_scope"`
	if got := ans.header.Get("WWW-Authenticate"); got != want {
		t.Errorf("challenge %s\nwant      %s", got, want)
	}
	th.pushBlob(tok, "team-a/web", []byte("other")).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
	// A pull token does not push.
	pull := bearer(th.token(alice, "repository:team-a/app:pull"))
	th.do(pull, "GET", "/v2/team-a/app/manifests/1", nil).want(t, http.StatusOK, "")
	th.pushBlob(pull, "team-a/app", []byte("other")).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
}

// TestAnonymous: anyone pulls a public project without credentials, and nothing else.
func TestAnonymous(t *testing.T) {
	th := newTestHub(t)
	th.fill()
	th.do("", "GET", "/v2/library/app/manifests/1", nil).want(t, http.StatusOK, "")
	th.do("", "GET", "/v2/library/app/tags/list", nil).want(t, http.StatusOK, "")
	tok := th.token("", "repository:library/app:pull,push,delete", "repository:team-a/app:pull")
	if got := th.granted(tok); !cmp.Equal(got, []accessEntry{{Type: "repository", Name: "library/app", Actions: []string{"pull"}}}) {
		t.Errorf("anonymous was granted %+v, want pull on library/app only", got)
	}
	th.do(bearer(tok), "GET", "/v2/library/app/manifests/1", nil).want(t, http.StatusOK, "")
	for _, a := range []auth{"", bearer(tok)} {
		ans := th.do(a, "GET", "/v2/team-a/app/manifests/1", nil).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
		if got, want := ans.header.Get("WWW-Authenticate"), `Bearer realm="`+th.url+`/token",service="dao-hub",scope="repository:team-a/app:pull"`; got != want {
			t.Errorf("challenge %s\nwant      %s", got, want)
		}
		ans = th.pushBlob(a, "library/app", []byte("anon")).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
		if got, want := ans.header.Get("WWW-Authenticate"), `Bearer realm="`+th.url+`/token",service="dao-hub",scope="repository:library/app:pull,push"`; got != want {
			t.Errorf("challenge %s\nwant      %s", got, want)
		}
		th.do(a, "DELETE", "/v2/library/app/manifests/1", nil).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
		th.do(a, "GET", "/v2/team-b/app/tags/list", nil).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
	}
	// The ping challenges, so that docker login asks for a token.
	th.do("", "GET", "/v2/", nil).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
	th.do(basic("alice", password), "GET", "/v2/", nil).want(t, http.StatusOK, "")
	if diff := cmp.Diff([]string{"library/app"}, th.catalog("")); diff != "" {
		t.Errorf("anonymous catalog (-want +got):\n%s", diff)
	}
	// An unknown project is nobody's, not even a system admin's.
	th.pushBlob(basic("root", password), "nowhere/app", []byte("x")).want(t, http.StatusForbidden, "DENIED")
	// Wrong passwords are challenged, whatever the user.
	th.do(basic("alice", "wrong-password"), "GET", "/v2/library/app/manifests/1", nil).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
	th.do(basic("nobody", "wrong-password"), "GET", "/v2/library/app/manifests/1", nil).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
	ans := th.do(basic("alice", "wrong-password"), "GET", "/token?scope=repository:library/app:pull", nil).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
	if !slices.Contains([]string{ans.header.Get("WWW-Authenticate")}, `Basic realm="dao-hub"`) {
		t.Errorf("token endpoint challenge %q", ans.header.Get("WWW-Authenticate"))
	}
}

var _ server.Authorizer = (*Hub)(nil).Authorizer()

// TestRobotExpires: a robot account's secret and tokens stop working when it expires.
func TestRobotExpires(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	th := newTestHub(t, func(c *Config) { c.Clock = func() time.Time { return time.Unix(0, now.Load()) } })
	th.fill()
	name, secret, err := th.h.CreateRobot(context.Background(), Robot{Name: "temp", ExpiresAt: time.Unix(0, now.Load()).Add(time.Hour),
		Permissions: []Permission{{Repository: "team-a/app", Actions: []string{"pull"}}}})
	if err != nil {
		t.Fatal(err)
	}
	tok := bearer(th.token(basic(name, secret), "repository:team-a/app:pull"))
	th.do(basic(name, secret), "GET", "/v2/team-a/app/manifests/1", nil).want(t, http.StatusOK, "")
	th.do(tok, "GET", "/v2/team-a/app/manifests/1", nil).want(t, http.StatusOK, "")
	now.Add(int64(time.Hour))
	th.do(basic(name, secret), "GET", "/v2/team-a/app/manifests/1", nil).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
	th.do(tok, "GET", "/v2/team-a/app/manifests/1", nil).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
}
