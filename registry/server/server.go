package server

import (
	"container/list"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/server/gc"
	"github.com/opendao/dao/registry/server/storage"
)

// Server is an OCI distribution API 1.1 registry over a storage.Store: an http.Handler
// that serves /v2/. It is safe for simultaneous use; it holds no state of its own beyond
// the rate limit's buckets, so several Servers (several processes, with a shared Store
// that allows it) may serve the same content.
type Server struct {
	store           storage.Store
	auth            Authorizer
	quota           Quota
	events          EventFunc
	catalogFilter   func(r *http.Request, repo string) bool
	limits          *limiters
	maxManifestSize int64
	maxBlobSize     int64
	automaticMount  bool
	sparse          bool
	fence           *gc.Fence
	sessions        *sessions
	mirror          *Mirror
	now             func() time.Time
}

var _ http.Handler = (*Server)(nil)

type options struct {
	s         Server
	rateLimit rate.Limit
	burst     int
	rateKey   func(*http.Request) string
	// rateClients bounds the rate limit's table.
	rateClients int
}

// Option configures New. Each rejects a value it does not take with an error matching
// ErrInvalidOption that names it.
type Option func(*options) error

// WithAuthorizer makes the server ask a for each request; see Authorizer. The default,
// AllowAll, allows everything to everyone.
func WithAuthorizer(a Authorizer) Option {
	return func(o *options) error {
		if a == nil {
			return fmt.Errorf("%w: WithAuthorizer: nil authorizer", ErrInvalidOption)
		}
		o.s.auth = a
		return nil
	}
}

// WithQuota makes the server ask q before it stores a blob or a manifest; see Quota. The
// default admits everything.
func WithQuota(q Quota) Option {
	return func(o *options) error {
		if q == nil {
			return fmt.Errorf("%w: WithQuota: nil quota", ErrInvalidOption)
		}
		o.s.quota = q
		return nil
	}
}

// WithEvents makes the server call fn for each push, pull and delete; see EventFunc. The
// default calls nothing.
func WithEvents(fn EventFunc) Option {
	return func(o *options) error {
		if fn == nil {
			return fmt.Errorf("%w: WithEvents: nil function", ErrInvalidOption)
		}
		o.s.events = fn
		return nil
	}
}

// WithCatalogFilter makes _catalog list only the repositories for which keep returns true
// (those the caller may see). The default lists every repository to whoever the
// Authorizer lets ask.
func WithCatalogFilter(keep func(r *http.Request, repo string) bool) Option {
	return func(o *options) error {
		if keep == nil {
			return fmt.Errorf("%w: WithCatalogFilter: nil filter", ErrInvalidOption)
		}
		o.s.catalogFilter = keep
		return nil
	}
}

// WithRateLimit limits each client (by WithRateLimitKey, its IP address by default) to
// perSecond requests a second on average, in bursts of up to burst; a request past it is
// answered 429 TOOMANYREQUESTS with Retry-After. perSecond must be positive and burst at
// least 1. The default is no limit.
func WithRateLimit(perSecond float64, burst int) Option {
	return func(o *options) error {
		if perSecond <= 0 || burst < 1 {
			return fmt.Errorf("%w: WithRateLimit: %v a second in bursts of %d: both must be positive", ErrInvalidOption, perSecond, burst)
		}
		o.rateLimit, o.burst = rate.Limit(perSecond), burst
		return nil
	}
}

// WithRateLimitKey makes the rate limit tell clients apart by key(r) (an account, a
// header set by a proxy). The default is RemoteIP.
func WithRateLimitKey(key func(r *http.Request) string) Option {
	return func(o *options) error {
		if key == nil {
			return fmt.Errorf("%w: WithRateLimitKey: nil function", ErrInvalidOption)
		}
		o.rateKey = key
		return nil
	}
}

// WithMaxManifestSize makes the server refuse manifests larger than n bytes (413
// MANIFEST_INVALID). The default is oci.MaxManifestSize, 4 MiB, the least the
// distribution spec asks a registry to take; n must be at least 4 KiB.
func WithMaxManifestSize(n int64) Option {
	return func(o *options) error {
		if n < 4<<10 {
			return fmt.Errorf("%w: WithMaxManifestSize: %d bytes: at least 4096", ErrInvalidOption, n)
		}
		o.s.maxManifestSize = n
		return nil
	}
}

