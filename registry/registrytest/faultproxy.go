package registrytest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FaultKind is a way a FaultProxy spoils an answer.
type FaultKind int

// The kinds of fault. Those that spoil a body (Cut, Stall, Truncate, Corrupt, Replace,
// Slow) let the upstream answer with its status and headers and spoil what follows; At
// counts bytes of the upstream's body.
const (
	// None is no fault: the request goes through as it is.
	None FaultKind = iota
	// Respond answers with StatusCode (500 if 0), Header and Body (a spec error body if
	// nil: TOOMANYREQUESTS for 429, UNKNOWN otherwise) without asking upstream. A 429 with
	// Header {"Retry-After": {"3"}} is a registry's rate limit.
	Respond
	// Delay waits Duration (300ms if 0) before the request goes upstream.
	Delay
	// Drop takes the connection over and closes it without an answer. Go's http.Transport
	// sends an idempotent request (GET, HEAD) again by itself, on a new connection, when a
	// connection it reused is closed before any answer: give such a fault Times 2, or the
	// client a new connection, for it to see the drop.
	Drop
	// Cut sends At bytes of the body, then closes the connection: the client sees an
	// unexpected EOF.
	Cut
	// Stall sends At bytes of the body, then nothing for Duration, then the rest; with a
	// Duration of 0 it sends nothing more until the client gives up or the proxy is closed,
	// and then closes the connection.
	Stall
	// Truncate sends the first At bytes of the body and declares that Content-Length, a
	// well-formed answer that is too short; a negative At keeps all but the last -At bytes
	// (of an answer that declared its length; one that did not goes through whole).
	Truncate
	// Corrupt inverts the byte at offset At of the body: the content no longer has its
	// digest.
	Corrupt
	// Replace sends Body instead of the upstream's body, with its length: a registry that
	// lies about content.
	Replace
	// Slow sends At bytes of the body, then the rest at BytesPerSecond.
	Slow
)

var faultNames = [...]string{"none", "respond", "delay", "drop", "cut", "stall", "truncate", "corrupt", "replace", "slow"}

// String returns the kind's name, in lower case.
func (k FaultKind) String() string {
	if k >= 0 && int(k) < len(faultNames) {
		return faultNames[k]
	}
	return "FaultKind(" + strconv.Itoa(int(k)) + ")"
}

// Forever is the Times of a fault that spoils every request it matches.
const Forever = -1

// Fault is a misbehaviour of a FaultProxy, for the requests it matches.
type Fault struct {
	Kind FaultKind

	// Method is the method of the requests the fault spoils; "" for every method.
	Method string
	// Path is part of the URL path of the requests it spoils (a digest, "/manifests/",
	// "/tags/list"); "" for every path.
	Path string
	// Match, if not nil, must also be true of the request.
	Match func(*http.Request) bool
	// Times is how many matching requests the fault spoils: 0 means one (a one-shot
	// fault), Forever every one.
	Times int

	// At is the body offset of Cut, Stall, Truncate, Corrupt and Slow.
	At int64
	// Duration is how long Delay and Stall wait.
	Duration time.Duration
	// StatusCode, Header and Body are Respond's answer; Body is also Replace's.
	StatusCode int
	Header     http.Header
	Body       []byte
	// BytesPerSecond is Slow's speed.
	BytesPerSecond int64
}

// check returns why f cannot be applied.
func (f Fault) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidFault, f.Kind, fmt.Sprintf(format, args...))
	}
	switch {
	case f.Kind <= None || int(f.Kind) >= len(faultNames):
		return bad("unknown kind")
	case f.Times < Forever:
		return bad("Times %d", f.Times)
	case f.At < 0 && f.Kind != Truncate:
		return bad("negative At %d", f.At)
	case f.Duration < 0:
		return bad("negative Duration %v", f.Duration)
	case f.Kind == Respond && f.StatusCode != 0 && (f.StatusCode < 100 || f.StatusCode > 999):
		return bad("StatusCode %d", f.StatusCode)
	case f.Kind == Slow && f.BytesPerSecond <= 0:
		return bad("BytesPerSecond %d is not positive", f.BytesPerSecond)
	}
	return nil
}

