package registrytest_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"

	"github.com/opendao/dao"
	"github.com/opendao/dao/registry/registrytest"
)

// proxyEnv is a registry holding one blob, and a FaultProxy in front of it.
type proxyEnv struct {
	proxy *registrytest.FaultProxy
	URL   string
	blob  []byte
	path  string // of the blob
}

// newProxyEnv starts a registry with a blob of n random bytes and a proxy in front of it:
// in the same process (mode "handler") or over the network ("url").
func newProxyEnv(t *testing.T, mode string, n int) *proxyEnv {
	t.Helper()
	reg, regSrv := newRegistry(t)
	blob := make([]byte, n)
	rand.Read(blob)
	d := regSrv.pushBlob("app", blob)
	var p *registrytest.FaultProxy
	switch mode {
	case "handler":
		p = registrytest.NewFaultProxy(reg)
	case "url":
		var err error
		if p, err = registrytest.NewFaultProxyURL(strings.TrimPrefix(regSrv.URL, "http://")); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	t.Cleanup(p.Close) // first: it ends stalls that srv.Close would wait for
	return &proxyEnv{proxy: p, URL: srv.URL, blob: blob, path: "/v2/app/blobs/" + d.String()}
}

// get does a GET on a connection of its own (so that the transport cannot retry a dropped
// one behind the test's back) and reads the whole body.
func (e *proxyEnv) get(ctx context.Context, path string, header ...string) (*http.Response, []byte, error) {
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, "GET", e.URL+path, nil)
	if err != nil {
		return nil, nil, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

var proxyModes = []string{"handler", "url"}

func TestFaultKinds(t *testing.T) {
	t.Parallel()
	const size = 64 << 10
	for _, mode := range proxyModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := newProxyEnv(t, mode, size)
			for _, tc := range []struct {
				name  string
				fault registrytest.Fault
				check func(t *testing.T, resp *http.Response, body []byte, err error, took time.Duration)
			}{{
				name:  "respond 500",
				fault: registrytest.Fault{Kind: registrytest.Respond},
				check: func(t *testing.T, resp *http.Response, body []byte, err error, _ time.Duration) {
					if err != nil || resp.StatusCode != 500 || errorCode(body) != "UNKNOWN" {
						t.Errorf("%v %v %s", resp.Status, err, body)
					}
				},
			}, {
				name:  "respond 429 with Retry-After",
				fault: registrytest.Fault{Kind: registrytest.Respond, StatusCode: 429, Header: http.Header{"Retry-After": {"3"}}},
				check: func(t *testing.T, resp *http.Response, body []byte, err error, _ time.Duration) {
					if err != nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3" || errorCode(body) != "TOOMANYREQUESTS" {
						t.Errorf("%v %v %q %s", resp.Status, err, resp.Header.Get("Retry-After"), body)
					}
				},
			}, {
				name:  "respond with a body",
				fault: registrytest.Fault{Kind: registrytest.Respond, StatusCode: 502, Body: []byte("bad gateway")},
				check: func(t *testing.T, resp *http.Response, body []byte, err error, _ time.Duration) {
					if err != nil || resp.StatusCode != 502 || string(body) != "bad gateway" {
						t.Errorf("%v %v %q", resp.Status, err, body)
					}
				},
			}, {
				name:  "delay",
				fault: registrytest.Fault{Kind: registrytest.Delay, Duration: 100 * time.Millisecond},
				check: func(t *testing.T, resp *http.Response, body []byte, err error, took time.Duration) {
					if err != nil || !bytes.Equal(body, e.blob) || took < 100*time.Millisecond {
						t.Errorf("%v, %d bytes, took %v", err, len(body), took)
					}
				},
			}, {
				name:  "drop",
				fault: registrytest.Fault{Kind: registrytest.Drop},
				check: func(t *testing.T, resp *http.Response, _ []byte, err error, _ time.Duration) {
					if err == nil {
						t.Errorf("a dropped connection answered %s", resp.Status)
					}
				},
			}, {
				name:  "cut",
				fault: registrytest.Fault{Kind: registrytest.Cut, At: 1000},
				check: func(t *testing.T, resp *http.Response, body []byte, err error, _ time.Duration) {
					if !errors.Is(err, io.ErrUnexpectedEOF) || !bytes.Equal(body, e.blob[:1000]) {
						t.Errorf("%v after %d bytes, want an unexpected EOF after 1000", err, len(body))
					}
				},
			}, {
				name:  "cut past the end",
				fault: registrytest.Fault{Kind: registrytest.Cut, At: size + 10},
				check: func(t *testing.T, resp *http.Response, body []byte, err error, _ time.Duration) {
					// The whole body went, but not the end of the answer: a chunked
					// answer would lack its last chunk; one with a length is complete.
					if len(body) != size {
						t.Errorf("%v after %d bytes", err, len(body))
					}
				},
			}, {
				name:  "stall for a while",
				fault: registrytest.Fault{Kind: registrytest.Stall, At: 500, Duration: 150 * time.Millisecond},
				check: func(t *testing.T, resp *http.Response, body []byte, err error, took time.Duration) {
					if err != nil || !bytes.Equal(body, e.blob) || took < 150*time.Millisecond {
						t.Errorf("%v, %d bytes, took %v", err, len(body), took)
					}
				},
			}, {
				name:  "truncate",
				fault: registrytest.Fault{Kind: registrytest.Truncate, At: 10},
				check: func(t *testing.T, resp *http.Response, body []byte, err error, _ time.Duration) {
					if err != nil || resp.ContentLength != 10 || !bytes.Equal(body, e.blob[:10]) {
						t.Errorf("%v, length %d, %d bytes", err, resp.ContentLength, len(body))
					}
				},
			}, {
				name:  "truncate from the end",
				fault: registrytest.Fault{Kind: registrytest.Truncate, At: -10},
				check: func(t *testing.T, resp *http.Response, body []byte, err error, _ time.Duration) {
					if err != nil || resp.ContentLength != size-10 || !bytes.Equal(body, e.blob[:size-10]) {
						t.Errorf("%v, length %d, %d bytes", err, resp.ContentLength, len(body))
					}
				},
			}, {
				name:  "corrupt",
				fault: registrytest.Fault{Kind: registrytest.Corrupt, At: 40000},
				check: func(t *testing.T, resp *http.Response, body []byte, err error, _ time.Duration) {
					if err != nil || len(body) != size || body[40000] != ^e.blob[40000] || !bytes.Equal(body[:40000], e.blob[:40000]) || !bytes.Equal(body[40001:], e.blob[40001:]) {
						t.Errorf("%v, %d bytes, byte 40000 %x (was %x)", err, len(body), body[40000], e.blob[40000])
					}
					if resp.Header.Get("Docker-Content-Digest") == digest.FromBytes(body).String() {
						t.Errorf("the corrupt body has its digest")
					}
				},
			}, {
				name:  "replace",
				fault: registrytest.Fault{Kind: registrytest.Replace, Body: []byte("a lie")},
				check: func(t *testing.T, resp *http.Response, body []byte, err error, _ time.Duration) {
					if err != nil || string(body) != "a lie" || resp.ContentLength != 5 {
						t.Errorf("%v, length %d, %q", err, resp.ContentLength, body)
					}
				},
			}, {
				name:  "slow",
				fault: registrytest.Fault{Kind: registrytest.Slow, At: size - 100, BytesPerSecond: 500},
				check: func(t *testing.T, resp *http.Response, body []byte, err error, took time.Duration) {
					// 100 bytes at 500 B/s: 0.2s.
					if err != nil || !bytes.Equal(body, e.blob) || took < 180*time.Millisecond {
						t.Errorf("%v, %d bytes, took %v", err, len(body), took)
					}
				},
			}} {
				e.proxy.Reset()
				f := tc.fault
				f.Method, f.Path = "GET", "/blobs/"
				addFaults(t, e.proxy, f)
				start := time.Now()
				resp, body, err := e.get(context.Background(), e.path)
				tc.check(t, resp, body, err, time.Since(start))
				// A one-shot fault: the next request goes through.
				resp, body, err = e.get(context.Background(), e.path)
				if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, e.blob) {
					t.Errorf("%s: the request after the fault: %v, %d bytes", tc.name, err, len(body))
				}
				reqs := e.proxy.Requests()
				if len(reqs) != 2 || reqs[0].Fault != tc.fault.Kind || reqs[1].Fault != registrytest.None || reqs[1].Status != 200 {
					t.Errorf("%s: requests %v", tc.name, reqs)
				}
			}
		})
	}
}