// WithMaxBlobSize makes the server refuse to let an upload grow past n bytes: the request
// that would is answered 413 SIZE_INVALID and its session cancelled, before the disk fills
// (a Quota is asked only at the commit). The default, 0, is no limit; n must not be
// negative.
func WithMaxBlobSize(n int64) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("%w: WithMaxBlobSize: %d bytes", ErrInvalidOption, n)
		}
		o.s.maxBlobSize = n
		return nil
	}
}

// WithAutomaticMount sets whether a mount without a from parameter (POST
// ?mount=<digest>) links a blob stored for any repository. It is on by default, as the
// spec allows; a multi-tenant server turns it off, since it would let anyone who knows a
// digest read a blob of a private repository: then such a mount opens an upload session.
func WithAutomaticMount(on bool) Option {
	return func(o *options) error {
		o.s.automaticMount = on
		return nil
	}
}

// WithSparse sets whether a manifest may refer to content the repository lacks: an image
// to blobs, an index to manifests, as a mirror that holds some platforms of an image
// does. It is off by default: a manifest put is refused with MANIFEST_BLOB_UNKNOWN unless
// everything it refers to (but nondistributable layers) is in the repository.
func WithSparse(on bool) Option {
	return func(o *options) error {
		o.s.sparse = on
		return nil
	}
}

// WithFence makes each manifest put enter f while it checks what the manifest references
// and stores it, so that a collection given the same Fence (gc.WithFence) never deletes
// what a put in progress has checked, however long the put takes; see package gc. The
// default is none.
func WithFence(f *gc.Fence) Option {
	return func(o *options) error {
		if f == nil {
			return fmt.Errorf("%w: WithFence: nil fence", ErrInvalidOption)
		}
		o.s.fence = f
		return nil
	}
}

// WithClock makes the server read the time from now, for events and the rate limit. The
// default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return fmt.Errorf("%w: WithClock: nil clock", ErrInvalidOption)
		}
		o.s.now = now
		return nil
	}
}

// New returns a Server of the content of store.
func New(store storage.Store, opts ...Option) (*Server, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: New: nil store", ErrInvalidOption)
	}
	o := options{s: Server{
		store:           store,
		auth:            AllowAll,
		maxManifestSize: oci.MaxManifestSize,
		automaticMount:  true,
		now:             time.Now,
	}, rateKey: RemoteIP, rateClients: defaultRateClients}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	s := o.s
	if s.mirror != nil {
		s.sparse = true
	}
	if o.rateLimit > 0 {
		s.limits = &limiters{limit: o.rateLimit, burst: o.burst, key: o.rateKey, now: s.now, max: o.rateClients, clients: map[string]*list.Element{}}
	}
	return &s, nil
}

// route is a request's endpoint, parsed from its path.
type route struct {
	kind string // "ping", "catalog", "tags", "manifest", "blob", "uploads", "upload", "referrers"
	repo string
	ref  string // manifest reference, blob or subject digest, upload id
}

// parseRoute parses the path after /v2/. Repository names may hold "/", so endpoints are
// recognised from the end.
func parseRoute(path string) (route, bool) {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		if path == "/v2" {
			return route{kind: "ping"}, true
		}
		return route{}, false
	}
	if rest == "" {
		return route{kind: "ping"}, true
	}
	if rest == "_catalog" {
		return route{kind: "catalog"}, true
	}
	segs := strings.Split(rest, "/")
	n := len(segs)
	if n < 2 {
		return route{}, false
	}
	repoOf := func(k int) string { return strings.Join(segs[:n-k], "/") }
	switch {
	case n >= 3 && segs[n-2] == "tags" && segs[n-1] == "list":
		return route{kind: "tags", repo: repoOf(2)}, true
	case n >= 3 && segs[n-2] == "manifests":
		return route{kind: "manifest", repo: repoOf(2), ref: segs[n-1]}, true
	case n >= 3 && segs[n-2] == "referrers":
		return route{kind: "referrers", repo: repoOf(2), ref: segs[n-1]}, true
	case n >= 4 && segs[n-3] == "blobs" && segs[n-2] == "uploads":
		if segs[n-1] == "" {
			return route{kind: "uploads", repo: repoOf(3)}, true
		}
		return route{kind: "upload", repo: repoOf(3), ref: segs[n-1]}, true
	case n >= 3 && segs[n-2] == "blobs" && segs[n-1] == "uploads":
		return route{kind: "uploads", repo: repoOf(2)}, true
	case n >= 3 && segs[n-2] == "blobs":
		return route{kind: "blob", repo: repoOf(2), ref: segs[n-1]}, true
	}
	return route{}, false
}

