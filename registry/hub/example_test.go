package hub_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/opendao/dao/registry/hub"
)

// A hub with one private project and a developer in it: an anonymous request is
// challenged to fetch a token, and the token endpoint grants the developer pull and push
// in her project, and nothing in another.
func Example() {
	ctx := context.Background()
	root, err := os.MkdirTemp("", "hub")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	h, err := hub.New(ctx, hub.Config{Root: root, URL: "https://hub.example"})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	if err := h.CreateUser(ctx, hub.User{Name: "alice"}, "correct-horse"); err != nil {
		log.Fatal(err)
	}
	for _, p := range []string{"team-a", "team-b"} {
		if err := h.CreateProject(ctx, hub.Project{Name: p, Quota: 10 << 30}); err != nil {
			log.Fatal(err)
		}
	}
	if err := h.AddMember(ctx, "team-a", "alice", hub.RoleDeveloper); err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()

	res, err := http.Get(srv.URL + "/v2/team-a/app/tags/list")
	if err != nil {
		log.Fatal(err)
	}
	res.Body.Close()
	fmt.Println(res.StatusCode, res.Header.Get("WWW-Authenticate"))

	req, _ := http.NewRequest("GET", srv.URL+"/token?service=dao-hub&scope=repository:team-a/app:pull,push&scope=repository:team-b/app:pull", nil)
	req.SetBasicAuth("alice", "correct-horse")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer res.Body.Close()
	var answer struct {
		Token     string `json:"token"`
		ExpiresIn int    `json:"expires_in"`
	}
	if err := json.NewDecoder(res.Body).Decode(&answer); err != nil {
		log.Fatal(err)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(answer.Token, ".")[1])
	var claims struct {
		Sub    string `json:"sub"`
		Access []struct {
			Type, Name string
			Actions    []string
		} `json:"access"`
	}
	json.Unmarshal(payload, &claims)
	fmt.Println(claims.Sub, answer.ExpiresIn, claims.Access)
	// Output:
	// 401 Bearer realm="https://hub.example/token",service="dao-hub",scope="repository:team-a/app:pull"
	// alice 300 [{repository team-a/app [pull push]}]
}
