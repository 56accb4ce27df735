package registrytest

import (
	"net/http"
	"regexp"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/opendao/dao/clock"
)

// Registry is an in-memory OCI registry: an http.Handler that serves the OCI Distribution
// Spec v1.1 API at /v2/. Serve it with httptest.NewServer(reg) and point a client at the
// server's address.
//
// It keeps everything in memory and starts no goroutine, so it needs no Close: it is gone
// when it is no longer referenced. It is safe for simultaneous use.
type Registry struct {
	o options

	mu sync.Mutex
	// blobs holds the content of every blob of every repository, manifests included, by
	// digest; a repository sees those it links.
	blobs   map[digest.Digest][]byte
	repos   map[string]*repository
	uploads map[string]*upload
	// seq orders manifests by push, for the referrers API.
	seq uint64
}

var _ http.Handler = (*Registry)(nil)

// repository is what one repository holds.
type repository struct {
	blobs     map[digest.Digest]struct{}
	manifests map[digest.Digest]*manifest
	tags      map[string]digest.Digest
}

func (r *repository) empty() bool {
	return len(r.blobs) == 0 && len(r.manifests) == 0 && len(r.tags) == 0
}

// options are the settings of a Registry.
type options struct {
	readOnly    bool
	basic       map[string]string // user -> password; nil: no basic auth
	token       *tokenAuth
	hooks       []func(Request)
	maxManifest int64
	maxBlob     int64
	maxUploads  int
	clock       clock.Clock
}

// Option configures a Registry; it returns an error for a bad value.
type Option func(*options) error

// Defaults of the Registry's limits.
const (
	// DefaultMaxManifestSize is the largest manifest a Registry accepts unless
	// WithMaxManifestSize says otherwise: 4 MiB, what the spec asks registries to accept.
	DefaultMaxManifestSize = 4 << 20
	// DefaultMaxBlobSize is the largest blob a Registry accepts unless WithMaxBlobSize says
	// otherwise: 1 GiB.
	DefaultMaxBlobSize = 1 << 30
	// defaultMaxUploads is how many upload sessions may be open at once; one more is
	// refused with 429 TOOMANYREQUESTS.
	defaultMaxUploads = 1024
)

// WithReadOnly makes the registry refuse every write (uploads, manifest pushes, deletes)
// with 405 UNSUPPORTED, as a read-only mirror does. The default is read-write.
func WithReadOnly() Option {
	return func(o *options) error {
		o.readOnly = true
		return nil
	}
}

// WithBasicAuth makes the registry require HTTP basic authentication with user and
// password for every request, /v2/ included; it answers 401 UNAUTHORIZED with a Basic
// challenge otherwise. It may be given several times, for several users. A user may do
// everything. The default is no authentication. user must not be empty, and cannot be
// combined with WithTokenAuth.
func WithBasicAuth(user, password string) Option {
	return func(o *options) error {
		if user == "" || strings.Contains(user, ":") {
			return optionError("WithBasicAuth", "user %q is empty or has a colon", user)
		}
		if o.basic == nil {
			o.basic = map[string]string{}
		}
		o.basic[user] = password
		return nil
	}
}

// WithRequestHook calls f for each request the registry serves, with the status it answers,
// for a test to log or count requests. f is called when the status is written, before the
// client can have the answer, on the request's goroutine, so it must be safe for
// simultaneous use. It may be given several times. The default is no hook.
func WithRequestHook(f func(Request)) Option {
	return func(o *options) error {
		if f == nil {
			return optionError("WithRequestHook", "nil function")
		}
		o.hooks = append(o.hooks, f)
		return nil
	}
}

// WithMaxManifestSize sets the largest manifest the registry accepts, in bytes; a larger one
// is refused with 413 MANIFEST_INVALID and not read further. The default is
// DefaultMaxManifestSize (4 MiB). n must be positive.
func WithMaxManifestSize(n int64) Option {
	return func(o *options) error {
		if n <= 0 {
			return optionError("WithMaxManifestSize", "%d is not positive", n)
		}
		o.maxManifest = n
		return nil
	}
}

