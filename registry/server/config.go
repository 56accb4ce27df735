package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/opendao/dao/registry/server/gc"
	"github.com/opendao/dao/registry/server/storage"
)

// Config is a server's configuration as a file gives it, in YAML (or JSON, which is YAML):
//
//	addr: 127.0.0.1:5000
//	root: /var/lib/dao/hub
//	maxManifestSize: 4194304
//	maxBlobSize: 10737418240       # 10 GiB
//	rateLimit: {perSecond: 100, burst: 200}
//	maxUploads: {perRepository: 100, total: 10000}
//	users: {ci: secret}          # basic auth; none means no authentication
//	tls: {cert: hub.crt, key: hub.key}
//	mirror: {upstream: https://registry.example.com, username: u, password: p, ttl: 5m}
//	gc: {interval: 1h, grace: 1h, uploadTTL: 24h, deleteUntagged: false}
//	notifications:
//	  - url: https://ci.example/hooks/registry
//	    events: [push, delete]
//	    headers: {Authorization: Bearer secret}
//	    timeout: 5s
type Config struct {
	// Addr is the address to listen on; "127.0.0.1:5000" if empty.
	Addr string `yaml:"addr"`
	// Root is the directory of the file system store. Required.
	Root string `yaml:"root"`
	// MaxManifestSize is the largest manifest taken, in bytes; 0 means 4 MiB.
	MaxManifestSize int64 `yaml:"maxManifestSize"`
	// MaxBlobSize is the largest blob taken, in bytes; 0 means no limit.
	MaxBlobSize int64 `yaml:"maxBlobSize"`
	// RateLimit limits each client IP address; none if PerSecond is 0.
	RateLimit struct {
		PerSecond float64 `yaml:"perSecond"`
		Burst     int     `yaml:"burst"`
	} `yaml:"rateLimit"`
	// Users are the accounts of basic authentication, by name, with their passwords; with
	// none, everyone may do everything.
	Users map[string]string `yaml:"users"`
	// TLS serves HTTPS with the certificate and key files, if both are set.
	TLS struct {
		Cert string `yaml:"cert"`
		Key  string `yaml:"key"`
	} `yaml:"tls"`
	// AutomaticMount: see WithAutomaticMount; true if absent.
	AutomaticMount *bool `yaml:"automaticMount"`
	// MaxUploads bounds the open upload sessions (WithMaxUploads); none if both are 0.
	MaxUploads struct {
		PerRepository int `yaml:"perRepository"`
		Total         int `yaml:"total"`
	} `yaml:"maxUploads"`
	// GC runs a collection (package gc) every Interval, if it is not 0.
	GC GCConfig `yaml:"gc"`
	// Mirror makes the registry a pull-through cache of an upstream, if Upstream is set.
	Mirror MirrorConfig `yaml:"mirror"`
	// Notifications are the webhook endpoints that hear of pushes, pulls and deletes.
	Notifications []Endpoint `yaml:"notifications"`
}

// GCConfig is the online garbage collection of a Config; see package gc.
type GCConfig struct {
	// Interval is the time between collections; 0 means none.
	Interval time.Duration `yaml:"interval"`
	// Grace is how long unreferenced content is kept; 1 hour if 0.
	Grace time.Duration `yaml:"grace"`
	// UploadTTL is how long an upload session may stay open; 24 hours if 0.
	UploadTTL time.Duration `yaml:"uploadTTL"`
	// DeleteUntagged unlinks untagged manifests (gc.WithDeleteUntagged).
	DeleteUntagged bool `yaml:"deleteUntagged"`
}

// Options returns the collection options the section says (package gc's), for a program
// that runs the collection itself (registry/hub does).
func (g GCConfig) Options() []gc.Option {
	var opts []gc.Option
	if g.Grace > 0 {
		opts = append(opts, gc.WithGrace(g.Grace))
	}
	if g.UploadTTL > 0 {
		opts = append(opts, gc.WithUploadTTL(g.UploadTTL))
	}
	return append(opts, gc.WithDeleteUntagged(g.DeleteUntagged))
}

// maxConfigSize bounds a configuration file.
const maxConfigSize = 1 << 20

// LoadConfig reads a configuration file. Unknown fields are errors, so that a typo does
// not go unseen; errors match ErrInvalidOption. It does not Validate the result, so that a
// program may set fields from its flags first; ListenAndServe validates.
func LoadConfig(path string) (Config, error) {
	var c Config
	data, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("registry server: config: %w", err)
	}
	if len(data) > maxConfigSize {
		return c, fmt.Errorf("%w: config %s: more than %d bytes", ErrInvalidOption, path, maxConfigSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("%w: config %s: %v", ErrInvalidOption, path, err)
	}
	return c, nil
}

