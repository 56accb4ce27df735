package remote_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/remote"
)

func TestOptionsRefuseBadValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opt  remote.Option
	}{
		{"nil HTTP client", remote.WithHTTPClient(nil)},
		{"mirror without scheme", remote.WithHosts(map[string]remote.HostConfig{"r.example": {Mirrors: []remote.Mirror{{URL: "mirror.example"}}}})},
		{"mirror with unknown capability", remote.WithHosts(map[string]remote.HostConfig{"r.example": {Mirrors: []remote.Mirror{{URL: "https://m.example", Capabilities: 1 << 6}}}})},
		{"host with a path", remote.WithHosts(map[string]remote.HostConfig{"r.example/x": {}})},
		{"credentials for no host", remote.WithCredentials("", remote.Credentials{})},
		{"missing docker config", remote.WithDockerConfig(filepath.Join(t.TempDir(), "none.json"))},
		{"no attempt", remote.WithRetry(remote.RetryPolicy{MaxAttempts: 0})},
		{"max delay below min", remote.WithRetry(remote.RetryPolicy{MaxAttempts: 1, MinDelay: time.Second, MaxDelay: time.Millisecond})},
		{"zero rate", remote.WithRateLimit("r.example", 0, 1)},
		{"zero burst", remote.WithRateLimit("r.example", 1, 0)},
		{"zero concurrency", remote.WithMaxConcurrency(0)},
		{"nil progress", remote.WithProgress(nil)},
		{"nil clock", remote.WithClock(nil)},
		{"empty user agent", remote.WithUserAgent("")},
		{"empty spool dir", remote.WithSpoolDir("")},
		{"tiny range chunks", remote.WithRangeDownload(1024, 4)},
		{"negative upload chunk", remote.WithChunkedUpload(-1)},
		{"negative speed", remote.WithSpeedLimit(remote.SpeedLimit{BytesPerSecond: -1, Period: time.Second})},
		{"negative speed period", remote.WithSpeedLimit(remote.SpeedLimit{BytesPerSecond: 1, Period: -time.Second})},
	} {
		if _, err := remote.NewClient(tc.opt); !errors.Is(err, remote.ErrInvalidOption) {
			t.Errorf("%s: NewClient: %v, want ErrInvalidOption", tc.name, err)
		}
	}
	if _, err := remote.NewClient(remote.WithDockerConfig("")); err != nil {
		t.Errorf("NewClient with the default docker config, which may be missing: %v", err)
	}
}

