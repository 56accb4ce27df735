package remote_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fault is a misbehaviour of faultProxy for requests whose path contains match.
type fault struct {
	// kind is "cut" (close the connection after at bytes of body), "flip" (invert the byte
	// at offset at), "short" (declare and send 10 bytes less), "stall" (send at bytes, then
	// nothing), "trickle" (send at bytes, then one byte every 50ms), "delay" (wait 300ms
	// before answering), "429" (with retryAfter) or "500".
	kind       string
	match      string
	at         int64
	retryAfter string
	// times is how many requests it spoils; -1 for all.
	times int
}

// faultProxy is a reverse proxy in front of a registry that spoils requests as its faults
// say, and logs every request.
type faultProxy struct {
	*httptest.Server
	target *url.URL

	mu     sync.Mutex
	faults []*fault
	log    []string // "METHOD PATH RANGE"
}

func startFaultProxy(t testing.TB, registryAddr string) *faultProxy {
	t.Helper()
	p := &faultProxy{target: &url.URL{Scheme: "http", Host: registryAddr}}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port, the registry part of references through it.
func (p *faultProxy) Addr() string { return strings.TrimPrefix(p.URL, "http://") }

// Ref returns a reference through the proxy.
func (p *faultProxy) Ref(repo string) string { return p.Addr() + "/" + repo }

func (p *faultProxy) add(f fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = append(p.faults, &f)
}

func (p *faultProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults, p.log = nil, nil
}

// requests returns the log entries that contain s.
func (p *faultProxy) requests(s string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, l := range p.log {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// take returns the fault for r, if any, and counts it.
func (p *faultProxy) take(r *http.Request) *fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = append(p.log, r.Method+" "+r.URL.Path+" "+r.Header.Get("Range"))
	for _, f := range p.faults {
		if f.times != 0 && strings.Contains(r.URL.Path, f.match) && r.Method == http.MethodGet {
			if f.times > 0 {
				f.times--
			}
			return f
		}
	}
	return nil
}

func (p *faultProxy) serve(w http.ResponseWriter, r *http.Request) {
	f := p.take(r)
	kind := ""
	if f != nil {
		kind = f.kind
	}
	switch kind {
	case "429":
		w.Header().Set("Retry-After", f.retryAfter)
		w.WriteHeader(http.StatusTooManyRequests)
		return
	case "500":
		http.Error(w, `{"errors":[{"code":"UNKNOWN","message":"injected"}]}`, http.StatusInternalServerError)
		return
	case "delay":
		time.Sleep(300 * time.Millisecond)
	}
	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host = p.target.Scheme, p.target.Host
	out.RequestURI = ""
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	body := io.Reader(resp.Body)
	if kind == "short" && resp.ContentLength > 10 {
		w.Header().Set("Content-Length", strconv.FormatInt(resp.ContentLength-10, 10))
		body = io.LimitReader(body, resp.ContentLength-10)
	}
	w.WriteHeader(resp.StatusCode)
	switch kind {
	case "cut", "stall":
		io.CopyN(w, body, f.at)
		w.(http.Flusher).Flush()
		if kind == "stall" {
			<-r.Context().Done()
		}
		panic(http.ErrAbortHandler) // closes the connection mid-body
	case "trickle":
		io.CopyN(w, body, f.at)
		w.(http.Flusher).Flush()
		var one [1]byte
		for {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := io.ReadFull(body, one[:]); err != nil {
				return
			}
			w.Write(one[:])
			w.(http.Flusher).Flush()
		}
	case "flip":
		data, _ := io.ReadAll(body)
		if f.at < int64(len(data)) {
			data[f.at] ^= 0xff
		}
		w.Write(data)
	default:
		io.Copy(w, body)
	}
}