// TestStallUntilTheEnd stalls for ever: the client's deadline ends the request, and Close
// ends one that nobody ends.
func TestStallUntilTheEnd(t *testing.T) {
	t.Parallel()
	for _, mode := range proxyModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := newProxyEnv(t, mode, 10000)
			addFaults(t, e.proxy, registrytest.Fault{Kind: registrytest.Stall, At: 100, Times: registrytest.Forever})
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			_, body, err := e.get(ctx, e.path)
			if !errors.Is(err, context.DeadlineExceeded) || len(body) != 100 {
				t.Errorf("stalled body: %v after %d bytes, want the deadline after 100", err, len(body))
			}
			// A client with no deadline waits until Close ends the stall.
			done := make(chan error, 1)
			go func() {
				_, _, err := e.get(context.Background(), e.path)
				done <- err
			}()
			time.Sleep(100 * time.Millisecond)
			select {
			case err := <-done:
				t.Fatalf("a stall for ever ended by itself: %v", err)
			default:
			}
			e.proxy.Close()
			select {
			case err := <-done:
				if err == nil {
					t.Errorf("a stall ended by Close: no error")
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not end the stall")
			}
			// After Close, a delay does not wait, and the request goes through.
			e.proxy.Reset()
			addFaults(t, e.proxy, registrytest.Fault{Kind: registrytest.Delay, Duration: time.Hour})
			resp, body, err := e.get(context.Background(), e.path)
			if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, e.blob) {
				t.Errorf("a delay after Close: %v, %d bytes", err, len(body))
			}
		})
	}
}

