package registrytest

import (
	"fmt"
	"net/http"
	"strings"
)

// Request is what a Registry or a FaultProxy saw of one request, for a test to count and
// look at.
type Request struct {
	Method string
	// Path is the URL's path, Query its raw query.
	Path, Query string
	// Range is the request's Range header; Authorization tells whether it had one.
	Range         string
	Authorization bool
	// Status is the status code answered; 0 when the connection was dropped before an
	// answer.
	Status int
	// Fault is the fault a FaultProxy applied to it; 0 (None) from a Registry.
	Fault FaultKind
}

// String returns "METHOD PATH[?QUERY] [RANGE] -> STATUS [FAULT]", one line for a test's log.
func (r Request) String() string {
	var b strings.Builder
	b.WriteString(r.Method + " " + r.Path)
	if r.Query != "" {
		b.WriteString("?" + r.Query)
	}
	if r.Range != "" {
		b.WriteString(" " + r.Range)
	}
	fmt.Fprintf(&b, " -> %d", r.Status)
	if r.Fault != None {
		b.WriteString(" " + r.Fault.String())
	}
	return b.String()
}

func newRequest(r *http.Request) Request {
	return Request{
		Method:        r.Method,
		Path:          r.URL.Path,
		Query:         r.URL.RawQuery,
		Range:         r.Header.Get("Range"),
		Authorization: r.Header.Get("Authorization") != "",
	}
}

// statusWriter remembers the status written through it, and calls onStatus with it before
// the answer goes out, so that a client never has an answer its record lacks.
type statusWriter struct {
	http.ResponseWriter
	status   int
	onStatus func(int)
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
		if w.onStatus != nil {
			w.onStatus(code)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
