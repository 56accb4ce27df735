// Command hub serves an OCI registry, Dao's registry server, from a directory:
//
//	go run ./examples/hub --addr 127.0.0.1:5000 --root /tmp/hub
//	go run ./examples/hub --config hub.yaml
//	go run ./examples/hub --root /tmp/mirror --mirror https://registry.example.com --gc-interval 1h
//
// The configuration file is a registry/server.Config in YAML; --addr, --root, --mirror
// (a pull-through cache of an upstream) and --gc-interval (online garbage collection, with
// the default grace of an hour) override its fields. It stops on SIGINT or SIGTERM, letting requests in flight finish.
//
// It is the plain, single-tenant server. `dao hub serve` (examples/dao, registry/hub)
// runs the multi-tenant hub, whose file takes the same gc and notifications sections and
// mirrors per project instead (hub.projects[].proxy, Harbor's proxy cache projects).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/opendao/dao/registry/server"
)

func main() {
	log.SetFlags(0)
	if err := run(os.Args[1:]); err != nil {
		log.Fatal("hub: ", err)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("hub", flag.ContinueOnError)
	configFile := fs.String("config", "", "a registry/server.Config file (YAML)")
	addr := fs.String("addr", "", "address to listen on (default 127.0.0.1:5000)")
	root := fs.String("root", "", "directory of the store")
	mirror := fs.String("mirror", "", "upstream registry URL: serve as its pull-through cache")
	gcInterval := fs.Duration("gc-interval", 0, "run a garbage collection this often (0: none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var cfg server.Config
	if *configFile != "" {
		var err error
		if cfg, err = server.LoadConfig(*configFile); err != nil {
			return err
		}
	}
	if *addr != "" {
		cfg.Addr = *addr
	}
	if *root != "" {
		cfg.Root = *root
	}
	if *mirror != "" {
		cfg.Mirror.Upstream = *mirror
	}
	if *gcInterval != 0 {
		cfg.GC.Interval = *gcInterval
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return server.ListenAndServe(ctx, cfg, func(a net.Addr) {
		fmt.Printf("hub: serving %s on http://%s\n", cfg.Root, a)
	})
}
