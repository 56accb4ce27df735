package hub

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestListenAndServe runs a hub from a configuration file on a loopback port: its
// declared users and projects exist, token auth works, and it stops with its context.
func TestListenAndServe(t *testing.T) {
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("roots-password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "hub.yaml")
	yaml := `addr: 127.0.0.1:0
root: ` + filepath.Join(dir, "root") + `
rateLimit: {perSecond: 1000, burst: 1000}
hub:
  service: test-hub
  tokenLifetime: 2m
  users:
    - {name: root, passwordHash: "` + string(hash) + `", systemAdmin: true}
    - {name: alice, password: ` + password + `}
  projects:
    - {name: team-a, quota: 10MiB, members: {alice: developer}}
    - {name: library, public: true, quota: 1048576}
`
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Hub.TokenLifetime != 2*time.Minute || cfg.Hub.Projects[1].Quota != "1048576" {
		t.Fatalf("config %+v", cfg.Hub)
	}
	addr, stop := listenAndServe(t, cfg)
	base := "http://" + addr.String()
	get := func(path, user, pass string) (int, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("WWW-Authenticate") + string(b)
	}
	if code, body := get("/v2/team-a/app/tags/list", "", ""); code != 401 || !strings.Contains(body, `service="test-hub"`) {
		t.Errorf("anonymous: %d %s", code, body)
	}
	if code, body := get("/token?service=test-hub&scope=repository:team-a/app:pull", "alice", password); code != 200 || !strings.Contains(body, `"expires_in":120`) {
		t.Errorf("alice's token: %d %s", code, body)
	}
	if code, body := get("/api/v1/projects", "root", "roots-password"); code != 200 || !strings.Contains(body, `"quota":10485760`) {
		t.Errorf("projects: %d %s", code, body)
	}

	// Stopped, then started again from the same file: the accounts are kept, not doubled.
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	h, err := New(ctx2, cfg.HubConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := cfg.Apply(ctx2, h); err != nil {
		t.Fatal(err)
	}
	if n := len(h.Users()); n != 2 {
		t.Errorf("%d users after a second start", n)
	}
}

// TestConfigRefused: fields a hub does not take are refused, naming them.
func TestConfigRefused(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"unknown field":      "root: /x\nhub: {sevrice: x}\n",
		"basic users":        "root: /x\nusers: {ci: secret}\n",
		"automatic mount":    "root: /x\nautomaticMount: true\n",
		"no root":            "hub: {}\n",
		"bad role":           "root: /x\nhub: {projects: [{name: a, members: {alice: owner}}]}\n",
		"bad quota":          "root: /x\nhub: {projects: [{name: a, quota: lots}]}\n",
		"no password":        "root: /x\nhub: {users: [{name: alice}]}\n",
		"bad hash":           "root: /x\nhub: {users: [{name: alice, passwordHash: plain}]}\n",
		"bad project name":   "root: /x\nhub: {projects: [{name: A/B}]}\n",
		"a whole-hub mirror": "root: /x\nmirror: {upstream: https://r.example}\n",
		"a proxy pushed to":  "root: /x\nhub: {projects: [{name: c, proxy: {upstream: https://r.example, allowPush: true}}]}\n",
		"a proxy of no host": "root: /x\nhub: {projects: [{name: c, proxy: {upstream: r.example}}]}\n",
		"a negative gc":      "root: /x\ngc: {interval: -1s}\n",
	} {
		p := filepath.Join(dir, "c.yaml")
		os.WriteFile(p, []byte(body), 0o600)
		if _, err := LoadConfig(p); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("%s: %v, want ErrInvalidOption", name, err)
		}
	}
}

// TestConfigSections: the gc, notifications and per-project proxy sections reach the
// hub's Config.
func TestConfigSections(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(p, []byte(`root: /x
gc: {interval: 1h, grace: 2h, deleteUntagged: true}
notifications: [{url: "https://ci.example/hook"}]
hub:
  projects:
    - {name: dockerhub, public: true, proxy: {upstream: "https://registry-1.docker.io", ttl: 10m}}
`), 0o600)
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	hc := cfg.HubConfig()
	if hc.GC.Interval != time.Hour || len(hc.GC.Options) != 2 {
		t.Errorf("gc %+v", hc.GC)
	}
	if mc := hc.ProxyCaches["dockerhub"]; mc.Upstream != "https://registry-1.docker.io" || mc.TTL != 10*time.Minute {
		t.Errorf("proxy caches %+v", hc.ProxyCaches)
	}
}