func (f *Fault) matches(r *http.Request) bool {
	return (f.Method == "" || f.Method == r.Method) && strings.Contains(r.URL.Path, f.Path) &&
		(f.Match == nil || f.Match(r))
}

// FaultProxy is an http.Handler in front of a registry (or any server) that spoils the
// answers to the requests its faults match, and records every request it sees. Serve it with
// httptest.NewServer(proxy), and Close it before that server (defer srv.Close() first,
// then defer proxy.Close()): Server.Close waits for the stalls that proxy.Close ends.
//
// Faults apply in the order they were added: a request gets the first one that matches it
// and has times left. It is safe for simultaneous use; faults may be added while requests
// go through.
type FaultProxy struct {
	upstream  http.Handler
	transport *http.Transport // of a proxy to a URL, closed by Close

	closed    chan struct{}
	closeOnce sync.Once

	mu     sync.Mutex
	faults []*Fault
	log    []Request
	// gen counts Resets, so that an answer after one does not write into the new log.
	gen int
}

var _ http.Handler = (*FaultProxy)(nil)

// NewFaultProxy returns a proxy in front of upstream, a handler served in the same process
// (a *Registry, say): requests go to it without a network hop, and its answers are spoiled
// on their way out.
func NewFaultProxy(upstream http.Handler) *FaultProxy {
	return &FaultProxy{upstream: upstream, closed: make(chan struct{})}
}

// NewFaultProxyURL returns a proxy in front of the server at upstream, "http://host:port"
// or "host:port" (a registry in another process, such as Distribution's). The Host header
// goes upstream as the client sent it, so that the Location headers the registry builds
// point back at the proxy. Each request has a connection of its own to upstream, closed
// when it is answered, so that nothing is left open. It returns an
// error matching ErrInvalidOption if upstream is not such an address.
func NewFaultProxyURL(upstream string) (*FaultProxy, error) {
	if !strings.Contains(upstream, "://") {
		upstream = "http://" + upstream
	}
	target, err := url.Parse(upstream)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		return nil, optionError("NewFaultProxyURL", "upstream %q is not an http(s) address", upstream)
	}
	tr := &http.Transport{
		// The client's Accept-Encoding goes through; the proxy decompresses nothing.
		DisableCompression: true,
		// A connection upstream per request: none is left open for Close to miss.
		DisableKeepAlives: true,
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
		},
		Transport:     tr,
		FlushInterval: -1, // every write goes to the client at once, for faults to be seen
		ErrorLog:      log.New(io.Discard, "", 0),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			writeError(w, r, newError(http.StatusBadGateway, codeUnknown, "upstream: %v", err))
		},
	}
	p := NewFaultProxy(rp)
	p.transport = tr
	return p, nil
}

// Add adds faults, after those the proxy has. If it cannot apply one of them (an unknown
// Kind, a negative At other than Truncate's, Slow without BytesPerSecond), it adds none and
// returns an error that names every such fault by its index and says why: it matches
// ErrInvalidFault (and so dao.ErrInvalid), and its Unwrap() []error gives one error per
// refused fault.
func (p *FaultProxy) Add(faults ...Fault) error {
	var errs faultErrors
	for i, f := range faults {
		if err := f.check(); err != nil {
			errs = append(errs, fmt.Errorf("fault %d: %w", i, err))
		}
	}
	if errs != nil {
		return errs
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range faults {
		f := f
		if f.Times == 0 {
			f.Times = 1
		}
		f.Header = f.Header.Clone()
		f.Body = slices.Clone(f.Body)
		p.faults = append(p.faults, &f)
	}
	return nil
}

// faultErrors are the errors of the faults Add refused, one per fault; errors.Is and
// errors.As see each (through Unwrap() []error, as with go-multierror, which this package
// does without to stay light for its users).
type faultErrors []error

// Error returns the errors on one line, "a; b", for a test's log.
func (e faultErrors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e faultErrors) Unwrap() []error { return e }

// Clear removes every fault; the record of requests stays.
func (p *FaultProxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = nil
}

// Reset removes every fault and forgets the requests seen.
func (p *FaultProxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults, p.log = nil, nil
	p.gen++
}

// Requests returns the requests the proxy saw, in the order they came.
func (p *FaultProxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.log)
}

