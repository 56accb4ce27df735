package remote

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opendao/dao/registry/internal/operr"
	"github.com/opendao/dao/registry/layout"
	"github.com/opendao/dao/registry/name"
	"github.com/opendao/dao/registry/oci"
	"golang.org/x/sync/errgroup"
)

// CopyOption configures Copy and PullLayout.
type CopyOption func(*copyOptions) error

type copyOptions struct {
	platform *ocispec.Platform
}

// WithPlatform copies, from an index, only the image for p (chosen as oci.SelectPlatform
// does), which then stands alone at the destination. It applies to Copy and PullLayout; the
// default copies every manifest of an index. p needs an OS and an architecture.
func WithPlatform(p ocispec.Platform) CopyOption {
	return func(o *copyOptions) error {
		if p.OS == "" || p.Architecture == "" {
			return fmt.Errorf("%w: WithPlatform(%q): needs an OS and an architecture", ErrInvalidOption, platforms.Format(p))
		}
		p = platforms.Normalize(p)
		o.platform = &p
		return nil
	}
}

// tree is a manifest or index with everything it leads to, fetched from a registry.
type tree struct {
	root *oci.Manifest
	// manifests lists every manifest and index below the root, each after what it leads to.
	manifests []*oci.Manifest
	// blobs lists every config and layer once.
	blobs []ocispec.Descriptor
}

// fetchTree fetches the manifest of r and every manifest below it.
func (c *Client) fetchTree(ctx context.Context, r name.Reference, opts []CopyOption) (*tree, error) {
	var o copyOptions
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("%w: nil option", ErrInvalidOption)
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	root, err := c.manifest(ctx, r, nil)
	if err != nil {
		return nil, err
	}
	if o.platform != nil && root.Index != nil {
		d, err := oci.SelectPlatform(*root.Index, *o.platform)
		if err != nil {
			return nil, fmt.Errorf("registry: %s: %w", r, err)
		}
		if root, err = c.manifest(ctx, r.WithDigest(d.Digest), &d); err != nil {
			return nil, err
		}
	}
	t := &tree{root: root}
	seen := map[digest.Digest]bool{}
	var walk func(m *oci.Manifest, depth int) error
	walk = func(m *oci.Manifest, depth int) error {
		if depth > 8 {
			return fmt.Errorf("%w: indexes nested more than 8 deep", oci.ErrInvalidImage)
		}
		if m.Image != nil {
			for _, d := range append([]ocispec.Descriptor{m.Image.Config}, m.Image.Layers...) {
				if !seen[d.Digest] {
					seen[d.Digest] = true
					t.blobs = append(t.blobs, d)
				}
			}
			return nil
		}
		for _, d := range m.Index.Manifests {
			if seen[d.Digest] {
				continue
			}
			seen[d.Digest] = true
			child, err := c.manifest(ctx, r.WithDigest(d.Digest), &d)
			if err != nil {
				return err
			}
			if err := walk(child, depth+1); err != nil {
				return err
			}
			t.manifests = append(t.manifests, child)
		}
		return nil
	}
	if err := walk(root, 0); err != nil {
		return nil, err
	}
	return t, nil
}

// Copy copies the image or index src names, with every manifest and blob it leads to, to
// dst (under dst's tag, or its digest), and returns the descriptor of what it pushed. Blobs
// the destination has are skipped; within one registry they are mounted from the source
// repository; between registries they stream from one to the other, verified on the way.
func (c *Client) Copy(ctx context.Context, src, dst string, opts ...CopyOption) (ocispec.Descriptor, error) {
	s, err := name.ParseReference(src)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	d, err := name.ParseReference(dst)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc, err := c.copy(ctx, s, d, opts)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("registry: copy %s to %s: %w", s, d, err)
	}
	return desc, nil
}

