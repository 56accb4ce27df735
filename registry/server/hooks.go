package server

import (
	"net/http"
	"time"

	"github.com/opencontainers/go-digest"
)

// Usage is what a push is about to store: a blob at the commit of its upload, or a
// manifest at its put.
type Usage struct {
	// Repository is the repository pushed to.
	Repository string
	// Kind is "blob" or "manifest".
	Kind string
	// Digest is the content's digest (for a blob, the one the client claims: the quota is
	// asked before the content is verified).
	Digest digest.Digest
	// Size is the content's size in bytes.
	Size int64
}

// Quota admits or refuses what a push would store. The server asks it before it stores or
// links anything, so a refusal stores nothing: an upload refused is cancelled. It returns
// nil to admit, an error matching ErrTooManyRequests for a 429 TOOMANYREQUESTS, or any
// other error for a 403 DENIED whose message is the error's ("project team: quota of 10
// GiB exceeded"). Admission reserves nothing: the server does not call back when a
// verification after it fails. It is called from many goroutines at once.
type Quota interface {
	Admit(r *http.Request, u Usage) error
}

// QuotaFunc adapts a function to a Quota.
type QuotaFunc func(r *http.Request, u Usage) error

// Admit calls f.
func (f QuotaFunc) Admit(r *http.Request, u Usage) error { return f(r, u) }

// Actions of an Event.
const (
	EventPush   = "push"
	EventPull   = "pull"
	EventDelete = "delete"
)

// Event is something that happened to a repository, for a notification hook.
type Event struct {
	// Action is EventPush, EventPull or EventDelete.
	Action string
	// Kind is "blob", "manifest" or "tag".
	Kind string
	// Repository is the repository.
	Repository string
	// Digest is the content's digest; for a tag deleted, the manifest it named.
	Digest digest.Digest
	// MediaType is the manifest's media type ("" for a blob).
	MediaType string
	// Size is the content's size; 0 for a delete.
	Size int64
	// Tag is the tag pushed, pulled or deleted, if any.
	Tag string
	// Actor is the account that did it, if the server's embedder tells (registry/hub sets
	// its user's or robot's name); "" otherwise. A Notifier sends it as the actor's name,
	// or the request's basic auth user when it is "".
	Actor string
	// Time is when it happened, by the server's clock.
	Time time.Time
	// Request is the request that did it; the hook must not read its body.
	Request *http.Request
}

// EventFunc is a notification hook: WithEvents calls it after each push (a blob committed
// or mounted, a manifest put), each pull (a blob or manifest GET; not HEAD) and each delete
// has succeeded, on the request's goroutine and before the answer is written, so it must
// be quick: a hook that sends webhooks queues them.
type EventFunc func(Event)