// WithMaxBlobSize sets the largest blob the registry accepts, in bytes; an upload that grows
// larger is refused with 413 SIZE_INVALID and not read further. The default is
// DefaultMaxBlobSize (1 GiB). n must be positive.
func WithMaxBlobSize(n int64) Option {
	return func(o *options) error {
		if n <= 0 {
			return optionError("WithMaxBlobSize", "%d is not positive", n)
		}
		o.maxBlob = n
		return nil
	}
}

// WithClock sets the clock the registry checks tokens' expiry against; give it the same
// clock.Manual as the TokenServer's WithTokenClock to test expiry without waiting. The
// default is clock.System(). c must not be nil.
func WithClock(c clock.Clock) Option {
	return func(o *options) error {
		if c == nil {
			return optionError("WithClock", "nil clock")
		}
		o.clock = c
		return nil
	}
}

// New returns an empty registry with the options applied. It returns an error that names
// the option and matches ErrInvalidOption (and so dao.ErrInvalid) if an option is refused,
// and then no registry.
func New(opts ...Option) (*Registry, error) {
	o := options{maxManifest: DefaultMaxManifestSize, maxBlob: DefaultMaxBlobSize, maxUploads: defaultMaxUploads, clock: clock.System()}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.basic != nil && o.token != nil {
		return nil, optionError("WithBasicAuth", "cannot be combined with WithTokenAuth")
	}
	return &Registry{
		o:       o,
		blobs:   map[digest.Digest][]byte{},
		repos:   map[string]*repository{},
		uploads: map[string]*upload{},
	}, nil
}

var (
	// nameRE is a repository name, as the distribution spec has it.
	nameRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	// tagRE is a tag.
	tagRE = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

	// The routes of the API under /v2/, name first.
	uploadsRE   = regexp.MustCompile(`^/v2/(.+)/blobs/uploads/?$`)
	uploadRE    = regexp.MustCompile(`^/v2/(.+)/blobs/uploads/([^/]+)$`)
	blobRE      = regexp.MustCompile(`^/v2/(.+)/blobs/([^/]+)$`)
	manifestRE  = regexp.MustCompile(`^/v2/(.+)/manifests/([^/]+)$`)
	tagsRE      = regexp.MustCompile(`^/v2/(.+)/tags/list$`)
	referrersRE = regexp.MustCompile(`^/v2/(.+)/referrers/([^/]+)$`)
)

// maxNameLength is the longest repository name the registry accepts.
const maxNameLength = 255

// ValidName reports whether name is a repository name the distribution spec allows (and of
// at most 255 characters).
func ValidName(name string) bool {
	return len(name) <= maxNameLength && nameRE.MatchString(name)
}

// ValidTag reports whether tag is a tag the distribution spec allows.
func ValidTag(tag string) bool { return tagRE.MatchString(tag) }

// route is a request the registry understood.
type route struct {
	kind string // "ping", "catalog", "uploads", "upload", "blob", "manifest", "tags", "referrers"
	name string
	arg  string // the upload id, the digest or the reference
}

// parseRoute finds the route of path; ok is false for a path the API does not have.
func parseRoute(path string) (route, bool) {
	switch path {
	case "/v2", "/v2/":
		return route{kind: "ping"}, true
	case "/v2/_catalog":
		return route{kind: "catalog"}, true
	}
	for _, c := range []struct {
		kind string
		re   *regexp.Regexp
	}{
		{"uploads", uploadsRE}, {"upload", uploadRE}, {"blob", blobRE},
		{"manifest", manifestRE}, {"tags", tagsRE}, {"referrers", referrersRE},
	} {
		if m := c.re.FindStringSubmatch(path); m != nil {
			rt := route{kind: c.kind, name: m[1]}
			if len(m) > 2 {
				rt.arg = m[2]
			}
			return rt, true
		}
	}
	return route{}, false
}

