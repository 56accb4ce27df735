package daemon

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Registry is a private CNCF Distribution registry (Debian's docker-registry, version 2.8) on
// 127.0.0.1, serving plain HTTP, with its storage, config and log under Dir. Deleting
// manifests and blobs is enabled.
type Registry struct {
	// Dir holds config.yml, the storage under data/, the auth files and the log.
	Dir string
	// Addr is the host and port the registry listens on, such as "127.0.0.1:41234": the
	// registry part of the references it serves.
	Addr string
	// LogPath is the registry's log file.
	LogPath string

	cmd    *exec.Cmd
	exited chan struct{}
}

// RegistryOption configures StartRegistry.
type RegistryOption func(*registryConfig) error

type registryConfig struct {
	htpasswd string
	token    *TokenAuth
}

// TokenAuth configures a registry for bearer token authentication: it sends clients to Realm
// for tokens and accepts only JWTs issued by Issuer for Service and signed with a key whose
// certificate chain leads to a certificate of RootCertPEM (distribution 2.8 takes the chain
// from the token's "x5c" header and accepts RS256 and ES256, among others).
type TokenAuth struct {
	// Realm is the URL of the token server.
	Realm string
	// Service is the name of the registry the tokens are for (their "aud" claim).
	Service string
	// Issuer is the token server's name (the tokens' "iss" claim).
	Issuer string
	// RootCertPEM holds the PEM certificates that token signing chains must lead to.
	RootCertPEM []byte
}

// WithHtpasswd protects the registry with basic authentication against htpasswd, the content
// of an htpasswd file: one "user:hash" line per user, where hash is bcrypt (the only kind
// distribution accepts). The default is no authentication.
func WithHtpasswd(htpasswd string) RegistryOption {
	return func(c *registryConfig) error {
		if !strings.Contains(htpasswd, ":$2") {
			return errors.New("daemon: htpasswd needs user:bcrypt-hash lines")
		}
		c.htpasswd = htpasswd
		return nil
	}
}

// WithTokenAuth protects the registry with bearer tokens from the token server that a
// describes. The default is no authentication.
func WithTokenAuth(a TokenAuth) RegistryOption {
	return func(c *registryConfig) error {
		if a.Realm == "" || a.Service == "" || a.Issuer == "" || len(a.RootCertPEM) == 0 {
			return errors.New("daemon: token auth needs a realm, a service, an issuer and a root certificate")
		}
		c.token = &a
		return nil
	}
}

// StartRegistry starts docker-registry on a free port of 127.0.0.1 with its storage under a
// new temporary directory, and waits until it answers.
func StartRegistry(opts ...RegistryOption) (*Registry, error) {
	var cfg registryConfig
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.htpasswd != "" && cfg.token != nil {
		return nil, errors.New("daemon: a registry takes htpasswd or token auth, not both")
	}
	if _, err := exec.LookPath("docker-registry"); err != nil {
		return nil, fmt.Errorf("daemon: docker-registry is not installed (Debian package docker-registry): %w", err)
	}
	reapStale()
	dir, err := os.MkdirTemp("", registryPrefix)
	if err != nil {
		return nil, err
	}
	if err := writeOwner(dir); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	r := &Registry{Dir: dir, LogPath: filepath.Join(dir, "registry.log")}
	// Another process may take the free port between our look and the registry's bind: try
	// again on a new one.
	for attempt := 0; ; attempt++ {
		err = r.start(cfg)
		if err == nil {
			return r, nil
		}
		if attempt == 2 || !strings.Contains(r.Log(), "address already in use") {
			log := r.Log()
			os.RemoveAll(dir)
			return nil, fmt.Errorf("%w\n%s", err, log)
		}
	}
}

// start writes the config for a new free port and starts the registry on it.
func (r *Registry) start(cfg registryConfig) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	r.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	config, err := r.config(cfg)
	if err != nil {
		return err
	}
	configPath := filepath.Join(r.Dir, "config.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		return err
	}
	logf, err := os.OpenFile(r.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command("docker-registry", "serve", configPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("daemon: start docker-registry: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for r.ping() != nil {
		select {
		case <-exited:
			return errors.New("daemon: docker-registry exited while starting")
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return errors.New("daemon: docker-registry did not answer within 10s")
		}
	}
	r.cmd, r.exited = cmd, exited
	return nil
}

// config renders config.yml, writing the auth files it points to.
func (r *Registry) config(cfg registryConfig) (string, error) {
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, `version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %q
  secret: %q
`, filepath.Join(r.Dir, "data"), r.Addr, hex.EncodeToString(secret))
	switch {
	case cfg.htpasswd != "":
		path := filepath.Join(r.Dir, "htpasswd")
		if err := os.WriteFile(path, []byte(cfg.htpasswd), 0o600); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "auth:\n  htpasswd:\n    realm: dao-test\n    path: %q\n", path)
	case cfg.token != nil:
		path := filepath.Join(r.Dir, "token-root.pem")
		if err := os.WriteFile(path, cfg.token.RootCertPEM, 0o600); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "auth:\n  token:\n    realm: %q\n    service: %q\n    issuer: %q\n    rootcertbundle: %q\n",
			cfg.token.Realm, cfg.token.Service, cfg.token.Issuer, path)
	}
	return b.String(), nil
}

// ping reports whether the registry answers on /v2/ (with 200, or 401 when it wants auth).
func (r *Registry) ping() error {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + r.Addr + "/v2/")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("daemon: registry answers /v2/ with %s", resp.Status)
	}
	return nil
}

// freePort returns a TCP port of 127.0.0.1 that nothing listens on at the moment.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Log returns the registry's log so far.
func (r *Registry) Log() string {
	b, _ := os.ReadFile(r.LogPath)
	return string(b)
}

// Close stops the registry (SIGTERM, SIGKILL after 5s) and removes its directory.
func (r *Registry) Close() error {
	if r.cmd != nil {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.exited:
		case <-time.After(5 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.exited
		}
		r.cmd = nil
	}
	return os.RemoveAll(r.Dir)
}
