package hub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"go.yaml.in/yaml/v4"
	"golang.org/x/crypto/bcrypt"

	"github.com/opendao/dao/registry/server"
)

// FileConfig is a hub's configuration file, in YAML (or JSON): the registry server's
// Config (addr, root, limits, tls) and a hub section that declares its service and the
// projects and accounts it starts with:
//
//	addr: 127.0.0.1:5000
//	root: /var/lib/dao/hub
//	rateLimit: {perSecond: 100, burst: 200}
//	gc: {interval: 1h, grace: 1h, uploadTTL: 24h, deleteUntagged: true}
//	notifications:                    # webhooks, with the actor: the user or robot
//	  - {url: https://ci.example/hooks/registry, events: [push, delete]}
//	hub:
//	  url: https://hub.example        # the token realm's base; from the request if absent
//	  service: dao-hub
//	  tokenLifetime: 5m
//	  users:
//	    - {name: root, passwordHash: "$2a$10$...", systemAdmin: true}
//	    - {name: alice, password: correct-horse}
//	  projects:
//	    - {name: team-a, public: false, quota: 10GiB, members: {alice: developer}}
//	    - {name: library, public: true}
//	    - {name: dockerhub, public: true, proxy: {upstream: https://registry-1.docker.io, ttl: 5m}}
//
// Users and projects are created when the hub starts if they do not exist; those that
// exist are left as they are (their passwords, members and quotas may have been changed
// since), but for a project's proxy, which applies at each start. gc runs the hub's
// collection (Config.GC), notifications send the hub's events (Config.Events), and a
// project's proxy makes it a proxy cache (Config.ProxyCaches). The server's own users
// field (basic auth) is refused: the hub has accounts; so is its mirror, since a hub
// mirrors per project.
type FileConfig struct {
	server.Config `yaml:",inline"`
	// Hub is the hub's section.
	Hub HubSection `yaml:"hub"`
}

// HubSection is the hub's part of a FileConfig.
type HubSection struct {
	// URL, Service, Issuer, TokenLifetime and RefreshLifetime are Config's fields of
	// those names; durations are written "5m", "168h".
	URL             string        `yaml:"url"`
	Service         string        `yaml:"service"`
	Issuer          string        `yaml:"issuer"`
	TokenLifetime   time.Duration `yaml:"tokenLifetime"`
	RefreshLifetime time.Duration `yaml:"refreshLifetime"`
	// Users are created at start if they do not exist.
	Users []UserSpec `yaml:"users"`
	// Projects are created at start if they do not exist, after the users.
	Projects []ProjectSpec `yaml:"projects"`
}

// UserSpec declares a user: its password in clear, or better its bcrypt hash
// (htpasswd -nbB user pass gives one).
type UserSpec struct {
	// Name is the user's name.
	Name string `yaml:"name"`
	// Password is the password in clear; give it or PasswordHash.
	Password string `yaml:"password"`
	// PasswordHash is a bcrypt hash of the password ("$2y$..." or "$2a$...").
	PasswordHash string `yaml:"passwordHash"`
	// SystemAdmin makes the user a system admin.
	SystemAdmin bool `yaml:"systemAdmin"`
}

// ProjectSpec declares a project; Quota is a size as ParseSize reads it ("10GiB").
type ProjectSpec struct {
	// Name is the project's name.
	Name string `yaml:"name"`
	// Public lets anyone pull.
	Public bool `yaml:"public"`
	// Quota is the project's quota, "" or "0" for none.
	Quota string `yaml:"quota"`
	// Members are users declared in the same file or existing, with their roles.
	Members map[string]Role `yaml:"members"`
	// Proxy makes the project a proxy cache of an upstream registry (Config.ProxyCaches):
	// {upstream: https://registry-1.docker.io, username: u, password: p, ttl: 5m}. It
	// applies at each start, to a project created before too.
	Proxy *server.MirrorConfig `yaml:"proxy"`
}

// maxConfigSize bounds a configuration file.
const maxConfigSize = 1 << 20

// LoadConfig reads a configuration file. Unknown fields are errors; errors match
// ErrInvalidOption.
func LoadConfig(path string) (FileConfig, error) {
	var c FileConfig
	data, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("hub: config: %w", err)
	}
	if len(data) > maxConfigSize {
		return c, fmt.Errorf("%w: config %s: more than %d bytes", ErrInvalidOption, path, maxConfigSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("%w: config %s: %v", ErrInvalidOption, path, err)
	}
	return c, c.Validate()
}

