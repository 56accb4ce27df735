package registrytest_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"go.uber.org/goleak"

	"github.com/opendao/dao/registry/registrytest"
)

// TestNothingLeftRunning starts a token server, a registry that wants its tokens and fault
// proxies over it (in process and over the network), uses them (a push, a pull, a stall that
// Close must end, a slow body, a dropped connection), closes them, twenty times over, and
// checks that no goroutine is left.
//
// It does not call t.Parallel: goleak would count the goroutines of tests running beside
// it. Go runs it before the package's parallel tests start.
func TestNothingLeftRunning(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	for i := range 20 {
		cycle(t, i%2 == 0)
	}
	goleak.VerifyNone(t, ignore)
}

func cycle(t *testing.T, overNetwork bool) {
	t.Helper()
	ts := mustTokenServer(t, registrytest.WithUser("u", "p"))
	tokens := httptest.NewServer(ts)
	defer tokens.Close()
	regSrv := httptest.NewServer(mustNew(t, registrytest.WithTokenAuth(tokens.URL+"/token", ts)))
	defer regSrv.Close()
	var proxy *registrytest.FaultProxy
	if overNetwork {
		var err error
		if proxy, err = registrytest.NewFaultProxyURL(regSrv.URL); err != nil {
			t.Fatal(err)
		}
	} else {
		proxy = registrytest.NewFaultProxy(regSrv.Config.Handler)
	}
	srv := httptest.NewServer(proxy)
	defer srv.Close()
	defer proxy.Close()

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	do := func(ctx context.Context, method, path, auth string, body string) (int, error) {
		req, _ := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, err
	}
	q := url.Values{"service": {ts.Service()}, "scope": {"repository:app:pull,push"}}
	req, _ := http.NewRequest("GET", tokens.URL+"/token?"+q.Encode(), nil)
	req.SetBasicAuth("u", "p")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ans struct{ Token string }
	jsonDecode(resp.Body, &ans)
	resp.Body.Close()
	auth := "Bearer " + ans.Token

	blob := strings.Repeat("x", 4096)
	d := digest.FromString(blob)
	ctx := context.Background()
	if st, err := do(ctx, "POST", "/v2/app/blobs/uploads/?digest="+d.String(), auth, blob); st != 201 || err != nil {
		t.Fatalf("push: %d %v", st, err)
	}
	addFaults(t, proxy,
		registrytest.Fault{Kind: registrytest.Slow, Method: "GET", At: 4000, BytesPerSecond: 2000},
		// A POST, which the transport does not retry on a new connection by itself.
		registrytest.Fault{Kind: registrytest.Drop, Method: "POST"},
		registrytest.Fault{Kind: registrytest.Stall, Method: "GET", At: 10},
	)
	if st, err := do(ctx, "GET", "/v2/app/blobs/"+d.String(), auth, ""); st != 200 || err != nil {
		t.Fatalf("slow pull: %d %v", st, err)
	}
	if _, err := do(ctx, "POST", "/v2/app/blobs/uploads/", auth, ""); err == nil {
		t.Fatal("a dropped connection answered")
	}
	// The stall waits for Close.
	stalled := make(chan error, 1)
	go func() {
		_, err := do(ctx, "GET", "/v2/app/blobs/"+d.String(), auth, "")
		stalled <- err
	}()
	for proxy.Count("GET", "/blobs/") < 2 {
		time.Sleep(time.Millisecond)
	}
	proxy.Close()
	if err := <-stalled; err == nil {
		t.Fatal("the stalled pull succeeded")
	}
}

// TestDependencies checks that the package stays light for its users and importable by
// registry's tests: no containerd client, no gRPC, no registry package.
func TestDependencies(t *testing.T) {
	t.Parallel()
	gobin, err := exec.LookPath("go")
	if err != nil { // go test runs with the toolchain that built it: use it
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	allowed := []string{
		"github.com/opencontainers/go-digest", "github.com/opencontainers/image-spec/",
		"github.com/distribution/reference", "github.com/containerd/errdefs",
		"github.com/opendao/dao", "github.com/opendao/dao/clock", "github.com/opendao/dao/internal/errclass",
		"github.com/opendao/dao/registry/registrytest",
	}
	for _, pkg := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(pkg, "/")
		if !strings.Contains(first, ".") {
			continue // the standard library
		}
		ok := false
		for _, a := range allowed {
			if pkg == a || (strings.HasSuffix(a, "/") && strings.HasPrefix(pkg, a)) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("registrytest depends on %s", pkg)
		}
	}
}
