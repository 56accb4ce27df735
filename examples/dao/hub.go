package main

import (
	"context"
	"fmt"
	"net"

	"github.com/spf13/pflag"

	"github.com/opendao/dao/registry/hub"
)

// hubOptions are the flags of dao hub serve.
type hubOptions struct {
	config string
	addr   string
	root   string
}

func hubCommand() *command {
	var o hubOptions
	c := &command{
		name:    "hub",
		summary: "serve a multi-tenant OCI registry (dao hub serve)",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&o.config, "config", "", "read the registry's configuration from `FILE` (YAML: registry/hub.FileConfig)")
			fs.StringVar(&o.addr, "addr", "", "listen on `HOST:PORT` (default the file's addr, else 127.0.0.1:5000)")
			fs.StringVar(&o.root, "root", "", "keep images and the hub's state in `DIR` (default the file's root)")
		},
		usage: `Usage: dao hub serve [--config FILE] [--addr HOST:PORT] [--root DIR]

Serves Dao's registry (registry/server, the OCI distribution API 1.1) with projects,
users, robot accounts, roles, quotas and Docker token authentication (registry/hub), until
interrupted. The file is YAML:

  addr: 127.0.0.1:5000
  root: /var/lib/dao/hub
  gc: {interval: 1h, grace: 1h, deleteUntagged: true}   # online; quotas follow
  notifications:                    # webhooks on push, pull, delete, with the actor
    - {url: https://ci.example/hooks/registry, events: [push, delete]}
  hub:
    url: http://127.0.0.1:5000      # the token realm's base, as clients reach it
    users:
      - {name: admin, password: change-me, systemAdmin: true}
      - {name: alice, password: alice-secret}
    projects:
      - {name: team-a, public: false, quota: 10GiB, members: {alice: developer}}
      - {name: dockerhub, public: true, proxy: {upstream: https://registry-1.docker.io}}

Clients log in as with any registry (docker login, skopeo --creds, ctr --user); the token
endpoint is /token, the app store listing /api/v1/projects. A project with a proxy is a
proxy cache, as Harbor's: dockerhub/library/nginx is pulled through from the upstream's
library/nginx with the same digests, and pushes to it are refused. --addr and --root
override the file's fields.
`,
	}
	c.run = func(ctx context.Context, g *globals, args []string) int {
		if len(args) != 1 || args[0] != "serve" {
			return usageError(g.stderr, c.name, "want: dao hub serve [options]")
		}
		if err := runHub(ctx, g, &o); err != nil {
			return fail(g, c.name, err)
		}
		return exitOK
	}
	return c
}

func runHub(ctx context.Context, g *globals, o *hubOptions) error {
	var cfg hub.FileConfig
	if o.config != "" {
		var err error
		if cfg, err = hub.LoadConfig(o.config); err != nil {
			return err
		}
	}
	if o.addr != "" {
		cfg.Addr = o.addr
	}
	if o.root != "" {
		cfg.Root = o.root
	}
	return hub.ListenAndServe(ctx, cfg, func(a net.Addr) {
		fmt.Fprintf(g.stdout, "dao hub: serving %s on http://%s (token endpoint /token)\n", cfg.Root, a)
	})
}