// ServeHTTP serves the distribution API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if s.limits != nil {
		if ok, wait := s.limits.allow(r); !ok {
			writeError(w, r, tooMany(wait))
			return
		}
	}
	rt, ok := parseRoute(r.URL.Path)
	if !ok {
		writeError(w, r, newError(http.StatusNotFound, codeNameUnknown, "no such endpoint %q", r.URL.Path))
		return
	}
	if rt.repo != "" || (rt.kind != "ping" && rt.kind != "catalog") {
		if err := ValidateRepository(rt.repo); err != nil {
			writeError(w, r, newError(http.StatusBadRequest, codeNameInvalid, "%v", err))
			return
		}
	}
	if s.mirror != nil && s.mirror.refusesWrite() && isWrite(r) && s.mirror.covers(rt.repo) {
		writeError(w, r, mirrorWriteRefused(r))
		return
	}
	if err := s.serve(w, r, rt); err != nil {
		writeError(w, r, err)
	}
}

// methodNotAllowed is the answer to a method an endpoint does not have.
func methodNotAllowed(r *http.Request, allow string) error {
	return newError(http.StatusMethodNotAllowed, codeUnsupported, "%s is not allowed here", r.Method).withHeader("Allow", allow)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, rt route) error {
	switch rt.kind {
	case "ping":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return methodNotAllowed(r, "GET, HEAD")
		}
		if err := s.checkAccess(r, nil); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write([]byte("{}"))
		}
		return nil
	case "catalog":
		return s.serveCatalog(w, r)
	case "tags":
		return s.serveTags(w, r, rt.repo)
	case "referrers":
		return s.serveReferrers(w, r, rt.repo, rt.ref)
	case "manifest":
		return s.serveManifest(w, r, rt.repo, rt.ref)
	case "blob":
		return s.serveBlob(w, r, rt.repo, rt.ref)
	case "uploads":
		return s.serveStartUpload(w, r, rt.repo)
	case "upload":
		return s.serveUpload(w, r, rt.repo, rt.ref)
	}
	return newError(http.StatusNotFound, codeNameUnknown, "no such endpoint")
}

// authorize asks the Authorizer for actions on repo.
func (s *Server) authorize(r *http.Request, repo string, actions ...string) error {
	return s.checkAccess(r, []Access{{Type: "repository", Name: repo, Actions: actions}})
}

// checkAccess asks the Authorizer, and makes what it answers one of the answers its
// documentation names: an error that is not a challenge, a 429 or already an API error is
// a 403 DENIED, whatever it wraps, never a 500.
func (s *Server) checkAccess(r *http.Request, access []Access) error {
	err := s.auth.Authorize(r, access)
	if err == nil {
		return nil
	}
	var ce *ChallengeError
	var ae *apiError
	if errors.As(err, &ce) || errors.As(err, &ae) || errors.Is(err, ErrTooManyRequests) || errors.Is(err, ErrDenied) {
		return err
	}
	return newError(http.StatusForbidden, codeDenied, "%v", err)
}

// emit calls the event hook, if any.
func (s *Server) emit(r *http.Request, e Event) {
	if s.events == nil {
		return
	}
	e.Time = s.now()
	e.Request = r
	s.events(e)
}

// admit asks the quota, if any.
func (s *Server) admit(r *http.Request, u Usage) error {
	if s.quota == nil {
		return nil
	}
	err := s.quota.Admit(r, u)
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrTooManyRequests) {
		return newError(http.StatusTooManyRequests, codeTooManyRequests, "%v", err)
	}
	return newError(http.StatusForbidden, codeDenied, "%v", err)
}