// Count returns how many requests of method ("" for any) whose path contains path the proxy
// saw.
func (p *FaultProxy) Count(method, path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.log {
		if (method == "" || r.Method == method) && strings.Contains(r.Path, path) {
			n++
		}
	}
	return n
}

// Counts returns how many requests the proxy saw of each "METHOD PATH".
func (p *FaultProxy) Counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for _, r := range p.log {
		out[r.Method+" "+r.Path]++
	}
	return out
}

// Close ends every stall and slow body now, closing their connections, cuts every delay
// short, and closes the idle connections to upstream; after it, stalls and slow bodies end
// their answers at once and delays do not wait. It may be called more than once.
func (p *FaultProxy) Close() {
	p.closeOnce.Do(func() { close(p.closed) })
	if p.transport != nil {
		p.transport.CloseIdleConnections()
	}
}

// take records r and returns the fault to apply to it, if any, and the index and generation
// of its record.
func (p *FaultProxy) take(r *http.Request) (Fault, int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rec := newRequest(r)
	var out Fault
	for _, f := range p.faults {
		if f.Times != 0 && f.matches(r) {
			if f.Times > 0 {
				f.Times--
			}
			out = *f
			rec.Fault = f.Kind
			break
		}
	}
	p.log = append(p.log, rec)
	return out, len(p.log) - 1, p.gen
}

// wait waits d, or until ctx ends or the proxy is closed; d == 0 waits for ever. It reports
// whether d went by.
func (p *FaultProxy) wait(ctx context.Context, d time.Duration) bool {
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-timeout:
		return true
	case <-ctx.Done():
	case <-p.closed:
	}
	return false
}

// ServeHTTP sends r upstream, or not, as the faults say.
func (p *FaultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, i, gen := p.take(r)
	sw := &statusWriter{ResponseWriter: w, onStatus: func(status int) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if gen == p.gen {
			p.log[i].Status = status
		}
	}}
	switch f.Kind {
	case Respond:
		status := f.StatusCode
		if status == 0 {
			status = http.StatusInternalServerError
		}
		for k, v := range f.Header {
			sw.Header()[k] = v
		}
		if f.Body == nil {
			code := codeUnknown
			if status == http.StatusTooManyRequests {
				code = codeTooManyRequests
			}
			writeError(sw, r, newError(status, code, "injected by registrytest.FaultProxy"))
			return
		}
		sw.Header().Set("Content-Length", strconv.Itoa(len(f.Body)))
		sw.WriteHeader(status)
		sw.Write(f.Body)
		return
	case Drop:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
			return
		}
		panic(http.ErrAbortHandler) // HTTP/2: abort the stream
	case Delay:
		d := f.Duration
		if d == 0 {
			d = 300 * time.Millisecond
		}
		if !p.wait(r.Context(), d) && r.Context().Err() != nil {
			return // the client is gone; after Close, the request goes on at once
		}
	}
	if f.Kind == None || f.Kind == Delay {
		p.upstream.ServeHTTP(sw, r)
		return
	}
	fw := &faultWriter{p: p, w: sw, rc: http.NewResponseController(sw), f: f, ctx: r.Context(), limit: -1}
	p.upstream.ServeHTTP(fw, r)
	if fw.finish() {
		panic(http.ErrAbortHandler) // closes the connection mid-answer
	}
}

// errAborted is what a faultWriter's Write returns once the fault has ended the answer.
var errAborted = errors.New("registrytest: answer cut by a fault")

// faultWriter spoils the body of an answer on its way to the client.
type faultWriter struct {
	p   *FaultProxy
	w   http.ResponseWriter
	rc  *http.ResponseController
	f   Fault
	ctx context.Context

	n           int64 // bytes of the upstream's body seen
	sent        int64 // bytes sent
	limit       int64 // Truncate's length; -1 for none
	wroteHeader bool
	triggered   bool // the Cut or Stall happened
	aborted     bool
}

func (fw *faultWriter) Header() http.Header { return fw.w.Header() }

