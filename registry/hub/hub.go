package hub

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/bcrypt"

	"github.com/opendao/dao/registry/server"
	"github.com/opendao/dao/registry/server/gc"
	"github.com/opendao/dao/registry/server/storage"
)

// Config is what New needs. Only Root is required.
type Config struct {
	// Root is the hub's directory: its database (hub.db, the accounts, projects and
	// signing key) and, unless Store is set, the file system store of the content.
	Root string
	// Store keeps the content; storage.OpenFS(Root) if nil.
	Store storage.Store
	// URL is the hub's external base URL ("https://hub.example"), for the token realm of
	// its challenges. If empty, it is read from each request: http (https with TLS) and
	// its Host.
	URL string
	// Service is the name of the token service, the audience of tokens and the service
	// of challenges; "dao-hub" if empty.
	Service string
	// Issuer is the iss of the tokens; Service if empty.
	Issuer string
	// TokenLifetime is how long a token is valid; 5 minutes if 0, at least a second.
	TokenLifetime time.Duration
	// RefreshLifetime is how long a refresh token (docker's identity token, given for an
	// offline token request) is valid; 7 days if 0.
	RefreshLifetime time.Duration
	// ServerOptions are options of the registry server; the hub's own (its Authorizer,
	// Quota, Events, CatalogFilter, Fence, and no automatic mounts) come after them.
	ServerOptions []server.Option
	// GC is the online garbage collection; none by default (but Hub.CollectGarbage).
	GC GCConfig
	// Events, if not nil, is called after each push, pull and delete through the hub
	// has succeeded, on the request's goroutine and before the answer is written (as a
	// server.EventFunc is), so it must be quick: give a server.Notifier's Send its
	// Event to send webhooks, which only queues. A server.WithEvents among
	// ServerOptions is replaced by the hub's; this is the hub's hook.
	Events func(Event)
	// ProxyCaches are the proxy cache projects, by name, with the upstream each caches
	// (server.MirrorConfig: its URL, credentials and tag TTL; its Namespace is the
	// project's name, and AllowPush is refused): pulls of <project>/<repository> are
	// served from the upstream's <repository>, with the same digests, and pushes are
	// refused. The projects must be created as any other, with their members. None by
	// default.
	ProxyCaches map[string]server.MirrorConfig
	// Clock is the hub's clock, for tokens and quota reservations; time.Now if nil.
	Clock func() time.Time
	// BcryptCost is the cost of password hashes; bcrypt.DefaultCost if 0.
	BcryptCost int
}

// Hub is a multi-tenant registry: projects of repositories, users with roles in them,
// robot accounts, token authentication and per-project quotas, over a registry server.
// It is safe for simultaneous use. Close it when done.
type Hub struct {
	cfg    Config
	store  storage.Store
	db     *bolt.DB
	signer *signer
	srv    *server.Server
	usage  *usage
	now    func() time.Time

	wmu sync.Mutex // serialises changes of the state
	mu  sync.RWMutex
	st  *state // published whole; never modified once published

	basic basicCache

	fence  *gc.Fence     // entered by the server's manifest puts, for the collections
	gcLock chan struct{} // held by the collection in progress
	gcStop context.CancelFunc
	gcDone chan struct{}

	proxies map[string]*server.Server // of the proxy cache projects, by name
	mirrors []*server.Mirror
}

