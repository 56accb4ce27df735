package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry"
	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/ctrd"
	"github.com/opendao/dao/registry/oci"
)

// Pusher stores an image a build step made under a reference: in a registry, or in
// containerd. It returns the descriptor of what it stored (the image's manifest), whose
// digest pins the step's "image" output. *registry.Client is a Pusher that pushes to an OCI
// registry; ContainerdPusher imports into containerd.
//
// Push must stop when ctx is done. It is called from the run's goroutines and must be safe
// for simultaneous use. a stays readable until Push returns.
type Pusher interface {
	Push(ctx context.Context, ref string, a oci.Artifact) (ocispec.Descriptor, error)
}

// PusherFunc adapts a function to a Pusher.
type PusherFunc func(ctx context.Context, ref string, a oci.Artifact) (ocispec.Descriptor, error)

// Push calls f.
func (f PusherFunc) Push(ctx context.Context, ref string, a oci.Artifact) (ocispec.Descriptor, error) {
	return f(ctx, ref, a)
}

// ContainerdPusher imports images into containerd's image store instead of a registry, under
// the reference and under the reference pinned to its digest (the "image" output of a build
// step), unpacked, so that edge.Runtime runs them at once: a pipeline's later steps, or a
// node on the same machine. It is the Runner's default Pusher, over the Runtime's client and
// namespace.
type ContainerdPusher struct {
	// Client is the containerd client. Required.
	Client *client.Client
	// Namespace is the containerd namespace. Required.
	Namespace string
	// Snapshotter unpacks the image; "" is the client's default ("overlayfs" on Linux).
	Snapshotter string
}

var (
	_ Pusher = (*ContainerdPusher)(nil)
	_ Pusher = PusherFunc(nil)
	_ Pusher = (*registry.Client)(nil)
)

// Push imports a into containerd under ref and under ref pinned to a's digest.
func (p *ContainerdPusher) Push(ctx context.Context, ref string, a oci.Artifact) (ocispec.Descriptor, error) {
	if p.Client == nil || p.Namespace == "" {
		return ocispec.Descriptor{}, errors.New("pipeline: ContainerdPusher needs a Client and a Namespace")
	}
	ctx = namespaces.WithNamespace(ctx, p.Namespace)
	desc := a.Descriptor()
	pinned, err := pinnedRef(ref, desc.Digest)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	for _, name := range []string{ref, pinned} {
		if _, err := ctrd.Import(ctx, p.Client, name, a, ctrd.WithUnpack(p.Snapshotter)); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
	return desc, nil
}

// pinnedRef returns ref's repository, as ref spells it, pinned to dg:
// "example.com/app:1" and sha256:abc give "example.com/app@sha256:abc".
func pinnedRef(ref string, dg digest.Digest) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("pipeline: image reference %q: %w", ref, err)
	}
	repo := reference.FamiliarName(named)
	if strings.HasPrefix(ref, named.Name()) {
		repo = named.Name()
	}
	return repo + "@" + dg.String(), nil
}

// buildImage builds the image b describes from the workspace at ws.
func buildImage(ctx context.Context, ws string, b *Build) (*oci.Image, error) {
	lb, err := build.NewLayerBuilder()
	if err != nil {
		return nil, err
	}
	realWS, err := filepath.EvalSymlinks(ws)
	if err != nil {
		return nil, err
	}
	for i, f := range b.Add {
		rel, err := workspacePath(f.Src)
		if err != nil {
			return nil, fmt.Errorf("add[%d].src: %w", i, err)
		}
		// A step may have left a symbolic link in the workspace: it must not lead the build
		// out of the workspace (to the host's files).
		host, err := filepath.EvalSymlinks(filepath.Join(ws, filepath.FromSlash(rel)))
		if err != nil {
			return nil, fmt.Errorf("add[%d].src: %w", i, err)
		}
		if host != realWS && !strings.HasPrefix(host, realWS+string(filepath.Separator)) {
			return nil, fmt.Errorf("add[%d].src: %q leads out of the workspace", i, f.Src)
		}
		info, err := os.Stat(host)
		if err != nil {
			return nil, fmt.Errorf("add[%d].src: %w", i, err)
		}
		if info.IsDir() {
			err = lb.AddHostTree(f.Dst, host)
		} else {
			err = lb.AddHostFile(f.Dst, host)
		}
		if err != nil {
			return nil, fmt.Errorf("add[%d]: %w", i, err)
		}
	}
	layer, err := lb.Build(ctx)
	if err != nil {
		return nil, err
	}
	cfg := ocispec.ImageConfig{
		Entrypoint: b.Entrypoint,
		Cmd:        b.Cmd,
		Env:        b.Env,
		WorkingDir: b.WorkingDir,
		User:       b.User,
	}
	if len(b.ExposedPorts) > 0 {
		cfg.ExposedPorts = map[string]struct{}{}
		for _, p := range b.ExposedPorts {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			cfg.ExposedPorts[p] = struct{}{}
		}
	}
	img, err := oci.NewImage([]*oci.Layer{layer}, cfg)
	if err != nil {
		layer.Close()
		return nil, err
	}
	return img, nil
}
