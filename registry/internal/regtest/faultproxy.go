package regtest

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

// Fault is a misbehaviour of FaultProxy for GET requests whose path contains Match.
type Fault struct {
	// Kind is "cut" (close the connection after At bytes of body), "flip" (invert the byte
	// at offset At), "short" (declare and send 10 bytes less), "stall" (send At bytes, then
	// nothing), "trickle" (send At bytes, then one byte every 50ms), "delay" (wait 300ms
	// before answering), "429" (with RetryAfter) or "500".
	Kind       string
	Match      string
	At         int64
	RetryAfter string
	// Times is how many requests it spoils; -1 for all.
	Times int
}

// FaultProxy is a reverse proxy in front of a registry that spoils requests as its faults
// say, and logs every request.
type FaultProxy struct {
	*httptest.Server
	target *url.URL

	mu     sync.Mutex
	faults []*Fault
	log    []string // "METHOD PATH RANGE"
}

// StartFaultProxy starts a FaultProxy in front of the registry at registryAddr, closed when
// the test ends.
func StartFaultProxy(t testing.TB, registryAddr string) *FaultProxy {
	t.Helper()
	p := &FaultProxy{target: &url.URL{Scheme: "http", Host: registryAddr}}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port, the registry part of references through it.
func (p *FaultProxy) Addr() string { return strings.TrimPrefix(p.URL, "http://") }

// Ref returns a reference through the proxy.
func (p *FaultProxy) Ref(repo string) string { return p.Addr() + "/" + repo }

// Add adds a fault.
func (p *FaultProxy) Add(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = append(p.faults, &f)
}

// Reset drops the faults and the log.
func (p *FaultProxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults, p.log = nil, nil
}

// Requests returns the log entries that contain s.
func (p *FaultProxy) Requests(s string) []string {
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

// take returns the Fault for r, if any, and counts it.
func (p *FaultProxy) take(r *http.Request) *Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = append(p.log, r.Method+" "+r.URL.Path+" "+r.Header.Get("Range"))
	for _, f := range p.faults {
		if f.Times != 0 && strings.Contains(r.URL.Path, f.Match) && r.Method == http.MethodGet {
			if f.Times > 0 {
				f.Times--
			}
			return f
		}
	}
	return nil
}

func (p *FaultProxy) serve(w http.ResponseWriter, r *http.Request) {
	f := p.take(r)
	kind := ""
	if f != nil {
		kind = f.Kind
	}
	switch kind {
	case "429":
		w.Header().Set("Retry-After", f.RetryAfter)
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
		io.CopyN(w, body, f.At)
		w.(http.Flusher).Flush()
		if kind == "stall" {
			<-r.Context().Done()
		}
		panic(http.ErrAbortHandler) // closes the connection mid-body
	case "trickle":
		io.CopyN(w, body, f.At)
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
		if f.At < int64(len(data)) {
			data[f.At] ^= 0xff
		}
		w.Write(data)
	default:
		io.Copy(w, body)
	}
}
