package main

import (
	"context"
	"slices"
	"strings"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/policy"
)

// Kinds of removal, in the order a sweep carries them out.
const (
	kindContainer = "container"
	kindImage     = "image"
	kindSnapshot  = "snapshot"
	kindContent   = "content"
)

// removal is one line of what dao clean removes.
type removal struct {
	kind string
	// id names it as shown: a container's ID, an image's name (its digest when dangling),
	// a snapshot's key, a blob's digest.
	id string
	// record is the image record to delete, for an image.
	record string
	// bytes is what removing it frees on disk: for an image, the content no remaining image
	// uses; for a snapshot its usage; 0 for a container (its writable layer is a snapshot).
	bytes int64
	why   string
	// blobs are the content that goes with an image, or the blob itself.
	blobs []digest.Digest

	// result is set by a sweep: "removed", "gone already", "kept: ..." or "failed: ...".
	result string
	failed bool
}

// removals turns plan into the list of what goes, in order, with the content nothing will
// reference any more: the content only the plan's images use, and the content nothing
// references today. Content is left to containerd's garbage collector, which removes
// exactly what nothing references; bytes count blobs that no other namespace records.
func (s *stock) removals(ctx context.Context, cs content.Provider, plan policy.CleanPlan) []removal {
	var out []removal
	for _, d := range plan.Containers {
		out = append(out, removal{kind: kindContainer, id: d.ID, why: d.Reason})
	}

	// The image records the plan deletes, and the ones it keeps.
	left := map[string][]string{}
	for id, names := range s.records {
		left[id] = append([]string(nil), names...)
	}
	var gone []removal
	for _, d := range plan.Images {
		names := left[d.ID]
		if len(names) == 0 {
			continue
		}
		gone = append(gone, removal{kind: kindImage, id: d.ID, record: names[0], why: d.Reason})
		left[d.ID] = names[1:]
	}
	var roots []ocispec.Descriptor
	for _, names := range left {
		for _, n := range names {
			roots = append(roots, s.targets[n])
		}
	}
	for d := range s.held {
		roots = append(roots, ocispec.Descriptor{Digest: d})
	}
	kept := s.reach(ctx, cs, roots...)
	claimed := map[digest.Digest]bool{}
	for _, r := range gone {
		for d := range s.reach(ctx, cs, s.targets[r.record]) {
			if kept[d] || claimed[d] {
				continue
			}
			claimed[d] = true
			if _, ok := s.blobs[d]; ok {
				r.blobs = append(r.blobs, d)
				r.bytes += s.blobBytes(d)
			}
		}
		out = append(out, r)
	}

	for _, d := range plan.Snapshots {
		out = append(out, removal{kind: kindSnapshot, id: d.ID, bytes: d.Bytes, why: d.Reason})
	}

	for d := range s.blobs {
		if kept[d] || claimed[d] {
			continue
		}
		why := "content nothing references"
		if s.shared[d] {
			why += " (another namespace keeps the blob)"
		}
		out = append(out, removal{kind: kindContent, id: d.String(), bytes: s.blobBytes(d), why: why,
			blobs: []digest.Digest{d}})
	}
	sortContent(out)
	return out
}

// blobBytes is what removing blob d frees on disk.
func (s *stock) blobBytes(d digest.Digest) int64 {
	if s.shared[d] {
		return 0
	}
	return s.blobs[d].Size
}

// reach returns the blobs reachable from roots, as containerd's garbage collector follows
// them (labels containerd.io/gc.ref.content...) and as image manifests and indexes list
// them. Following both can only keep more.
func (s *stock) reach(ctx context.Context, cs content.Provider, roots ...ocispec.Descriptor) map[digest.Digest]bool {
	seen := map[digest.Digest]bool{}
	queue := append([]ocispec.Descriptor(nil), roots...)
	for len(queue) > 0 {
		desc := queue[0]
		queue = queue[1:]
		if desc.Digest == "" || seen[desc.Digest] {
			continue
		}
		seen[desc.Digest] = true
		queue = append(queue, s.refs(ctx, cs, desc)...)
	}
	return seen
}

// refs returns what blob desc refers to.
func (s *stock) refs(ctx context.Context, cs content.Provider, desc ocispec.Descriptor) []ocispec.Descriptor {
	info, ok := s.blobs[desc.Digest]
	if !ok {
		return nil
	}
	var out []ocispec.Descriptor
	for k, v := range info.Labels {
		if strings.HasPrefix(k, labelGCContentRef) {
			if d, err := digest.Parse(v); err == nil {
				out = append(out, ocispec.Descriptor{Digest: d})
			}
		}
	}
	if !images.IsManifestType(desc.MediaType) && !images.IsIndexType(desc.MediaType) {
		return out
	}
	children, cached := s.children[desc.Digest]
	if !cached {
		children, _ = images.Children(ctx, cs, desc) // unreadable: only its labels count
		s.children[desc.Digest] = children
	}
	return append(out, children...)
}

// sortContent puts the content removals, which come from a map, in the order of their
// digests; they are the last ones.
func sortContent(rs []removal) {
	i := slices.IndexFunc(rs, func(r removal) bool { return r.kind == kindContent })
	if i < 0 {
		return
	}
	slices.SortFunc(rs[i:], func(a, b removal) int { return strings.Compare(a.id, b.id) })
}
