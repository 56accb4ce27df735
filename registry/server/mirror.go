package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/remote"
	"github.com/opendao/dao/registry/server/storage"
)

// MirrorConfig is a pull-through cache of an upstream registry, as a Config gives it:
//
//	mirror: {upstream: https://registry.example.com, username: u, password: p, ttl: 5m}
type MirrorConfig struct {
	// Upstream is the registry mirrored, "https://host[:port]" (or http:// for plain
	// HTTP). Required.
	Upstream string `yaml:"upstream"`
	// Username and Password authenticate to the upstream (basic, or at its token
	// server); Token is sent instead as a bearer token.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	Token    string `yaml:"token"`
	// TTL is how long a tag fetched from the upstream is served before it is asked for
	// again; 5 minutes if 0. Content by digest never expires.
	TTL time.Duration `yaml:"ttl"`
	// Namespace, if set, is the leading components of the repositories mirrored, taken
	// off for the upstream's name: "cache" serves cache/library/nginx from the upstream's
	// library/nginx, and serves other repositories from the store alone (registry/hub's
	// proxy cache projects are such mirrors). "" mirrors every repository under its own
	// name.
	Namespace string `yaml:"namespace"`
	// AllowPush lets clients push to the mirror (content of its own, beside what it
	// caches); by default pushes and deletes are refused with 405 UNSUPPORTED.
	AllowPush bool `yaml:"allowPush"`
}

// Mirror makes a Server a pull-through cache of an upstream registry (WithMirror): a GET
// or HEAD of a manifest or a blob the store lacks is fetched from the upstream with the
// project's client (registry/remote: its authentication, retries, verification), stored
// under the same digest, and served; a tag is asked of the upstream again once its TTL has
// passed, and while the upstream is down what is stored is served. It is safe for
// simultaneous use; Close releases its connections.
type Mirror struct {
	client    *remote.Client
	host      string
	prefix    string // Namespace + "/", or ""
	ttl       time.Duration
	allowPush bool
	now       func() time.Time

	mu      sync.Mutex
	checked map[string]time.Time // repo:tag → when the upstream was last asked
	flights map[string]*flight   // what is being fetched, by repo@digest or repo:tag
}

type flight struct {
	done chan struct{}
	err  error
}

// NewMirror returns a Mirror of c.Upstream; opts come before its own options of the
// remote client (credentials, hosts), and may set its retries or rate limits. The default
// retry policy is two attempts, so that an upstream that is down costs a pull little.
func NewMirror(c MirrorConfig, opts ...remote.Option) (*Mirror, error) {
	u, err := url.Parse(c.Upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("%w: mirror: upstream %q: an http or https URL of a host is required", ErrInvalidOption, c.Upstream)
	}
	if c.TTL < 0 {
		return nil, fmt.Errorf("%w: mirror: ttl %v", ErrInvalidOption, c.TTL)
	}
	prefix := ""
	if c.Namespace != "" {
		if err := ValidateRepository(c.Namespace); err != nil {
			return nil, fmt.Errorf("%w: mirror: namespace %q: %v", ErrInvalidOption, c.Namespace, err)
		}
		prefix = c.Namespace + "/"
	}
	if c.TTL == 0 {
		c.TTL = 5 * time.Minute
	}
	ropts := append([]remote.Option{remote.WithRetry(remote.RetryPolicy{MaxAttempts: 2, MinDelay: 100 * time.Millisecond, MaxDelay: time.Second, MaxRetryAfter: 5 * time.Second})}, opts...)
	if u.Scheme == "http" {
		ropts = append(ropts, remote.WithHosts(map[string]remote.HostConfig{u.Host: {PlainHTTP: true}}))
	}
	if c.Username != "" || c.Password != "" || c.Token != "" {
		ropts = append(ropts, remote.WithCredentials(u.Host, remote.Credentials{Username: c.Username, Password: c.Password, RegistryToken: c.Token}))
	}
	rc, err := remote.NewClient(ropts...)
	if err != nil {
		return nil, fmt.Errorf("registry server: mirror: %w", err)
	}
	return &Mirror{client: rc, host: u.Host, prefix: prefix, ttl: c.TTL, allowPush: c.AllowPush, now: time.Now,
		checked: map[string]time.Time{}, flights: map[string]*flight{}}, nil
}