// Validate checks the fields that do not need the file system.
func (c Config) Validate() error {
	if c.Root == "" {
		return fmt.Errorf("%w: config: root is required", ErrInvalidOption)
	}
	if c.MaxManifestSize != 0 && c.MaxManifestSize < 4<<10 {
		return fmt.Errorf("%w: config: maxManifestSize %d: at least 4096", ErrInvalidOption, c.MaxManifestSize)
	}
	if c.MaxBlobSize < 0 {
		return fmt.Errorf("%w: config: maxBlobSize %d", ErrInvalidOption, c.MaxBlobSize)
	}
	if c.RateLimit.PerSecond < 0 || c.RateLimit.PerSecond > 0 && c.RateLimit.Burst < 1 {
		return fmt.Errorf("%w: config: rateLimit: perSecond %v, burst %d: both must be positive", ErrInvalidOption, c.RateLimit.PerSecond, c.RateLimit.Burst)
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return fmt.Errorf("%w: config: tls needs both cert and key", ErrInvalidOption)
	}
	if c.MaxUploads.PerRepository < 0 || c.MaxUploads.Total < 0 {
		return fmt.Errorf("%w: config: maxUploads: negative", ErrInvalidOption)
	}
	if c.GC.Interval < 0 || c.GC.Grace < 0 || c.GC.UploadTTL < 0 {
		return fmt.Errorf("%w: config: gc: negative interval, grace or uploadTTL", ErrInvalidOption)
	}
	if c.Mirror.Upstream != "" {
		m, err := NewMirror(c.Mirror)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		m.Close()
	}
	if len(c.Notifications) > 0 {
		n, err := NewNotifier(c.Notifications)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		n.Close(context.Background())
	}
	return nil
}

// StartNotifications starts the notifier of c's notifications section: send queues an
// event for its webhooks (nil when the section is empty), and stop sends what is still
// queued, for up to 5 seconds, then stops it. A program that serves the registry itself
// (registry/hub does) starts it with this and gives send to its events.
func (c Config) StartNotifications() (send EventFunc, stop func(), err error) {
	if len(c.Notifications) == 0 {
		return nil, func() {}, nil
	}
	n, err := NewNotifier(c.Notifications)
	if err != nil {
		return nil, nil, err
	}
	return n.Send, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.Close(ctx)
	}, nil
}

// Options returns the server options that c says, after opts (which c's override).
func (c Config) Options(opts ...Option) []Option {
	if c.MaxManifestSize != 0 {
		opts = append(opts, WithMaxManifestSize(c.MaxManifestSize))
	}
	if c.MaxBlobSize != 0 {
		opts = append(opts, WithMaxBlobSize(c.MaxBlobSize))
	}
	if c.RateLimit.PerSecond > 0 {
		opts = append(opts, WithRateLimit(c.RateLimit.PerSecond, c.RateLimit.Burst))
	}
	if len(c.Users) > 0 {
		opts = append(opts, WithAuthorizer(BasicAuth("dao hub", c.Users)))
	}
	if c.AutomaticMount != nil {
		opts = append(opts, WithAutomaticMount(*c.AutomaticMount))
	}
	if c.MaxUploads.PerRepository > 0 || c.MaxUploads.Total > 0 {
		opts = append(opts, WithMaxUploads(c.MaxUploads.PerRepository, c.MaxUploads.Total))
	}
	return opts
}

// ListenAndServe serves the registry c describes until ctx is done, then shuts down,
// letting requests in flight finish for up to 10 seconds. ready, if not nil, is called
// with the address listened on once the server accepts connections (useful with port 0).
// opts come before the Config's own options.
func ListenAndServe(ctx context.Context, c Config, ready func(addr net.Addr), opts ...Option) error {
	if err := c.Validate(); err != nil {
		return err
	}
	st, err := storage.OpenFS(c.Root)
	if err != nil {
		return err
	}
	var bg sync.WaitGroup
	bgCtx, stopBG := context.WithCancel(ctx)
	defer func() {
		stopBG()
		bg.Wait()
	}()
	send, closeNotifier, err := c.StartNotifications()
	if err != nil {
		return err
	}
	defer closeNotifier()
	if send != nil {
		opts = append(opts, WithEvents(send))
	}
	if c.Mirror.Upstream != "" {
		m, err := NewMirror(c.Mirror)
		if err != nil {
			return err
		}
		defer m.Close()
		opts = append(opts, WithMirror(m))
	}
	if c.GC.Interval > 0 {
		fence := gc.NewFence()
		opts = append(opts, WithFence(fence))
		gcOpts := append(c.GC.Options(), gc.WithFence(fence))
		bg.Add(1)
		go func() {
			defer bg.Done()
			gc.Run(bgCtx, st, c.GC.Interval, func(rep gc.Report, err error) {
				if err != nil {
					slog.Warn("registry gc failed", "err", err)
					return
				}
				slog.Info("registry gc", "blobsDeleted", rep.BlobsDeleted, "bytesFreed", rep.BytesFreed,
					"untaggedDeleted", len(rep.UntaggedDeleted), "uploadsCancelled", rep.UploadsCancelled, "took", rep.Duration)
			}, gcOpts...)
		}()
	}
	srv, err := New(st, c.Options(opts...)...)
	if err != nil {
		return err
	}
	return Serve(ctx, c, srv, ready)
}

// Serve serves h on the address and with the TLS files of c (127.0.0.1:5000 and plain
// HTTP by default) until ctx is done, then shuts down, letting requests in flight finish
// for up to 10 seconds. ready, if not nil, is called with the address listened on once it
// accepts connections. It is ListenAndServe's server, for a program that wraps the
// registry's handler in its own (registry/hub does).
func Serve(ctx context.Context, c Config, h http.Handler, ready func(addr net.Addr)) error {
	addr := c.Addr
	if addr == "" {
		addr = "127.0.0.1:5000"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("registry server: %w", err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() {
		if c.TLS.Cert != "" {
			errc <- hs.ServeTLS(ln, c.TLS.Cert, c.TLS.Key)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	if ready != nil {
		ready(ln.Addr())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("registry server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = hs.Shutdown(sctx)
	<-errc
	return err
}