// New opens the hub under cfg.Root, creating it if needed, and counts each project's
// usage from its store. ctx bounds that count.
func New(ctx context.Context, cfg Config) (*Hub, error) {
	if cfg.Root == "" {
		return nil, fmt.Errorf("%w: Config.Root is required", ErrInvalidOption)
	}
	if cfg.Service == "" {
		cfg.Service = "dao-hub"
	}
	if cfg.Issuer == "" {
		cfg.Issuer = cfg.Service
	}
	if cfg.TokenLifetime == 0 {
		cfg.TokenLifetime = 5 * time.Minute
	}
	if cfg.TokenLifetime < time.Second {
		return nil, fmt.Errorf("%w: Config.TokenLifetime %v: at least a second", ErrInvalidOption, cfg.TokenLifetime)
	}
	if cfg.RefreshLifetime == 0 {
		cfg.RefreshLifetime = 7 * 24 * time.Hour
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = bcrypt.DefaultCost
	}
	if cfg.BcryptCost < bcrypt.MinCost || cfg.BcryptCost > bcrypt.MaxCost {
		return nil, fmt.Errorf("%w: Config.BcryptCost %d", ErrInvalidOption, cfg.BcryptCost)
	}
	cfg.URL = strings.TrimSuffix(cfg.URL, "/")
	if err := os.MkdirAll(cfg.Root, 0o755); err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	h := &Hub{cfg: cfg, store: cfg.Store, now: cfg.Clock, fence: gc.NewFence(), gcLock: make(chan struct{}, 1)}
	if h.store == nil {
		st, err := storage.OpenFS(cfg.Root)
		if err != nil {
			return nil, err
		}
		h.store = st
	}
	db, err := bolt.Open(filepath.Join(cfg.Root, "hub.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("hub: open %s: %w", filepath.Join(cfg.Root, "hub.db"), err)
	}
	h.db = db
	ok := false
	defer func() {
		if !ok {
			db.Close()
		}
	}()
	st, err := loadState(db)
	if err != nil {
		return nil, err
	}
	if st.Key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("hub: signing key: %w", err)
		}
		if st.Key, err = x509.MarshalPKCS8PrivateKey(k); err != nil {
			return nil, fmt.Errorf("hub: signing key: %w", err)
		}
		if err := saveState(db, st); err != nil {
			return nil, err
		}
	}
	h.st = st
	if h.signer, err = newSigner(st.Key, cfg.Issuer, cfg.Service, cfg.Clock); err != nil {
		return nil, err
	}
	h.usage = newUsage(db, h.store, cfg.Clock)
	if err := h.usage.recount(ctx); err != nil {
		return nil, err
	}
	h.usage.start()
	defer func() {
		if !ok {
			h.usage.close()
		}
	}()
	opts := append(slices.Clone(cfg.ServerOptions),
		server.WithAuthorizer(h.Authorizer()),
		server.WithQuota(server.QuotaFunc(h.admit)),
		server.WithEvents(h.event),
		server.WithCatalogFilter(h.catalogVisible),
		server.WithAutomaticMount(false),
		server.WithFence(h.fence),
	)
	if h.srv, err = server.New(h.store, opts...); err != nil {
		return nil, err
	}
	defer func() {
		if !ok {
			h.closeProxies()
		}
	}()
	if err := h.startProxies(opts); err != nil {
		return nil, err
	}
	if err := h.startGC(); err != nil {
		return nil, err
	}
	ok = true
	return h, nil
}

// Close stops the periodic garbage collection (interrupting one in progress and waiting
// for it), writes what is left of the usage to the hub's database and closes it.
// Requests in flight may fail. Close must be called once.
func (h *Hub) Close() error {
	h.stopGC()
	h.closeProxies()
	h.usage.close()
	return h.db.Close()
}

// Store returns the store of the hub's content.
func (h *Hub) Store() storage.Store { return h.store }

// state returns the current state, which the caller must not modify.
func (h *Hub) state() *state {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.st
}

// change applies fn to a copy of the state, persists it and publishes it; if fn or the
// write fails, nothing changes.
func (h *Hub) change(ctx context.Context, fn func(st *state) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	h.wmu.Lock()
	defer h.wmu.Unlock()
	st := h.state().clone()
	if err := fn(st); err != nil {
		return err
	}
	if err := saveState(h.db, st); err != nil {
		return err
	}
	h.mu.Lock()
	h.st = st
	h.mu.Unlock()
	return nil
}

// CreateProject creates a project with no members. Its Members, if any, must be users.
func (h *Hub) CreateProject(ctx context.Context, p Project) error {
	if err := validateProjectName(p.Name); err != nil {
		return err
	}
	if p.Quota < 0 {
		return fmt.Errorf("%w: project %s: quota %d", ErrInvalidOption, p.Name, p.Quota)
	}
	return h.change(ctx, func(st *state) error {
		if _, ok := st.Projects[p.Name]; ok {
			return fmt.Errorf("%w: project %s", ErrExists, p.Name)
		}
		np := &Project{Name: p.Name, Public: p.Public, Quota: p.Quota, Members: map[string]Role{}}
		for u, r := range p.Members {
			if _, ok := st.Users[u]; !ok {
				return fmt.Errorf("%w: project %s: member %s: no such user", ErrNotFound, p.Name, u)
			}
			if !r.Valid() {
				return fmt.Errorf("%w: project %s: member %s: role %q", ErrInvalidOption, p.Name, u, r)
			}
			np.Members[u] = r
		}
		st.Projects[p.Name] = np
		return nil
	})
}