// covers reports whether repo is mirrored: whether it is in the mirror's Namespace.
func (m *Mirror) covers(repo string) bool {
	return m.prefix == "" || (strings.HasPrefix(repo, m.prefix) && len(repo) > len(m.prefix))
}

// upstream returns the upstream's reference of repo, which the mirror covers.
func (m *Mirror) upstream(repo string) string {
	return m.host + "/" + strings.TrimPrefix(repo, m.prefix)
}

// Close closes the upstream client's idle connections.
func (m *Mirror) Close() error { return m.client.Close() }

// WithMirror makes the server a pull-through cache of m's upstream; see Mirror. Manifest
// puts then take manifests whose blobs are not all stored (as WithSparse does), since a
// mirror holds what was pulled. The default is none.
func WithMirror(m *Mirror) Option {
	return func(o *options) error {
		if m == nil {
			return fmt.Errorf("%w: WithMirror: nil mirror", ErrInvalidOption)
		}
		o.s.mirror = m
		return nil
	}
}

// once runs fetch for key unless it is running, in which case it waits for that run.
func (m *Mirror) once(ctx context.Context, key string, fetch func() error) error {
	m.mu.Lock()
	if f, ok := m.flights[key]; ok {
		m.mu.Unlock()
		select {
		case <-f.done:
			return f.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f := &flight{done: make(chan struct{})}
	m.flights[key] = f
	m.mu.Unlock()
	f.err = fetch()
	m.mu.Lock()
	delete(m.flights, key)
	m.mu.Unlock()
	close(f.done)
	return f.err
}

// maxChecked bounds the tags whose last check a Mirror remembers.
const maxChecked = 100_000

// refusesWrite reports whether the mirror refuses pushes and deletes.
func (m *Mirror) refusesWrite() bool { return !m.allowPush }

// fresh reports whether repo:tag was asked of the upstream less than the TTL ago.
func (m *Mirror) fresh(repo, tag string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.checked[repo+":"+tag]
	return ok && m.now().Sub(t) < m.ttl
}

// errUpstream is what a fetch from the upstream failed with, for the client: not found
// stays not found, anything else is a 502 with the reason.
func errUpstream(what string, err error) error {
	if errors.Is(err, remote.ErrNotFound) {
		return nil
	}
	return newError(http.StatusBadGateway, codeUnknown, "mirror: %s: %v", what, err)
}

// mirrorTag makes tag of repo what the upstream says, unless it was asked less than the
// TTL ago. If the upstream cannot be asked, what is stored stays.
func (s *Server) mirrorTag(ctx context.Context, repo, tag string) error {
	m := s.mirror
	if m.fresh(repo, tag) {
		return nil
	}
	return m.once(ctx, repo+":"+tag, func() error {
		desc, err := m.client.Resolve(ctx, m.upstream(repo)+":"+tag)
		if err != nil {
			if _, lerr := s.store.ResolveTag(ctx, repo, tag); lerr == nil {
				return nil // served from the cache while the upstream fails
			}
			return errUpstream("resolve "+repo+":"+tag, err)
		}
		if cur, err := s.store.ResolveTag(ctx, repo, tag); err != nil || cur != desc.Digest {
			if err := s.mirrorManifest(ctx, repo, desc); err != nil {
				return err
			}
			if err := s.store.Tag(ctx, repo, tag, desc.Digest); err != nil {
				return err
			}
		}
		m.mu.Lock()
		if len(m.checked) >= maxChecked {
			clear(m.checked) // all asked again once: cheaper than an LRU, and rare
		}
		m.checked[repo+":"+tag] = m.now()
		m.mu.Unlock()
		return nil
	})
}

// mirrorManifest stores the manifest desc of repo from the upstream, unless it is stored.
func (s *Server) mirrorManifest(ctx context.Context, repo string, desc ocispec.Descriptor) error {
	if ok, err := s.store.ManifestLinked(ctx, repo, desc.Digest); err != nil || ok {
		return err
	}
	return s.mirror.once(ctx, repo+"@"+desc.Digest.String(), func() error {
		got, err := s.mirror.client.FetchManifest(ctx, s.mirror.upstream(repo), desc)
		if err != nil {
			return errUpstream("manifest "+repo+"@"+desc.Digest.String(), err)
		}
		sm := storage.Manifest{Descriptor: got.Descriptor, Raw: got.Raw}
		if got.Image != nil && got.Image.Subject != nil {
			sm.Subject = got.Image.Subject.Digest
		}
		if got.Index != nil && got.Index.Subject != nil {
			sm.Subject = got.Index.Subject.Digest
		}
		if sm.Subject != "" {
			sm.Referrer = ocispec.Descriptor{MediaType: got.Descriptor.MediaType, Digest: got.Descriptor.Digest, Size: got.Descriptor.Size}
			if got.Image != nil {
				sm.Referrer.ArtifactType = got.Image.ArtifactType
				if sm.Referrer.ArtifactType == "" {
					sm.Referrer.ArtifactType = got.Image.Config.MediaType
				}
				sm.Referrer.Annotations = got.Image.Annotations
			} else {
				sm.Referrer.ArtifactType = got.Index.ArtifactType
				sm.Referrer.Annotations = got.Index.Annotations
			}
		}
		return s.store.PutManifest(ctx, repo, sm)
	})
}

// mirrorManifestDigest stores the manifest dgst of repo from the upstream, unless it is
// stored; its size and media type are the upstream's.
func (s *Server) mirrorManifestDigest(ctx context.Context, repo string, dgst digest.Digest) error {
	if ok, err := s.store.ManifestLinked(ctx, repo, dgst); err != nil || ok {
		return err
	}
	desc, err := s.mirror.client.Resolve(ctx, s.mirror.upstream(repo)+"@"+dgst.String())
	if err != nil {
		return errUpstream("resolve "+repo+"@"+dgst.String(), err)
	}
	if desc.Digest != dgst {
		return newError(http.StatusBadGateway, codeUnknown, "mirror: upstream answered %s for %s", desc.Digest, dgst)
	}
	return s.mirrorManifest(ctx, repo, desc)
}

// mirrorBlob stores the blob dgst of repo from the upstream and links it, unless it is
// linked: streamed into an upload session, verified by the client as it reads and by the
// commit.
func (s *Server) mirrorBlob(ctx context.Context, repo string, dgst digest.Digest) error {
	if ok, err := s.store.BlobLinked(ctx, repo, dgst); err != nil || ok {
		return err
	}
	m := s.mirror
	return m.once(ctx, repo+"@"+dgst.String(), func() error {
		if ok, err := s.store.BlobLinked(ctx, repo, dgst); err != nil || ok {
			return err
		}
		if _, err := s.store.StatBlob(ctx, dgst); err == nil {
			// Stored for another repository: the upstream need only say it has it here.
			if _, err := m.client.StatBlob(ctx, m.upstream(repo), dgst); err != nil {
				return errUpstream("blob "+repo+"@"+dgst.String(), err)
			}
			return s.store.LinkBlob(ctx, repo, dgst)
		}
		desc, err := m.client.StatBlob(ctx, m.upstream(repo), dgst)
		if err != nil {
			return errUpstream("blob "+repo+"@"+dgst.String(), err)
		}
		rc, err := m.client.FetchBlob(ctx, m.upstream(repo), desc)
		if err != nil {
			return errUpstream("blob "+repo+"@"+dgst.String(), err)
		}
		defer rc.Close()
		up, err := s.store.NewUpload(ctx, repo)
		if err != nil {
			return err
		}
		if _, err := up.Append(ctx, 0, rc); err != nil {
			_ = up.Cancel(ctx)
			return errUpstream("blob "+repo+"@"+dgst.String(), err)
		}
		if err := up.Commit(ctx, dgst); err != nil {
			_ = up.Cancel(ctx)
			return err
		}
		return s.store.LinkBlob(ctx, repo, dgst)
	})
}

// mirrorWriteRefused is the answer to a push or a delete to a mirror that refuses them.
func mirrorWriteRefused(r *http.Request) error {
	return newError(http.StatusMethodNotAllowed, codeUnsupported, "this registry is a mirror: %s is not allowed", r.Method).
		withHeader("Allow", "GET, HEAD")
}

// isWrite reports whether r changes the registry.
func isWrite(r *http.Request) bool {
	switch strings.ToUpper(r.Method) {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}
