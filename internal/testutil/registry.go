package testutil

import (
	"testing"

	"github.com/opendao/dao/internal/daemon"
)

// The user that RegistryBasicAuth lets in.
const (
	RegistryUser     = "dao"
	RegistryPassword = "dao-secret"
)

// registryHtpasswd is RegistryUser with RegistryPassword hashed by bcrypt at cost 4 (the
// registry checks it on every request, so a cheap cost keeps tests fast). Made with
// python3 -c "import crypt; print(crypt.crypt('dao-secret', crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))".
const registryHtpasswd = RegistryUser + ":$2b$04$lMixKmIhXdy3b9zMisaOXehGs5hdnIyRZVh0s59rjC08xUkOrGwZe\n"

// RegistryBasicAuth protects a registry with basic authentication that lets RegistryUser in
// with RegistryPassword.
func RegistryBasicAuth() daemon.RegistryOption { return daemon.WithHtpasswd(registryHtpasswd) }

// Registry is a private docker-registry for one test. StartRegistry starts it; when the test
// ends it is stopped and its directory removed, and its log is printed if the test failed.
type Registry struct {
	*daemon.Registry

	t testing.TB
}

// StartRegistry starts a private docker-registry on 127.0.0.1 for t, with opts (such as
// RegistryBasicAuth or daemon.WithTokenAuth), and waits until it answers. It skips or fails
// the test as RequireIntegration says when docker-registry is not installed.
func StartRegistry(t testing.TB, opts ...daemon.RegistryOption) *Registry {
	t.Helper()
	RequireIntegration(t, "docker-registry")
	d, err := daemon.StartRegistry(opts...)
	if err != nil {
		t.Fatalf("start registry: %v", err)
	}
	r := &Registry{Registry: d, t: t}
	t.Cleanup(r.cleanup)
	return r
}

// Ref returns the reference of repo (and tag or digest, as in "app:1" or "app@sha256:...")
// on the registry, such as "127.0.0.1:41234/app:1".
func (r *Registry) Ref(repo string) string { return r.Addr + "/" + repo }

func (r *Registry) cleanup() {
	if r.t.Failed() {
		log := r.Log()
		const keep = 8 << 10
		if len(log) > keep {
			log = "...\n" + log[len(log)-keep:]
		}
		r.t.Logf("registry log (%s):\n%s", r.LogPath, log)
	}
	if err := r.Close(); err != nil {
		r.t.Logf("remove %s: %v", r.Dir, err)
	}
}
