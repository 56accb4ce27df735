package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/policy"
)

// Labels the garbage collector of containerd reads.
const (
	labelGCRoot       = "containerd.io/gc.root"
	labelGCContentRef = "containerd.io/gc.ref.content"
)

// labelHeld marks, in the inventory only, a snapshot that a lease holds: something (a pull,
// an unpack, a container being created) is working with it. Cleaning policies pin it.
const labelHeld = "dao.clean/held-by"

// cleaner cleans one namespace of a containerd through one snapshotter: it takes stock of
// what is there (inventory) and carries out a policy's plan (sweep). Its context carries
// the namespace.
type cleaner struct {
	client      *client.Client
	snapshotter string
	// root is a directory on the file system of containerd's data, for disk usage; ""
	// asks containerd where its snapshotter keeps its data.
	root string
	logf func(format string, args ...any)
}

// stock is what a cleaner found: the policy's Inventory, plus what estimating and carrying
// out a plan needs.
type stock struct {
	policy.Inventory
	// records are the names of the image records behind each image ID of a plan: its Name,
	// or its Digest when dangling (several records may share a digest).
	records map[string][]string
	// targets are the descriptors of the image records, by record name.
	targets map[string]ocispec.Descriptor
	// blobs are the content records of the namespace.
	blobs map[digest.Digest]content.Info
	// shared are blobs other namespaces also record: their bytes stay on disk while those
	// records do.
	shared map[digest.Digest]bool
	// held are blobs containerd's garbage collector keeps whatever images are deleted: held
	// by a lease, labelled as a root, referenced by a container or a snapshot.
	held map[digest.Digest]bool
	// children caches the blobs that each blob refers to.
	children map[digest.Digest][]ocispec.Descriptor
	// diskPath is the directory whose file system Disk describes, "" when unknown.
	diskPath string
}

// dangling reports whether an image record is the leftover of a name that moved on: named
// by its digest alone, or by Docker's containerd image store as "moby-dangling@<digest>".
func dangling(img images.Image) bool {
	d := img.Target.Digest.String()
	return img.Name == d || img.Name == "moby-dangling@"+d
}

// inventory takes stock of the namespace of ctx. Without full, it leaves out sizes, content
// and disk usage: it tells only what references what.
func (cl *cleaner) inventory(ctx context.Context, full bool) (*stock, error) {
	s := &stock{
		records:  map[string][]string{},
		targets:  map[string]ocispec.Descriptor{},
		blobs:    map[digest.Digest]content.Info{},
		shared:   map[digest.Digest]bool{},
		held:     map[digest.Digest]bool{},
		children: map[digest.Digest][]ocispec.Descriptor{},
	}
	leased, err := cl.leased(ctx, s)
	if err != nil {
		return nil, err
	}
	if err := cl.snapshots(ctx, s, leased, full); err != nil {
		return nil, err
	}
	imageIDs, err := cl.images(ctx, s, full)
	if err != nil {
		return nil, err
	}
	if err := cl.containers(ctx, s, imageIDs); err != nil {
		return nil, err
	}
	if !full {
		return s, nil
	}
	if err := cl.content(ctx, s); err != nil {
		return nil, err
	}
	cl.disk(ctx, s)
	return s, nil
}

// leased records the content that leases hold, and returns the snapshots they hold, with
// the lease's ID.
func (cl *cleaner) leased(ctx context.Context, s *stock) (map[string]string, error) {
	lm := cl.client.LeasesService()
	list, err := lm.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	snaps := map[string]string{}
	for _, l := range list {
		rs, err := lm.ListResources(ctx, l)
		if err != nil {
			if errdefs.IsNotFound(err) {
				continue // the lease ended meanwhile
			}
			return nil, fmt.Errorf("list resources of lease %s: %w", l.ID, err)
		}
		for _, r := range rs {
			switch r.Type {
			case "content":
				if d, err := digest.Parse(r.ID); err == nil {
					s.held[d] = true
				}
			case "snapshots/" + cl.snapshotter:
				snaps[r.ID] = l.ID
			}
		}
	}
	cl.logf("found %d leases", len(list))
	return snaps, nil
}

func (cl *cleaner) snapshots(ctx context.Context, s *stock, leased map[string]string, sizes bool) error {
	sn := cl.client.SnapshotService(cl.snapshotter)
	var infos []snapshots.Info
	err := sn.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		infos = append(infos, info)
		return nil
	})
	if err != nil {
		return fmt.Errorf("list snapshots of %s: %w", cl.snapshotter, err)
	}
	for _, info := range infos {
		var u snapshots.Usage
		if sizes {
			var err error
			if u, err = sn.Usage(ctx, info.Name); err != nil && !errdefs.IsNotFound(err) {
				cl.logf("usage of snapshot %s: %v", info.Name, err)
			}
		}
		labels := info.Labels
		if lease, ok := leased[info.Name]; ok {
			labels = withLabel(labels, labelHeld, "lease "+lease)
		}
		heldContent(labels, s.held)
		s.Snapshots = append(s.Snapshots, policy.Snapshot{
			Key:     info.Name,
			Parent:  info.Parent,
			Size:    u.Size,
			Created: info.Created,
			Labels:  labels,
		})
	}
	cl.logf("found %d snapshots in %s", len(infos), cl.snapshotter)
	return nil
}

