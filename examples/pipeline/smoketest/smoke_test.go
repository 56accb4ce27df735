package smoketest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// app is the web app's binary under test.
var app string

func TestMain(m *testing.M) {
	app = os.Getenv("WEBAPP_BIN")
	if app == "" {
		dir, err := os.MkdirTemp("", "dao-smoketest-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		app, err = buildApp(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// buildApp compiles the web app from its source into dir.
func buildApp(dir string) (string, error) {
	_, self, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(self) {
		return "", errors.New("smoketest: no $WEBAPP_BIN, and the app's source cannot be found from here")
	}
	out := filepath.Join(dir, "webapp")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = filepath.Join(filepath.Dir(self), "..", "..", "quickstart", "webapp")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("smoketest: go build webapp: %v\n%s", err, b)
	}
	return out, nil
}

// start runs the app with -version version on a free port of 127.0.0.1 until the test ends,
// waits until it answers /healthz, and returns its base URL.
func start(t *testing.T, version string) string {
	t.Helper()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, app, "-listen", addr, "-version", version)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", app, err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	base := "http://" + addr
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the app did not answer %s/healthz within 10s: %v\n%s", base, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func TestAnswersWithItsVersionAndHost(t *testing.T) {
	base := start(t, "9.9.9")
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	code, body := get(t, base+"/")
	if want := fmt.Sprintf("hello from %s, version 9.9.9\n", host); code != http.StatusOK || body != want {
		t.Errorf("GET / = %d %q, want 200 %q", code, body, want)
	}
}

func TestHealthz(t *testing.T) {
	base := start(t, "1")
	if code, body := get(t, base+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /healthz = %d %q, want 200 \"ok\\n\"", code, body)
	}
}

// TestCheckIsItsOwnHealthCheck runs the app as the health check command a deployment gives
// it: exit 0 when the URL answers 200, and not 0 when nothing answers.
func TestCheckIsItsOwnHealthCheck(t *testing.T) {
	base := start(t, "1")
	if out, err := exec.Command(app, "-check", base+"/healthz").CombinedOutput(); err != nil {
		t.Errorf("-check %s/healthz: %v %s, want exit 0", base, err, out)
	}
	closed := "http://" + freeAddr(t) + "/healthz"
	err := exec.Command(app, "-check", closed).Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Errorf("-check %s with nothing listening: %v, want a non-zero exit", closed, err)
	}
}

func TestGetPrintsTheBody(t *testing.T) {
	base := start(t, "2.0")
	out, err := exec.Command(app, "-get", base+"/").Output()
	if err != nil || !strings.HasSuffix(string(out), ", version 2.0\n") {
		t.Errorf("-get %s/ = %q, %v; want the greeting", base, out, err)
	}
}