// ServeHTTP serves the distribution API.
func (reg *Registry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	if len(reg.o.hooks) > 0 {
		called := false
		sw.onStatus = func(status int) {
			called = true
			rec := newRequest(r)
			rec.Status = status
			for _, h := range reg.o.hooks {
				h(rec)
			}
		}
		defer func() {
			if !called { // no answer at all
				sw.onStatus(0)
			}
		}()
	}
	if err := reg.serve(sw, r); err != nil {
		writeError(sw, r, err)
	}
}

func (reg *Registry) serve(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	rt, ok := parseRoute(r.URL.Path)
	if !ok {
		return newError(http.StatusNotFound, codeUnsupported, "no such endpoint: %s %s", r.Method, r.URL.Path)
	}
	if rt.kind != "ping" && rt.kind != "catalog" && !ValidName(rt.name) {
		return newError(http.StatusBadRequest, codeNameInvalid, "invalid repository name %q", rt.name)
	}
	if err := reg.authorize(r, rt); err != nil {
		return err
	}
	write := r.Method != http.MethodGet && r.Method != http.MethodHead
	if write && reg.o.readOnly {
		return newError(http.StatusMethodNotAllowed, codeUnsupported, "the registry is read-only")
	}
	switch rt.kind {
	case "ping":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return methodNotAllowed(r, "GET, HEAD")
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write([]byte("{}"))
		}
		return nil
	case "catalog":
		if r.Method != http.MethodGet {
			return methodNotAllowed(r, "GET")
		}
		return reg.catalog(w, r)
	case "uploads":
		if r.Method != http.MethodPost {
			return methodNotAllowed(r, "POST")
		}
		return reg.startUpload(w, r, rt.name)
	case "upload":
		switch r.Method {
		case http.MethodGet:
			return reg.uploadStatus(w, rt.name, rt.arg)
		case http.MethodPatch:
			return reg.patchUpload(w, r, rt.name, rt.arg)
		case http.MethodPut:
			return reg.finishUpload(w, r, rt.name, rt.arg)
		case http.MethodDelete:
			return reg.cancelUpload(w, rt.name, rt.arg)
		}
		return methodNotAllowed(r, "GET, PATCH, PUT, DELETE")
	case "blob":
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			return reg.getBlob(w, r, rt.name, rt.arg)
		case http.MethodDelete:
			return reg.deleteBlob(w, rt.name, rt.arg)
		}
		return methodNotAllowed(r, "GET, HEAD, DELETE")
	case "manifest":
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			return reg.getManifest(w, r, rt.name, rt.arg)
		case http.MethodPut:
			return reg.putManifest(w, r, rt.name, rt.arg)
		case http.MethodDelete:
			return reg.deleteManifest(w, rt.name, rt.arg)
		}
		return methodNotAllowed(r, "GET, HEAD, PUT, DELETE")
	case "tags":
		if r.Method != http.MethodGet {
			return methodNotAllowed(r, "GET")
		}
		return reg.tags(w, r, rt.name)
	case "referrers":
		if r.Method != http.MethodGet {
			return methodNotAllowed(r, "GET")
		}
		return reg.referrers(w, r, rt.name, rt.arg)
	}
	return newError(http.StatusNotFound, codeUnsupported, "no such endpoint")
}

func methodNotAllowed(r *http.Request, allow string) error {
	e := newError(http.StatusMethodNotAllowed, codeUnsupported, "method %s not allowed on %s", r.Method, r.URL.Path)
	e.header = http.Header{"Allow": {allow}}
	return e
}

// repo returns the repository name, creating it when create is true; nil when it does not
// exist. reg.mu must be held.
func (reg *Registry) repo(name string, create bool) *repository {
	rp := reg.repos[name]
	if rp == nil && create {
		rp = &repository{blobs: map[digest.Digest]struct{}{}, manifests: map[digest.Digest]*manifest{}, tags: map[string]digest.Digest{}}
		reg.repos[name] = rp
	}
	return rp
}

// parseDigest parses s as a digest of an available algorithm.
func parseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", newError(http.StatusBadRequest, codeDigestInvalid, "invalid digest %q: %v", s, err)
	}
	return d, nil
}