func TestFaultMatching(t *testing.T) {
	t.Parallel()
	e := newProxyEnv(t, "handler", 100)
	addFaults(t, e.proxy,
		registrytest.Fault{Kind: registrytest.Respond, StatusCode: 503, Method: "HEAD", Times: 2},
		registrytest.Fault{Kind: registrytest.Respond, StatusCode: 502, Path: "/tags/list", Times: registrytest.Forever},
		registrytest.Fault{Kind: registrytest.Respond, StatusCode: 504, Match: func(r *http.Request) bool { return r.Header.Get("Range") != "" }},
	)
	head := func() int {
		resp, err := http.Head(e.URL + e.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	status := func(path string, header ...string) int {
		resp, _, err := e.get(context.Background(), path, header...)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	for i, want := range []int{503, 503, 200, 200} {
		if got := head(); got != want {
			t.Errorf("HEAD %d: %d, want %d", i, got, want)
		}
	}
	for i := range 3 {
		if got := status("/v2/app/tags/list"); got != 502 {
			t.Errorf("tags/list %d: %d, want 502 for ever", i, got)
		}
	}
	if got := status(e.path, "Range", "bytes=0-1"); got != 504 {
		t.Errorf("ranged GET: %d, want 504", got)
	}
	if got := status(e.path, "Range", "bytes=0-1"); got != 206 {
		t.Errorf("second ranged GET: %d, want 206", got)
	}
	if got := status(e.path); got != 200 {
		t.Errorf("GET: %d", got)
	}
	if got, want := e.proxy.Count("HEAD", "/blobs/"), 4; got != want {
		t.Errorf("Count(HEAD, /blobs/) = %d, want %d", got, want)
	}
	if got := e.proxy.Count("", "/v2/app/"); got != 10 {
		t.Errorf("Count(\"\", /v2/app/) = %d, want 10", got)
	}
	if got := e.proxy.Counts()["GET /v2/app/tags/list"]; got != 3 {
		t.Errorf("Counts()[GET tags/list] = %d, want 3", got)
	}
	if r := e.proxy.Requests()[0]; r.String() != "HEAD "+e.path+" -> 503 respond" {
		t.Errorf("first request %q", r)
	}
	e.proxy.Clear()
	if got := status("/v2/app/tags/list"); got != 200 {
		t.Errorf("tags/list after Clear: %d, want the registry's 200", got)
	}
	if len(e.proxy.Requests()) != 11 {
		t.Errorf("Clear forgot the requests")
	}
	e.proxy.Reset()
	if len(e.proxy.Requests()) != 0 {
		t.Errorf("Reset kept the requests")
	}
}

// TestFaultProxyURLKeepsHost proxies to a server at an address: the Host header goes as the
// client sent it, and the body of a request too.
func TestFaultProxyURLKeepsHost(t *testing.T) {
	t.Parallel()
	echo := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Location", "http://"+r.Host+"/v2/x")
		w.Write([]byte(r.Method + " " + string(body)))
	}))
	p, err := registrytest.NewFaultProxyURL(echo.URL)
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, p)
	t.Cleanup(p.Close)
	a := srv.do("PUT", "/v2/", []byte("payload")).want(t, 200, "")
	if string(a.body) != "PUT payload" || a.Header.Get("Location") != srv.URL+"/v2/x" {
		t.Errorf("through the proxy: %q, Location %q (proxy %s)", a.body, a.Header.Get("Location"), srv.URL)
	}
	// An upstream that is gone is a 502.
	gone, _ := registrytest.NewFaultProxyURL("127.0.0.1:1")
	srv = serve(t, gone)
	srv.do("GET", "/v2/", nil).want(t, http.StatusBadGateway, "UNKNOWN")
}