func (fw *faultWriter) WriteHeader(code int) {
	if fw.wroteHeader {
		return
	}
	fw.wroteHeader = true
	h := fw.w.Header()
	cl, clErr := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
	switch fw.f.Kind {
	case Truncate:
		switch {
		case fw.f.At >= 0:
			fw.limit = fw.f.At
			if clErr == nil {
				fw.limit = min(fw.limit, cl)
			}
			h.Set("Content-Length", strconv.FormatInt(fw.limit, 10))
		case clErr == nil:
			fw.limit = max(cl+fw.f.At, 0)
			h.Set("Content-Length", strconv.FormatInt(fw.limit, 10))
		}
	case Replace:
		h.Set("Content-Length", strconv.Itoa(len(fw.f.Body)))
		fw.w.WriteHeader(code)
		fw.w.Write(fw.f.Body)
		return
	}
	fw.w.WriteHeader(code)
}

// Flush passes on the upstream's flushes.
func (fw *faultWriter) Flush() { fw.rc.Flush() }

// Unwrap lets http.ResponseController reach the writer underneath.
func (fw *faultWriter) Unwrap() http.ResponseWriter { return fw.w }

func (fw *faultWriter) send(p []byte) error {
	k, err := fw.w.Write(p)
	fw.sent += int64(k)
	return err
}

func (fw *faultWriter) Write(p []byte) (int, error) {
	if !fw.wroteHeader {
		fw.WriteHeader(http.StatusOK)
	}
	if fw.aborted {
		return 0, errAborted
	}
	start := fw.n
	fw.n += int64(len(p))
	f := fw.f
	switch f.Kind {
	case Replace:
		return len(p), nil
	case Truncate:
		if fw.limit >= 0 {
			keep := max(min(int64(len(p)), fw.limit-start), 0)
			if err := fw.send(p[:keep]); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	case Corrupt:
		if f.At >= start && f.At < fw.n {
			q := slices.Clone(p)
			q[f.At-start] ^= 0xff
			p = q
		}
	case Cut, Stall:
		if !fw.triggered && fw.n > f.At {
			head := p[:f.At-start]
			if err := fw.send(head); err != nil {
				return 0, err
			}
			if !fw.trigger() {
				return len(head), errAborted
			}
			if err := fw.send(p[len(head):]); err != nil {
				return len(head), err
			}
			return len(p), nil
		}
	case Slow:
		if fw.n > f.At {
			fast := max(f.At-start, 0)
			if err := fw.send(p[:fast]); err != nil {
				return 0, err
			}
			if err := fw.slow(p[fast:]); err != nil {
				return int(fast), err
			}
			return len(p), nil
		}
	}
	if err := fw.send(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// trigger makes the Cut or Stall happen, once what comes before it is sent; it reports
// whether the answer goes on (a Stall whose Duration went by).
func (fw *faultWriter) trigger() bool {
	fw.triggered = true
	fw.rc.Flush()
	if fw.f.Kind == Stall && fw.p.wait(fw.ctx, fw.f.Duration) && fw.f.Duration > 0 {
		return true
	}
	fw.aborted = true
	return false
}

// slow sends p at the fault's speed, in pieces of a twentieth of a second.
func (fw *faultWriter) slow(p []byte) error {
	bps := fw.f.BytesPerSecond
	piece := max(bps/20, 1)
	interval := time.Duration(piece) * time.Second / time.Duration(bps)
	for len(p) > 0 {
		k := min(int64(len(p)), piece)
		fw.rc.Flush()
		if !fw.p.wait(fw.ctx, interval) {
			fw.aborted = true
			return errAborted
		}
		if err := fw.send(p[:k]); err != nil {
			return err
		}
		p = p[k:]
	}
	fw.rc.Flush()
	return nil
}

// finish ends the answer once upstream is done with it: a Cut or Stall that the body was too
// short to reach happens now. It reports whether the connection must be closed.
func (fw *faultWriter) finish() bool {
	if !fw.wroteHeader {
		fw.WriteHeader(http.StatusOK)
	}
	if (fw.f.Kind == Cut || fw.f.Kind == Stall) && !fw.triggered && !fw.aborted {
		fw.trigger()
	}
	return fw.aborted
}