func (c *Client) copy(ctx context.Context, s, d name.Reference, opts []CopyOption) (ocispec.Descriptor, error) {
	t, err := c.fetchTree(ctx, s, opts)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if d.Digest != "" && d.Digest != t.root.Descriptor.Digest {
		return ocispec.Descriptor{}, fmt.Errorf("%w: %s is %s", oci.ErrDigestMismatch, s, t.root.Descriptor.Digest)
	}
	ep := c.pushEndpoint(d.Registry)
	mountFrom := ""
	if s.Registry == d.Registry && s.Repository != d.Repository {
		mountFrom = s.Repository
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(blobParallelism)
	for _, desc := range t.blobs {
		g.Go(func() error {
			return c.pushBlob(gctx, ep, d, &remoteBlob{c: c, ctx: gctx, repo: s.Name(), desc: desc}, mountFrom)
		})
	}
	if err := g.Wait(); err != nil {
		return ocispec.Descriptor{}, err
	}
	for _, m := range t.manifests {
		target := d.WithDigest(m.Descriptor.Digest)
		target.Tag = ""
		if _, err := c.pushManifest(ctx, ep, target, m); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
	return c.pushManifest(ctx, ep, d, t.root)
}

// remoteBlob is a blob of a registry as an oci.Blob, for PushBlob and layout.Write. It lives only
// during the call that made it, whose context it carries.
type remoteBlob struct {
	c    *Client
	ctx  context.Context
	repo string
	desc ocispec.Descriptor
}

func (b *remoteBlob) Descriptor() ocispec.Descriptor { return b.desc }

func (b *remoteBlob) Open() (io.ReadCloser, error) { return b.c.FetchBlob(b.ctx, b.repo, b.desc) }

// treeArtifact is a fetched tree as an oci.Artifact.
type treeArtifact struct {
	root  *oci.Bytes
	blobs []oci.Blob
}

func (a *treeArtifact) Descriptor() ocispec.Descriptor { return a.root.Descriptor() }
func (a *treeArtifact) Open() (io.ReadCloser, error)   { return a.root.Open() }
func (a *treeArtifact) Blobs() []oci.Blob              { return a.blobs }

// PullLayout copies the image or index ref names, with every manifest and blob it leads to,
// into the OCI image layout in dir (created if need be), under the name ref normalised
// ("docker.io/library/busybox:latest"), as layout.Write does; a layout can be pushed back
// with PushLayout. The blobs are fetched in parallel and verified before they are stored:
// a blob that does not match its descriptor is not written. It returns the descriptor of
// the root.
func (c *Client) PullLayout(ctx context.Context, ref, dir string, opts ...CopyOption) (ocispec.Descriptor, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc, err := c.pullLayout(ctx, r, dir, opts)
	if err != nil {
		return ocispec.Descriptor{}, operr.Errorf(err, "pull %s into layout %s", r, dir)
	}
	return desc, nil
}

func (c *Client) pullLayout(ctx context.Context, r name.Reference, dir string, opts []CopyOption) (ocispec.Descriptor, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t, err := c.fetchTree(ctx, r, opts)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	a := &treeArtifact{root: oci.BytesOf(t.root.Descriptor, t.root.Raw)}
	// Start every download now; layout.Write's Open of each blob joins its download.
	var mu sync.Mutex
	var readers []io.Closer
	defer func() {
		for _, rc := range readers {
			rc.Close()
		}
	}()
	var g errgroup.Group
	for _, d := range t.blobs {
		b := &remoteBlob{c: c, ctx: ctx, repo: r.Name(), desc: d}
		a.blobs = append(a.blobs, b)
		g.Go(func() error {
			rc, err := c.FetchBlob(ctx, b.repo, d)
			if err != nil {
				return err
			}
			mu.Lock()
			readers = append(readers, rc)
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return ocispec.Descriptor{}, err
	}
	for _, m := range t.manifests {
		a.blobs = append(a.blobs, oci.BytesOf(m.Descriptor, m.Raw))
	}
	a.blobs = append(a.blobs, a.root)
	if err := layout.Write(ctx, dir, r.String(), a); err != nil {
		return ocispec.Descriptor{}, err
	}
	return t.root.Descriptor, nil
}

// PushLayout pushes the image or index named name in the OCI image layout in dir to ref, as
// Push does.
func (c *Client) PushLayout(ctx context.Context, dir, name, ref string) (ocispec.Descriptor, error) {
	l, err := layout.Read(ctx, dir)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	a, err := l.Find(name)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return c.Push(ctx, ref, a)
}