func TestBadFaults(t *testing.T) {
	t.Parallel()
	p := registrytest.NewFaultProxy(http.NotFoundHandler())
	for _, f := range []registrytest.Fault{
		{},
		{Kind: 99},
		{Kind: registrytest.Cut, At: -1},
		{Kind: registrytest.Slow},
		{Kind: registrytest.Delay, Duration: -time.Second},
		{Kind: registrytest.Respond, StatusCode: 42},
		{Kind: registrytest.Respond, Times: -2},
	} {
		err := p.Add(f)
		if !errors.Is(err, registrytest.ErrInvalidFault) || !errors.Is(err, dao.ErrInvalid) || !errdefs.IsInvalidArgument(err) {
			t.Errorf("Add(%+v): %v, want ErrInvalidFault", f, err)
		}
	}
	// Several faults, two of them bad: the error names both, and none is added, not even
	// the good one.
	err := p.Add(
		registrytest.Fault{Kind: registrytest.Respond, StatusCode: 503, Times: registrytest.Forever},
		registrytest.Fault{Kind: registrytest.Slow},
		registrytest.Fault{Kind: registrytest.Cut, At: -1},
	)
	var me interface{ Unwrap() []error }
	if !errors.Is(err, registrytest.ErrInvalidFault) || !errors.As(err, &me) || len(me.Unwrap()) != 2 ||
		!strings.Contains(err.Error(), "fault 1: ") || !strings.Contains(err.Error(), "fault 2: ") {
		t.Errorf("Add of two bad faults among three: %v", err)
	}
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("GET", "/v2/", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("after a refused Add, a request got %d, want the upstream's 404", rec.Code)
	}
	if got := registrytest.FaultKind(42).String(); got != "FaultKind(42)" {
		t.Errorf("String of an unknown kind: %q", got)
	}
	for k := registrytest.None; k <= registrytest.Slow; k++ {
		if s := k.String(); strings.HasPrefix(s, "FaultKind") || s != strings.ToLower(s) {
			t.Errorf("kind %d: %q", int(k), s)
		}
	}
}
