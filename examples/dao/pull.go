package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	"github.com/spf13/pflag"

	"github.com/opendao/dao/registry"
	"github.com/opendao/dao/registry/ctrd"
	"github.com/opendao/dao/registry/name"
	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/remote"
)

// defaultRegistriesConfig is where dao pull reads mirrors, insecure hosts and credentials
// from, when the file exists and --config is not given.
const defaultRegistriesConfig = "/etc/dao/registries.yaml"

// pullOptions are the flags of dao pull.
type pullOptions struct {
	config      string
	hostsDir    string
	insecure    []string
	platform    string
	snapshotter string
	quiet       bool
}

func (o *pullOptions) flags(fs *pflag.FlagSet) {
	fs.StringVar(&o.config, "config", "", "read mirrors, insecure hosts and credentials from `FILE` (default $DAO_REGISTRIES_CONFIG, else "+defaultRegistriesConfig+" when it exists)")
	fs.StringVar(&o.hostsDir, "hosts-dir", "", "read containerd's registry hosts from `DIR`/HOST/hosts.toml (default "+defaultHostsDir+" when it exists); registries.yaml wins for a host both name")
	fs.StringArrayVar(&o.insecure, "insecure", nil, "reach registry `HOST[:PORT]` over plain HTTP; repeatable")
	fs.StringVar(&o.platform, "platform", "", "pull the image for `OS/ARCH[/VARIANT]` from an index (default this machine's)")
	fs.StringVar(&o.snapshotter, "snapshotter", "overlayfs", "unpack into the containerd snapshotter `NAME`")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "print only the image's name and digest")
}

func pullCommand() *command {
	var o pullOptions
	c := &command{
		name:    "pull",
		summary: "pull an image from a registry into containerd, ready to run",
		flags:   o.flags,
		usage: `Usage: dao pull [options] REF

Pulls the image REF (such as busybox, registry.local:5000/app:1.2 or app@sha256:...) into
containerd's content store, unpacks it into the snapshotter and names it REF, like
docker pull: one progress line per layer, then a summary with size, time and throughput.
References are normalised as docker does: "busybox" is docker.io/library/busybox:latest.

Mirrors, registries reached over plain HTTP, CAs and credentials come from a YAML file in the
format of k3s's registries.yaml:

  mirrors:
    docker.io:
      endpoint: ["http://127.0.0.1:5001", "https://mirror.example.com"]
  configs:
    registry.local:5000:
      plain_http: true              # or: --insecure registry.local:5000
      tls: {ca_file: /etc/dao/registry-ca.pem, insecure_skip_verify: false}
      auth: {username: ci, password: secret}

Registries configured for containerd in /etc/containerd/certs.d/HOST/hosts.toml (or
--hosts-dir) are honoured too; registries.yaml wins for a host both name. Registries on
loopback addresses (127.0.0.1, ::1, localhost) need no --insecure, as with ctr and docker.
Credentials are also read from $DOCKER_CONFIG/config.json or ~/.docker/config.json (docker
login), with its credential helpers (credsStore, credHelpers).
`,
	}
	c.run = func(ctx context.Context, g *globals, args []string) int {
		if len(args) != 1 {
			return usageError(g.stderr, c.name, fmt.Sprintf("want one image reference, got %d arguments", len(args)))
		}
		ref := args[0]
		if _, err := name.ParseReference(ref); err != nil {
			msg := err.Error()
			if i := strings.Index(msg, "invalid reference format"); i >= 0 {
				msg = msg[i:] // without the name again
			}
			return usageError(g.stderr, c.name, fmt.Sprintf("%q is not an image reference: %s", ref, msg))
		}
		var popts []ctrd.Option
		platform := platforms.Default()
		if o.platform != "" {
			p, err := platforms.Parse(o.platform)
			if err != nil {
				return usageError(g.stderr, c.name, fmt.Sprintf("--platform %q: want os/arch[/variant], such as linux/arm64", o.platform))
			}
			popts = append(popts, ctrd.WithPlatform(p))
			platform = platforms.Only(p)
		}
		if o.snapshotter == "" {
			popts = append(popts, ctrd.WithoutUnpack()) // --snapshotter "": content only
		} else {
			popts = append(popts, ctrd.WithUnpack(o.snapshotter))
		}
		copts, err := o.clientOptions(g)
		if err != nil {
			return fail(g, c.name, err)
		}
		cl, err := connect(ctx, g)
		if err != nil {
			return fail(g, c.name, err)
		}
		defer cl.Close()

		bars := newProgressBars(g.stdout, isTerminal(g.stdout) && !o.quiet, g.color)
		if !o.quiet {
			copts = append(copts, remote.WithProgress(bars.update))
		}
		rc, err := registry.NewClient(copts...)
		if err != nil {
			return fail(g, c.name, err)
		}
		defer rc.Close()

		if !o.quiet {
			fmt.Fprintf(g.stdout, "Pulling %s\n", ref)
		}
		start := time.Now()
		bars.start()
		img, err := rc.Pull(ctx, cl, ref, popts...)
		if err == nil {
			bars.setOrder(imageLayers(ctx, cl.ContentStore(), img, platform))
		}
		bars.stop()
		elapsed := time.Since(start)
		if err != nil {
			return fail(g, c.name, pullError(g, ref, err))
		}
		if o.quiet {
			fmt.Fprintf(g.stdout, "%s@%s\n", img.Name, img.Target.Digest)
			return exitOK
		}
		layers, size := imageSize(ctx, cl.ContentStore(), img, platform)
		fetched := bars.fetched()
		fmt.Fprintf(g.stdout, "%s %s\n", paint(g.color, green, "Pulled"), img.Name)
		fmt.Fprintf(g.stdout, "  digest %s\n", img.Target.Digest)
		what := plural(layers, "layer", "layers") + " of " + formatBytes(size)
		if fetched == 0 {
			fmt.Fprintf(g.stdout, "  %s, all there already; took %s\n", what, elapsed.Round(time.Millisecond))
		} else {
			fmt.Fprintf(g.stdout, "  %s, %s fetched in %s (%s/s)\n", what, formatBytes(fetched),
				elapsed.Round(time.Millisecond), formatBytes(int64(float64(fetched)/elapsed.Seconds())))
		}
		return exitOK
	}
	return c
}