// Validate checks the fields that do not need the file system.
func (c FileConfig) Validate() error {
	if err := c.Config.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidOption, err)
	}
	if len(c.Users) > 0 {
		return fmt.Errorf("%w: config: users: the hub's accounts go under hub.users", ErrInvalidOption)
	}
	if c.AutomaticMount != nil && *c.AutomaticMount {
		return fmt.Errorf("%w: config: automaticMount: a hub never mounts without a source, which would let anyone read any blob", ErrInvalidOption)
	}
	// A hub mirrors per project, as Harbor's proxy cache projects do.
	if c.Mirror.Upstream != "" {
		return fmt.Errorf("%w: config: mirror: a hub mirrors per project: give the project a proxy (hub.projects[].proxy)", ErrInvalidOption)
	}
	for _, u := range c.Hub.Users {
		if err := validateUserName(u.Name); err != nil {
			return err
		}
		if (u.Password == "") == (u.PasswordHash == "") {
			return fmt.Errorf("%w: config: user %s: give password or passwordHash", ErrInvalidOption, u.Name)
		}
		if u.PasswordHash != "" {
			if _, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil {
				return fmt.Errorf("%w: config: user %s: passwordHash: %v", ErrInvalidOption, u.Name, err)
			}
		}
	}
	for _, p := range c.Hub.Projects {
		if err := validateProjectName(p.Name); err != nil {
			return err
		}
		if p.Quota != "" {
			if _, err := ParseSize(p.Quota); err != nil {
				return fmt.Errorf("project %s: %w", p.Name, err)
			}
		}
		for u, r := range p.Members {
			if !r.Valid() {
				return fmt.Errorf("%w: config: project %s: member %s: role %q", ErrInvalidOption, p.Name, u, r)
			}
		}
		if p.Proxy != nil {
			if p.Proxy.AllowPush || (p.Proxy.Namespace != "" && p.Proxy.Namespace != p.Name) {
				return fmt.Errorf("%w: config: project %s: proxy: a proxy cache project takes no allowPush or namespace", ErrInvalidOption, p.Name)
			}
			mc := *p.Proxy
			mc.Namespace = p.Name
			m, err := server.NewMirror(mc)
			if err != nil {
				return fmt.Errorf("%w: config: project %s: proxy: %v", ErrInvalidOption, p.Name, err)
			}
			m.Close()
		}
	}
	return nil
}

// HubConfig returns the Config New takes, with the server options the file gives.
func (c FileConfig) HubConfig() Config {
	var proxies map[string]server.MirrorConfig
	for _, p := range c.Hub.Projects {
		if p.Proxy != nil {
			if proxies == nil {
				proxies = map[string]server.MirrorConfig{}
			}
			proxies[p.Name] = *p.Proxy
		}
	}
	return Config{
		Root: c.Root, URL: c.Hub.URL, Service: c.Hub.Service, Issuer: c.Hub.Issuer,
		TokenLifetime: c.Hub.TokenLifetime, RefreshLifetime: c.Hub.RefreshLifetime,
		ServerOptions: c.Config.Options(),
		GC:            GCConfig{Interval: c.GC.Interval, Options: c.GC.Options()},
		ProxyCaches:   proxies,
	}
}

// Apply creates the users and projects the file declares that do not exist yet.
func (c FileConfig) Apply(ctx context.Context, h *Hub) error {
	st := h.state()
	for _, u := range c.Hub.Users {
		if _, ok := st.Users[u.Name]; ok {
			continue
		}
		var err error
		if u.PasswordHash != "" {
			err = h.putUser(ctx, User{Name: u.Name, SystemAdmin: u.SystemAdmin}, []byte(u.PasswordHash))
		} else {
			err = h.CreateUser(ctx, User{Name: u.Name, SystemAdmin: u.SystemAdmin}, u.Password)
		}
		if err != nil {
			return err
		}
	}
	for _, p := range c.Hub.Projects {
		if _, ok := st.Projects[p.Name]; ok {
			continue
		}
		var quota int64
		if p.Quota != "" {
			quota, _ = ParseSize(p.Quota)
		}
		if err := h.CreateProject(ctx, Project{Name: p.Name, Public: p.Public, Quota: quota, Members: p.Members}); err != nil {
			return err
		}
	}
	return nil
}

// ListenAndServe runs the hub c describes until ctx is done, then shuts down, letting
// requests in flight finish for up to 10 seconds. ready, if not nil, is called with the
// address listened on once it accepts connections.
func ListenAndServe(ctx context.Context, c FileConfig, ready func(addr net.Addr)) error {
	if err := c.Validate(); err != nil {
		return err
	}
	hc := c.HubConfig()
	send, stopNotifications, err := c.StartNotifications()
	if err != nil {
		return err
	}
	defer stopNotifications()
	if send != nil {
		hc.Events = func(e Event) { send(e.Event) }
	}
	h, err := New(ctx, hc)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := c.Apply(ctx, h); err != nil {
		return err
	}
	return server.Serve(ctx, c.Config, h.Handler(), ready)
}