func TestDockerConfigCredentials(t *testing.T) {
	var seen sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		user, pass, _ := r.BasicAuth()
		seen.Store(user+":"+pass, true)
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Header().Set("Docker-Content-Digest", testDigest)
		w.Header().Set("Content-Length", "10")
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := t.TempDir()
	cfg := `{"auths":{"https://index.docker.io/v1/":{"auth":"aHViOmh1Yg=="},"` + host + `":{"username":"u","password":"p"}},"credHelpers":{"x.example":"secret"}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
	c := newClient(t, []string{host}, remote.WithDockerConfig(""))
	if _, err := c.Resolve(context.Background(), host+"/app:1"); err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if _, ok := seen.Load("u:p"); !ok {
		t.Errorf("the registry did not see the docker config's credentials")
	}
}

// countingServer answers every request after delay, counting requests and the most in
// flight at once.
type countingServer struct {
	*httptest.Server
	requests, inFlight, maxInFlight atomic.Int64
}

func startCountingServer(t *testing.T, delay time.Duration, status int, header http.Header) *countingServer {
	s := &countingServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		n := s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		for {
			m := s.maxInFlight.Load()
			if n <= m || s.maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(delay)
		for k, v := range header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Header().Set("Docker-Content-Digest", testDigest)
		w.Header().Set("Content-Length", "10")
		w.WriteHeader(status)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *countingServer) host() string { return strings.TrimPrefix(s.URL, "http://") }

func TestMaxConcurrency(t *testing.T) {
	s := startCountingServer(t, 20*time.Millisecond, http.StatusOK, nil)
	c := newClient(t, []string{s.host()}, remote.WithMaxConcurrency(2))
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Resolve(context.Background(), s.host()+"/app:1"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := s.maxInFlight.Load(); got > 2 {
		t.Errorf("%d requests in flight at once, want at most 2", got)
	}
}

func TestRateLimit(t *testing.T) {
	s := startCountingServer(t, 0, http.StatusOK, nil)
	clk := newFakeClock()
	c := newClient(t, []string{s.host()}, remote.WithClock(clk), remote.WithRateLimit(s.host(), 10, 2))
	for i := 0; i < 6; i++ {
		if _, err := c.Resolve(context.Background(), s.host()+"/app:1"); err != nil {
			t.Fatal(err)
		}
	}
	// A burst of 2, then one request every 100ms.
	var total time.Duration
	for _, d := range clk.sleeps() {
		total += d
	}
	if len(clk.sleeps()) != 4 || total < 390*time.Millisecond || total > 410*time.Millisecond {
		t.Errorf("waits %v, want 4 of 100ms", clk.sleeps())
	}
}

func TestRetryPolicy(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		header     http.Header
		attempts   int
		wantErr    error
		wantSleeps []time.Duration
	}{
		{"503 is retried up to MaxAttempts", http.StatusServiceUnavailable, nil, 3, nil, nil},
		{"429 waits Retry-After in full", http.StatusTooManyRequests, http.Header{"Retry-After": {"7"}}, 3, remote.ErrTooManyRequests, []time.Duration{7 * time.Second, 7 * time.Second}},
		{"404 is not retried", http.StatusNotFound, nil, 1, remote.ErrManifestUnknown, nil},
		{"501 is not retried", http.StatusNotImplemented, nil, 1, remote.ErrUnsupported, nil}, // but a GET follows the HEAD
		{"403 is not retried", http.StatusForbidden, nil, 1, remote.ErrDenied, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startCountingServer(t, 0, tc.status, tc.header)
			clk := newFakeClock()
			c := newClient(t, []string{s.host()}, remote.WithClock(clk),
				remote.WithRetry(remote.RetryPolicy{MaxAttempts: 3, MinDelay: 100 * time.Millisecond, MaxDelay: time.Second, MaxRetryAfter: time.Minute}))
			_, err := c.Resolve(context.Background(), s.host()+"/app:1")
			var re *remote.ResponseError
			if !errors.As(err, &re) || re.StatusCode != tc.status {
				t.Fatalf("Resolve: %v, want a ResponseError of %d", err, tc.status)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Resolve: %v, want %v", err, tc.wantErr)
			}
			// One request per attempt; Resolve follows a HEAD that the registry does not
			// support with a GET.
			wantRequests := int64(tc.attempts)
			if tc.status == http.StatusNotImplemented {
				wantRequests++
			}
			if got := s.requests.Load(); got != wantRequests {
				t.Errorf("%d requests, want %d", got, wantRequests)
			}
			if tc.wantSleeps != nil {
				if diff := cmp.Diff(tc.wantSleeps, clk.sleeps()); diff != "" {
					t.Errorf("sleeps (-want +got):\n%s", diff)
				}
			} else if got := len(clk.sleeps()); got != tc.attempts-1 {
				t.Errorf("%d sleeps, want %d", got, tc.attempts-1)
			}
			for i, d := range clk.sleeps() {
				if tc.wantSleeps == nil && (d < 50*time.Millisecond<<i || d > 100*time.Millisecond<<i) {
					t.Errorf("backoff %d is %v, want within [%v, %v]", i+1, d, 50*time.Millisecond<<i, 100*time.Millisecond<<i)
				}
			}
		})
	}
}

func TestResponseErrorMatchesSentinels(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  *remote.ResponseError
		want []error
		not  []error
	}{
		{&remote.ResponseError{StatusCode: 404, URL: "https://r/v2/app/manifests/1"}, []error{remote.ErrNotFound, remote.ErrManifestUnknown}, []error{remote.ErrBlobUnknown}},
		{&remote.ResponseError{StatusCode: 404, URL: "https://r/v2/app/blobs/sha256:1"}, []error{remote.ErrNotFound, remote.ErrBlobUnknown, oci.ErrBlobNotFound}, []error{remote.ErrManifestUnknown}},
		{&remote.ResponseError{StatusCode: 404, Errors: []remote.ErrorInfo{{Code: "NAME_UNKNOWN"}}}, []error{remote.ErrNotFound, remote.ErrNameUnknown}, []error{remote.ErrManifestUnknown}},
		{&remote.ResponseError{StatusCode: 401}, []error{remote.ErrUnauthorized}, []error{remote.ErrDenied}},
		{&remote.ResponseError{StatusCode: 403, Errors: []remote.ErrorInfo{{Code: "DENIED"}}}, []error{remote.ErrDenied}, []error{remote.ErrUnauthorized}},
		{&remote.ResponseError{StatusCode: 429}, []error{remote.ErrTooManyRequests}, nil},
		{&remote.ResponseError{StatusCode: 405}, []error{remote.ErrUnsupported}, nil},
	} {
		for _, w := range tc.want {
			if !errors.Is(tc.err, w) {
				t.Errorf("%v does not match %v", tc.err, w)
			}
		}
		for _, w := range tc.not {
			if errors.Is(tc.err, w) {
				t.Errorf("%v matches %v", tc.err, w)
			}
		}
	}
	if !errors.Is(oci.ErrSizeMismatch, oci.ErrDigestMismatch) {
		t.Errorf("ErrSizeMismatch does not match ErrDigestMismatch")
	}
	e := &remote.ResponseError{Method: "GET", URL: "https://r.example/v2/app/manifests/1", StatusCode: 404, Errors: []remote.ErrorInfo{{Code: "MANIFEST_UNKNOWN", Message: "manifest unknown"}}}
	if got, want := e.Error(), "registry: GET https://r.example/v2/app/manifests/1: 404 Not Found: MANIFEST_UNKNOWN: manifest unknown"; got != want {
		t.Errorf("Error():\n got %q\nwant %q", got, want)
	}
}
