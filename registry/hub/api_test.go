package hub

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestAppStore lists projects and repositories with their tags and the description of
// their latest image, from the manifest's annotations and the config's labels, showing
// each caller only what it may see.
func TestAppStore(t *testing.T) {
	th := newTestHub(t)
	root := basic("root", password)
	th.pushImage(root, "library/nginx", "1.9", newImage([]byte("old"), map[string]string{AnnotationTitle: "nginx (old)"}, nil))
	th.pushImage(root, "library/nginx", "1.10", newImage([]byte("new"),
		map[string]string{AnnotationTitle: "nginx", AnnotationDescription: "a web server", AnnotationSource: "https://github.com/nginx/nginx"},
		map[string]string{AnnotationVersion: "1.10.0", "maintainer": "someone"}))
	th.pushImage(root, "team-a/secret", "latest", newImage([]byte("secret"), map[string]string{AnnotationTitle: "secret"}, nil))

	var repos []RepositoryInfo
	ans := th.do("", "GET", "/api/v1/projects/library/repositories", nil).want(t, http.StatusOK, "")
	if err := json.Unmarshal(ans.body, &repos); err != nil {
		t.Fatal(err)
	}
	if len(repos) != 1 || repos[0].Latest == nil {
		t.Fatalf("repositories %s", ans.body)
	}
	got := repos[0]
	if diff := cmp.Diff([]string{"1.10", "1.9"}, got.Tags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
	l := got.Latest
	if l.Tag != "1.10" || l.Title != "nginx" || l.Description != "a web server" || l.Source != "https://github.com/nginx/nginx" || l.Version != "1.10.0" || l.Labels["maintainer"] != "someone" || l.Digest == "" {
		t.Errorf("latest %+v", l)
	}

	// Anonymous callers see the public project only; a member sees hers with its usage.
	var ps []ProjectInfo
	json.Unmarshal(th.do("", "GET", "/api/v1/projects", nil).want(t, http.StatusOK, "").body, &ps)
	if len(ps) != 1 || ps[0].Name != "library" || ps[0].Used != nil {
		t.Errorf("anonymous projects %+v", ps)
	}
	th.do("", "GET", "/api/v1/projects/team-a/repositories", nil).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
	// Whether a project exists or not, an anonymous caller is asked to log in alike.
	th.do("", "GET", "/api/v1/projects/no-such/repositories", nil).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
	ans = th.do(basic("gina", password), "GET", "/api/v1/projects/team-a/repositories", nil).want(t, http.StatusOK, "")
	json.Unmarshal(ans.body, &repos)
	if len(repos) != 1 || repos[0].Latest.Title != "secret" {
		t.Errorf("team-a's repositories for a guest: %s", ans.body)
	}
	var p ProjectInfo
	json.Unmarshal(th.do(basic("gina", password), "GET", "/api/v1/projects/team-a", nil).want(t, http.StatusOK, "").body, &p)
	if p.Role != RoleGuest || p.Used == nil || *p.Used == 0 {
		t.Errorf("team-a for gina: %+v", p)
	}
	// A token of the hub identifies the caller too.
	tok := bearer(th.token(basic("gina", password)))
	th.do(tok, "GET", "/api/v1/projects/team-a/repositories", nil).want(t, http.StatusOK, "")
	th.do(basic("bob", password), "GET", "/api/v1/projects/team-a/repositories", nil).want(t, http.StatusNotFound, "NOT_FOUND")
}

// TestAdminAPI: a system admin creates projects, users and quotas; a project admin sets
// members and makes robots within its project; others are refused.
func TestAdminAPI(t *testing.T) {
	th := newTestHub(t)
	root, ada, alice := basic("root", password), basic("ada", password), basic("alice", password)
	th.do(alice, "POST", "/api/v1/projects", []byte(`{"name":"team-c"}`)).want(t, http.StatusForbidden, "DENIED")
	th.do("", "POST", "/api/v1/projects", []byte(`{"name":"team-c"}`)).want(t, http.StatusUnauthorized, "UNAUTHORIZED")
	th.do(root, "POST", "/api/v1/projects", []byte(`{"name":"team-c","quota":1048576}`)).want(t, http.StatusCreated, "")
	th.do(root, "POST", "/api/v1/projects", []byte(`{"name":"team-c"}`)).want(t, http.StatusConflict, "EXISTS")
	th.do(root, "POST", "/api/v1/projects", []byte(`{"name":"Bad/Name"}`)).want(t, http.StatusBadRequest, "INVALID")
	th.do(root, "POST", "/api/v1/users", []byte(`{"name":"carol","password":"carols-password"}`)).want(t, http.StatusCreated, "")
	th.do(alice, "POST", "/api/v1/users", []byte(`{"name":"eve","password":"eves-password"}`)).want(t, http.StatusForbidden, "DENIED")
	th.do(root, "PUT", "/api/v1/projects/team-c/quota", []byte(`{"quota":2097152}`)).want(t, http.StatusNoContent, "")
	if _, q, _ := th.h.Usage("team-c"); q != 2<<20 {
		t.Errorf("quota %d", q)
	}

	// ada administers team-a: she adds carol, but not to team-b.
	th.do(ada, "PUT", "/api/v1/projects/team-a/members/carol", []byte(`{"role":"developer"}`)).want(t, http.StatusNoContent, "")
	th.do(ada, "PUT", "/api/v1/projects/team-b/members/carol", []byte(`{"role":"developer"}`)).want(t, http.StatusForbidden, "DENIED")
	th.do(alice, "PUT", "/api/v1/projects/team-a/members/carol", []byte(`{"role":"admin"}`)).want(t, http.StatusForbidden, "DENIED")
	th.do(ada, "PUT", "/api/v1/projects/team-a/members/carol", []byte(`{"role":"owner"}`)).want(t, http.StatusBadRequest, "INVALID")
	th.pushBlob(basic("carol", "carols-password"), "team-a/app", []byte("carol's")).want(t, http.StatusCreated, "")
	th.do(ada, "DELETE", "/api/v1/projects/team-a/members/carol", nil).want(t, http.StatusNoContent, "")
	th.pushBlob(basic("carol", "carols-password"), "team-a/app", []byte("carol's again")).want(t, http.StatusForbidden, "DENIED")

	// ada makes a robot for team-a, not for team-b; its secret works.
	ans := th.do(ada, "POST", "/api/v1/robots", []byte(`{"name":"deploy","permissions":[{"repository":"team-a/app","actions":["pull"]}]}`)).want(t, http.StatusCreated, "")
	var r struct{ Name, Secret string }
	json.Unmarshal(ans.body, &r)
	if r.Name != "robot$deploy" || r.Secret == "" {
		t.Fatalf("robot %s", ans.body)
	}
	th.do(basic(r.Name, r.Secret), "GET", "/v2/team-a/app/tags/list", nil).want(t, http.StatusOK, "")
	th.pushBlob(basic(r.Name, r.Secret), "team-a/app", []byte("robot")).want(t, http.StatusForbidden, "DENIED")
	th.do(ada, "POST", "/api/v1/robots", []byte(`{"name":"spy","permissions":[{"repository":"team-b/**","actions":["pull"]}]}`)).want(t, http.StatusForbidden, "DENIED")
	var who map[string]any
	json.Unmarshal(th.do(basic(r.Name, r.Secret), "GET", "/api/v1/user", nil).want(t, http.StatusOK, "").body, &who)
	if who["name"] != "robot$deploy" || who["kind"] != "robot" {
		t.Errorf("user %v", who)
	}
	th.do(root, "GET", "/api/v1/nothing", nil).want(t, http.StatusNotFound, "NOT_FOUND")
}