// DeleteProject deletes a project's record (its members and quota); the content of its
// repositories stays in the store, out of everyone's reach but system admins'.
func (h *Hub) DeleteProject(ctx context.Context, name string) error {
	return h.change(ctx, func(st *state) error {
		if _, ok := st.Projects[name]; !ok {
			return fmt.Errorf("%w: project %s", ErrNotFound, name)
		}
		delete(st.Projects, name)
		return nil
	})
}

// SetPublic makes a project public or private.
func (h *Hub) SetPublic(ctx context.Context, project string, public bool) error {
	return h.change(ctx, func(st *state) error {
		p, ok := st.Projects[project]
		if !ok {
			return fmt.Errorf("%w: project %s", ErrNotFound, project)
		}
		p.Public = public
		return nil
	})
}

// SetQuota sets the most bytes a project may hold; 0 is no limit. Lowering it under the
// usage refuses further pushes but deletes nothing.
func (h *Hub) SetQuota(ctx context.Context, project string, bytes int64) error {
	if bytes < 0 {
		return fmt.Errorf("%w: SetQuota: %d bytes", ErrInvalidOption, bytes)
	}
	return h.change(ctx, func(st *state) error {
		p, ok := st.Projects[project]
		if !ok {
			return fmt.Errorf("%w: project %s", ErrNotFound, project)
		}
		p.Quota = bytes
		return nil
	})
}

// AddMember gives user the role in project, replacing the role it had.
func (h *Hub) AddMember(ctx context.Context, project, user string, role Role) error {
	if !role.Valid() {
		return fmt.Errorf("%w: AddMember: role %q: want admin, maintainer, developer or guest", ErrInvalidOption, role)
	}
	return h.change(ctx, func(st *state) error {
		p, ok := st.Projects[project]
		if !ok {
			return fmt.Errorf("%w: project %s", ErrNotFound, project)
		}
		if _, ok := st.Users[user]; !ok {
			return fmt.Errorf("%w: user %s", ErrNotFound, user)
		}
		p.Members[user] = role
		return nil
	})
}

// RemoveMember takes user out of project.
func (h *Hub) RemoveMember(ctx context.Context, project, user string) error {
	return h.change(ctx, func(st *state) error {
		p, ok := st.Projects[project]
		if !ok {
			return fmt.Errorf("%w: project %s", ErrNotFound, project)
		}
		if _, ok := p.Members[user]; !ok {
			return fmt.Errorf("%w: %s is not a member of %s", ErrNotFound, user, project)
		}
		delete(p.Members, user)
		return nil
	})
}

// CreateUser creates a user with a password, kept as a bcrypt hash. The password must
// have 8 to 72 bytes (bcrypt reads no more).
func (h *Hub) CreateUser(ctx context.Context, u User, password string) error {
	if err := validateUserName(u.Name); err != nil {
		return err
	}
	hash, err := h.hashPassword(password)
	if err != nil {
		return err
	}
	return h.putUser(ctx, u, hash)
}

// putUser creates a user with a password hash.
func (h *Hub) putUser(ctx context.Context, u User, hash []byte) error {
	return h.change(ctx, func(st *state) error {
		if _, ok := st.Users[u.Name]; ok {
			return fmt.Errorf("%w: user %s", ErrExists, u.Name)
		}
		st.Users[u.Name] = &userRecord{User: u, Hash: hash}
		return nil
	})
}

func (h *Hub) hashPassword(password string) ([]byte, error) {
	if len(password) < 8 || len(password) > 72 {
		return nil, fmt.Errorf("%w: a password of %d bytes: 8 to 72", ErrInvalidOption, len(password))
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), h.cfg.BcryptCost)
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	return hash, nil
}

// SetPassword changes a user's password.
func (h *Hub) SetPassword(ctx context.Context, user, password string) error {
	hash, err := h.hashPassword(password)
	if err != nil {
		return err
	}
	return h.change(ctx, func(st *state) error {
		u, ok := st.Users[user]
		if !ok {
			return fmt.Errorf("%w: user %s", ErrNotFound, user)
		}
		u.Hash = hash
		return nil
	})
}

// DeleteUser deletes a user and its memberships; its tokens stop working at once.
func (h *Hub) DeleteUser(ctx context.Context, user string) error {
	return h.change(ctx, func(st *state) error {
		if _, ok := st.Users[user]; !ok {
			return fmt.Errorf("%w: user %s", ErrNotFound, user)
		}
		delete(st.Users, user)
		for _, p := range st.Projects {
			delete(p.Members, user)
		}
		return nil
	})
}