// images takes stock of the image records, and returns the image ID the policy knows each
// record by: its name, or its digest when dangling.
func (cl *cleaner) images(ctx context.Context, s *stock, sizes bool) (map[string]string, error) {
	list, err := cl.client.ImageService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	haveSnap := map[string]bool{}
	for _, sn := range s.Snapshots {
		haveSnap[sn.Key] = true
	}
	ids := map[string]string{}
	for _, rec := range list {
		img := client.NewImage(cl.client, rec)
		var size int64
		if sizes {
			var err error
			if size, err = img.Size(ctx); err != nil {
				cl.logf("size of image %s: %v", rec.Name, err)
			}
		}
		var snap string
		if diffIDs, err := img.RootFS(ctx); err == nil {
			if chain := identity.ChainID(diffIDs).String(); haveSnap[chain] {
				snap = chain
			}
		}
		name, id := rec.Name, rec.Name
		if dangling(rec) {
			name, id = "", rec.Target.Digest.String()
		}
		ids[rec.Name] = id
		s.records[id] = append(s.records[id], rec.Name)
		s.targets[rec.Name] = rec.Target
		s.Images = append(s.Images, policy.Image{
			Name:     name,
			Digest:   rec.Target.Digest.String(),
			Size:     size,
			Created:  rec.CreatedAt,
			Labels:   rec.Labels,
			Snapshot: snap,
		})
	}
	cl.logf("found %d images", len(list))
	return ids, nil
}

func (cl *cleaner) containers(ctx context.Context, s *stock, imageIDs map[string]string) error {
	list, err := cl.client.ContainerService().List(ctx)
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	procs, err := processes(ctx, cl.client)
	if err != nil {
		return err
	}
	for _, ct := range list {
		p := procs[ct.ID]
		c := policy.Container{
			ID:      ct.ID,
			Image:   ct.Image,
			Running: live(p) || restarting(ct.Labels),
			Created: ct.CreatedAt,
			Labels:  ct.Labels,
		}
		if id, ok := imageIDs[ct.Image]; ok {
			c.Image = id // a dangling image is known by its digest
		}
		c.Finished = exitTime(p)
		if ct.Snapshotter == cl.snapshotter {
			c.Snapshot = ct.SnapshotKey
		}
		heldContent(ct.Labels, s.held)
		s.Containers = append(s.Containers, c)
	}
	cl.logf("found %d containers", len(list))
	return nil
}

// content takes stock of the content records of the namespace, and of those that other
// namespaces share.
func (cl *cleaner) content(ctx context.Context, s *stock) error {
	cs := cl.client.ContentStore()
	err := cs.Walk(ctx, func(info content.Info) error {
		s.blobs[info.Digest] = info
		if _, ok := info.Labels[labelGCRoot]; ok {
			s.held[info.Digest] = true
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list content: %w", err)
	}
	own, _ := namespaces.Namespace(ctx)
	all, err := cl.client.NamespaceService().List(ctx)
	if err != nil {
		return fmt.Errorf("list namespaces: %w", err)
	}
	for _, ns := range all {
		if ns == own {
			continue
		}
		err := cs.Walk(namespaces.WithNamespace(ctx, ns), func(info content.Info) error {
			if _, ok := s.blobs[info.Digest]; ok {
				s.shared[info.Digest] = true
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("list content of namespace %s: %w", ns, err)
		}
	}
	cl.logf("found %d blobs, %d of them also in other namespaces", len(s.blobs), len(s.shared))
	return nil
}

// disk fills in the usage of the file system of containerd's data, when it can be known.
func (cl *cleaner) disk(ctx context.Context, s *stock) {
	path := cl.root
	if path == "" {
		resp, err := cl.client.IntrospectionService().Plugins(ctx,
			"type==io.containerd.snapshotter.v1,id=="+cl.snapshotter)
		if err == nil && len(resp.Plugins) > 0 {
			path = resp.Plugins[0].Exports["root"]
		}
	}
	if path == "" {
		cl.logf("disk usage unknown: containerd does not say where %s keeps its data (use --root)", cl.snapshotter)
		return
	}
	d, err := diskUsage(path)
	if err != nil {
		cl.logf("disk usage unknown: %v", err)
		return
	}
	s.Disk, s.diskPath = d, path
}

func diskUsage(path string) (policy.Disk, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return policy.Disk{}, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	bs := int64(st.Bsize)
	return policy.Disk{Capacity: int64(st.Blocks) * bs, Used: int64(st.Blocks-st.Bfree) * bs}, nil
}

// heldContent adds to held the blobs that labels refer to for containerd's garbage
// collector (containerd.io/gc.ref.content...).
func heldContent(labels map[string]string, held map[digest.Digest]bool) {
	for k, v := range labels {
		if strings.HasPrefix(k, labelGCContentRef) {
			if d, err := digest.Parse(v); err == nil {
				held[d] = true
			}
		}
	}
}

// withLabel returns a copy of labels with k=v.
func withLabel(labels map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for lk, lv := range labels {
		out[lk] = lv
	}
	return out
}

// errGone reports whether err says that something is not there any more.
// restarting reports whether an edge agent will start the container again: it is down
// between two local restarts (edge.LabelNextRestart), and the cleaner keeps it as if it ran,
// as docker system prune keeps a restarting container.
func restarting(labels map[string]string) bool {
	_, err := time.Parse(time.RFC3339Nano, labels[edge.LabelNextRestart])
	return err == nil
}

func errGone(err error) bool { return errdefs.IsNotFound(err) || errors.Is(err, os.ErrNotExist) }