// clientOptions builds the registry client's options from the config file and the flags.
func (o *pullOptions) clientOptions(g *globals) ([]remote.Option, error) {
	path, explicit := o.config, o.config != ""
	if !explicit {
		path, explicit = os.Getenv("DAO_REGISTRIES_CONFIG"), os.Getenv("DAO_REGISTRIES_CONFIG") != ""
	}
	if !explicit {
		path = defaultRegistriesConfig
	}
	cfg := &registriesConfig{}
	if _, err := os.Stat(path); err == nil || explicit {
		var err error
		if cfg, err = loadRegistriesConfig(path); err != nil {
			return nil, err
		}
		g.logf("registries from %s", path)
	}
	hostsDir := hostsDirOrDefault(o.hostsDir)
	if hostsDir != "" {
		g.logf("registry hosts from %s", hostsDir)
	}
	hosts, creds, err := cfg.registryHosts(hostsDir, o.insecure)
	if err != nil {
		return nil, err // it names the file or the flag
	}
	opts := []remote.Option{remote.WithHosts(hosts), remote.WithUserAgent("dao/" + version)}
	for host, cred := range creds {
		opts = append(opts, remote.WithCredentials(host, cred))
	}
	dc, dcPath := dockerConfigOption()
	if dcPath != "" {
		g.logf("credentials from %s", dcPath)
	}
	opts = append(opts, dc)
	return opts, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// pullError rewrites the errors a person most often meets into one plain sentence; the
// full chain is there with --verbose.
func pullError(g *globals, ref string, err error) error {
	g.logf("pull %s: %v", ref, err)
	var re *remote.ResponseError
	answer := ""
	if errors.As(err, &re) {
		answer = fmt.Sprintf(" (%d %s", re.StatusCode, http.StatusText(re.StatusCode))
		for _, e := range re.Errors {
			answer += ", " + e.Code
		}
		answer += ")"
	}
	switch {
	case errors.Is(err, remote.ErrManifestUnknown), errors.Is(err, remote.ErrNotFound):
		return fmt.Errorf("%s: no such image in the registry%s", ref, answer)
	case errors.Is(err, remote.ErrUnauthorized):
		return fmt.Errorf("%s: the registry refused access%s: log in (docker login) or set auth in the registries config", ref, answer)
	case errors.Is(err, oci.ErrDigestMismatch):
		return fmt.Errorf("%s: the registry sent content that does not match its digest; nothing of it was kept", ref)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: interrupted; what was fetched is kept for the next pull", ref)
	}
	return err
}

// imageSize returns the number of layers of the image (for the platform pulled) and its
// compressed size: manifest, config and layers, as stored; zeros when it cannot be read.
func imageSize(ctx context.Context, cs content.Provider, img images.Image, platform platforms.MatchComparer) (layers int, size int64) {
	m, err := images.Manifest(ctx, cs, img.Target, platform)
	if err != nil {
		return 0, 0
	}
	size, _ = img.Size(ctx, cs, platform)
	return len(m.Layers), size
}

// imageLayers returns the digests of the image's layers (for the platform pulled), in the
// manifest's order; none when it cannot be read.
func imageLayers(ctx context.Context, cs content.Provider, img images.Image, platform platforms.MatchComparer) []digest.Digest {
	m, err := images.Manifest(ctx, cs, img.Target, platform)
	if err != nil {
		return nil
	}
	var out []digest.Digest
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}