// CreateRobot creates a robot account limited to r.Permissions, each within an existing
// project, and returns its full name (RobotPrefix and r.Name, which may hold the prefix
// already) and its secret, which the hub keeps only as a hash: this is the only time it
// is told.
func (h *Hub) CreateRobot(ctx context.Context, r Robot) (name, secret string, err error) {
	name = RobotPrefix + strings.TrimPrefix(r.Name, RobotPrefix)
	if err := validateUserName(strings.TrimPrefix(name, RobotPrefix)); err != nil {
		return "", "", err
	}
	if len(r.Permissions) == 0 {
		return "", "", fmt.Errorf("%w: robot %s: no permissions", ErrInvalidOption, name)
	}
	for _, p := range r.Permissions {
		if err := p.validate(); err != nil {
			return "", "", fmt.Errorf("robot %s: %w", name, err)
		}
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", "", err
	}
	secret = base64.RawURLEncoding.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(secret))
	r.Name = name
	r.Permissions = slices.Clone(r.Permissions)
	err = h.change(ctx, func(st *state) error {
		if _, ok := st.Robots[name]; ok {
			return fmt.Errorf("%w: robot %s", ErrExists, name)
		}
		for _, p := range r.Permissions {
			if _, ok := st.Projects[p.project()]; !ok {
				return fmt.Errorf("%w: robot %s: permission %q: project %s", ErrNotFound, name, p.Repository, p.project())
			}
		}
		st.Robots[name] = &robotRecord{Robot: r, SecretHash: sum[:]}
		return nil
	})
	if err != nil {
		return "", "", err
	}
	return name, secret, nil
}

// DeleteRobot deletes a robot account; its tokens stop working at once.
func (h *Hub) DeleteRobot(ctx context.Context, name string) error {
	return h.change(ctx, func(st *state) error {
		if _, ok := st.Robots[name]; !ok {
			return fmt.Errorf("%w: robot %s", ErrNotFound, name)
		}
		delete(st.Robots, name)
		return nil
	})
}

// Project returns a project, or an error matching ErrNotFound.
func (h *Hub) Project(name string) (Project, error) {
	p, ok := h.state().Projects[name]
	if !ok {
		return Project{}, fmt.Errorf("%w: project %s", ErrNotFound, name)
	}
	return copyProject(p), nil
}

func copyProject(p *Project) Project {
	c := *p
	c.Members = make(map[string]Role, len(p.Members))
	for k, v := range p.Members {
		c.Members[k] = v
	}
	return c
}

// Projects lists the projects by name.
func (h *Hub) Projects() []Project {
	st := h.state()
	out := make([]Project, 0, len(st.Projects))
	for _, p := range st.Projects {
		out = append(out, copyProject(p))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Users lists the users by name.
func (h *Hub) Users() []User {
	st := h.state()
	out := make([]User, 0, len(st.Users))
	for _, u := range st.Users {
		out = append(out, u.User)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Robots lists the robot accounts by name.
func (h *Hub) Robots() []Robot {
	st := h.state()
	out := make([]Robot, 0, len(st.Robots))
	for _, r := range st.Robots {
		c := r.Robot
		c.Permissions = slices.Clone(r.Permissions)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Usage returns the bytes a project holds, each blob and manifest counted once, and its
// quota (0 for none).
func (h *Hub) Usage(project string) (used, quota int64, err error) {
	p, ok := h.state().Projects[project]
	if !ok {
		return 0, 0, fmt.Errorf("%w: project %s", ErrNotFound, project)
	}
	return h.usage.used(project), p.Quota, nil
}

// Recount counts every project's usage again from the store, as New does: after content
// was removed behind the hub's back (a garbage collection not run by the hub, which
// CollectGarbage and GCConfig account for themselves).
func (h *Hub) Recount(ctx context.Context) error { return h.usage.recount(ctx) }

// Handler returns the hub's whole HTTP API: the registry (/v2/) with the hub's
// authorization, quotas and catalog, the token endpoint (/token) and the JSON API
// (/api/v1/).
func (h *Hub) Handler() http.Handler {
	api := h.apiHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/token":
			h.serveToken(w, r)
		case strings.HasPrefix(r.URL.Path, "/api/"):
			api.ServeHTTP(w, r)
		default:
			id := h.identify(r)
			r, ok := h.guardUpload(w, r, id)
			if !ok {
				return
			}
			h.serverFor(r.URL.Path).ServeHTTP(w, r.WithContext(withIdentity(r.Context(), id)))
		}
	})
}
