package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dao hub serve runs the hub a file describes: /v2/ asks for a token, the token endpoint
// gives one to a user of the file, and the app store lists the project.
func TestHubServe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hub.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`root: %s
hub:
  url: http://%s
  users:
    - {name: alice, password: alice-secret}
  projects:
    - {name: team-a, quota: 1GiB, members: {alice: developer}}
`, filepath.Join(dir, "root"), addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	g := &globals{stdout: &out, stderr: &out}
	done := make(chan error, 1)
	go func() { done <- runHub(ctx, g, &hubOptions{config: cfg, addr: addr}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runHub: %v", err)
		}
	}()
	var resp *http.Response
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err = http.Get("http://" + addr + "/v2/")
		if err == nil {
			break
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("dao hub serve ended: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hub does not answer: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp.Body.Close()
	if ch := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(ch, "Bearer realm=") {
		t.Fatalf("GET /v2/: %d %q, want 401 with a Bearer challenge", resp.StatusCode, ch)
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/token?service=dao-hub&scope=repository:team-a/app:pull,push", nil)
	req.SetBasicAuth("alice", "alice-secret")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token for alice: %d", resp.StatusCode)
	}
	if !strings.Contains(out.String(), "serving") {
		t.Errorf("dao hub serve printed %q", out.String())
	}
}
