package remote

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Credentials authenticate the client to a registry or a mirror: a username and password
// (sent with basic auth, or to the token server), an identity token (an OAuth2 refresh token
// that `docker login` stores for some registries), or a registry token sent as it is.
type Credentials struct {
	Username string
	Password string
	// IdentityToken is exchanged at the token server for access tokens.
	IdentityToken string
	// RegistryToken is sent as the bearer token of every request.
	RegistryToken string
}

// empty reports whether c holds nothing.
func (c Credentials) empty() bool { return c == Credentials{} }

// CredentialsFunc returns the credentials for a host ("registry.example.com:5000",
// "registry-1.docker.io"), or zero Credentials for anonymous access. It is called from many
// goroutines at once.
type CredentialsFunc func(ctx context.Context, host string) (Credentials, error)

// dockerConfig is the part of a docker config.json that holds credentials.
type dockerConfig struct {
	Auths map[string]struct {
		Auth          string `json:"auth"`
		Username      string `json:"username"`
		Password      string `json:"password"`
		IdentityToken string `json:"identitytoken"`
		RegistryToken string `json:"registrytoken"`
	} `json:"auths"`
	CredsStore  string            `json:"credsStore"`
	CredHelpers map[string]string `json:"credHelpers"`
}

// defaultDockerConfig is where docker keeps config.json: $DOCKER_CONFIG/config.json, or
// ~/.docker/config.json.
func defaultDockerConfig() string {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".docker", "config.json")
}

// readDockerConfig reads the credentials of a docker config.json, keyed by host, and its
// credential helpers (credsStore, credHelpers), nil if it names none. A missing file gives
// none when missingOK.
func readDockerConfig(path string, missingOK bool) (map[string]Credentials, *credHelpers, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && missingOK {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: docker config: %v", ErrInvalidOption, err)
	}
	var cfg dockerConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, nil, fmt.Errorf("%w: docker config %s: %v", ErrInvalidOption, path, err)
	}
	var helpers *credHelpers
	if cfg.CredsStore != "" || len(cfg.CredHelpers) > 0 {
		helpers = &credHelpers{config: path, store: cfg.CredsStore, byHost: make(map[string]string), run: runHelper, cache: make(map[string]*helperAnswer)}
		for key, name := range cfg.CredHelpers {
			helpers.byHost[dockerConfigHost(key)] = name
		}
	}
	creds := make(map[string]Credentials)
	for key, a := range cfg.Auths {
		c := Credentials{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
		if a.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: docker config %s: auth of %s is not base64", ErrInvalidOption, path, key)
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, nil, fmt.Errorf("%w: docker config %s: auth of %s is not user:password", ErrInvalidOption, path, key)
			}
			c.Username, c.Password = user, pass
		}
		if !c.empty() {
			creds[dockerConfigHost(key)] = c
		}
	}
	return creds, helpers, nil
}

// dockerConfigHost turns a key of config.json's "auths" ("https://index.docker.io/v1/",
// "http://r.example:5000/v2/", "r.example") into the host requests go to.
func dockerConfigHost(key string) string {
	h := key
	if i := strings.Index(h, "://"); i >= 0 {
		h = h[i+3:]
	}
	h, _, _ = strings.Cut(h, "/")
	switch h {
	case "index.docker.io", "docker.io":
		return "registry-1.docker.io"
	}
	return h
}
