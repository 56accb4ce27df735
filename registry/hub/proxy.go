package hub

import (
	"fmt"
	"slices"
	"strings"

	"github.com/opendao/dao/registry/server"
)

// A proxy cache project is Harbor's: a project bound to an upstream registry, whose
// repositories are the upstream's, pulled through the hub. A pull of
// hub.example/dockerhub/library/nginx:1.27 from a project "dockerhub" that caches
// https://registry-1.docker.io fetches library/nginx:1.27 from the upstream the first
// time (server.Mirror: verified, stored under the same digests, a tag asked again after
// the mirror's TTL, served from the store while the upstream is down) and from the hub's
// store after. Pushes and deletes are refused (405 UNSUPPORTED); the project's access
// control applies as to any project (make it public for anonymous pulls); what it caches
// counts in its usage, but a pull is never refused for its quota. The garbage collection
// treats the cache as any content: with gc.WithDeleteUntagged, images whose tags were
// never pulled again are collected, and fetched again when asked.

// startProxies makes the registry servers of the proxy cache projects, each a
// server.Mirror of its upstream with the project's name as its Namespace, over the
// hub's store and with the hub's options.
func (h *Hub) startProxies(opts []server.Option) error {
	h.proxies = map[string]*server.Server{}
	for name, mc := range h.cfg.ProxyCaches {
		if err := validateProjectName(name); err != nil {
			return fmt.Errorf("Config.ProxyCaches: %w", err)
		}
		if mc.AllowPush {
			return fmt.Errorf("%w: Config.ProxyCaches[%s]: allowPush: a proxy cache project takes no pushes", ErrInvalidOption, name)
		}
		if mc.Namespace != "" && mc.Namespace != name {
			return fmt.Errorf("%w: Config.ProxyCaches[%s]: namespace %q: a proxy cache's namespace is its project", ErrInvalidOption, name, mc.Namespace)
		}
		mc.Namespace = name
		m, err := server.NewMirror(mc)
		if err != nil {
			return fmt.Errorf("%w: Config.ProxyCaches[%s]: %v", ErrInvalidOption, name, err)
		}
		h.mirrors = append(h.mirrors, m)
		srv, err := server.New(h.store, append(slices.Clone(opts), server.WithMirror(m))...)
		if err != nil {
			return err
		}
		h.proxies[name] = srv
	}
	return nil
}

// closeProxies closes the mirrors' upstream connections.
func (h *Hub) closeProxies() {
	for _, m := range h.mirrors {
		m.Close()
	}
}

// serverFor returns the registry server of a /v2/ path: a proxy cache project's, or
// the hub's.
func (h *Hub) serverFor(path string) *server.Server {
	if len(h.proxies) > 0 {
		if rest, ok := strings.CutPrefix(path, "/v2/"); ok {
			if proj, _, ok := strings.Cut(rest, "/"); ok {
				if p := h.proxies[proj]; p != nil {
					return p
				}
			}
		}
	}
	return h.srv
}

// ProxyCache returns the upstream a project caches, if it is a proxy cache project.
func (h *Hub) ProxyCache(project string) (upstream string, ok bool) {
	mc, ok := h.cfg.ProxyCaches[project]
	return mc.Upstream, ok
}
