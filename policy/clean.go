package policy

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/opendao/dao"
)

// Image is one image record of a node's store, as the cleaner sees it.
type Image struct {
	// Name is the image's name, such as "registry.example.com/web:1.0", or "" for a
	// dangling image: one left without a name when a newer pull took it.
	Name string
	// Digest identifies the image's content. Records with the same digest share it: its
	// bytes are freed with the last of them.
	Digest string
	// Size is the bytes of the image's content. Its unpacked layers are Snapshots.
	Size    int64
	Created time.Time
	// LastUsed is when a container last started from the image; zero means never, and the
	// image's age counts from Created.
	LastUsed time.Time
	Labels   map[string]string
	// Snapshot is the key of the top snapshot of the image's unpacked layers; "" when it is
	// not unpacked.
	Snapshot string
	// InUse marks an image needed by something the inventory does not show, such as a task
	// assigned to the node whose container does not exist yet. It is never deleted.
	InUse bool
}

// Container is one container of a node, as the cleaner sees it.
type Container struct {
	ID string
	// Image is the Name or the Digest of the image it runs.
	Image   string
	Running bool
	Created time.Time
	// Finished is when it last exited; zero if it never ran.
	Finished time.Time
	Labels   map[string]string
	// Snapshot is the key of its writable snapshot, "" if it has none.
	Snapshot string
}

// Snapshot is one snapshot (an unpacked layer, or a container's writable layer).
type Snapshot struct {
	Key string
	// Parent is the key of the snapshot it is stacked on, "" for a base layer.
	Parent  string
	Size    int64
	Created time.Time
	Labels  map[string]string
}

// Disk is the state of the file system that holds images and snapshots.
type Disk struct {
	// Capacity and Used are in bytes; zero Capacity means unknown.
	Capacity, Used int64
}

// Inventory is a snapshot of what a node stores.
type Inventory struct {
	Images     []Image
	Containers []Container
	Snapshots  []Snapshot
	Disk       Disk
}

// PruneMode chooses between the node's garbage collector and the presets of
// `docker system prune`.
type PruneMode int

// Prune modes. The zero value is GarbageCollect.
const (
	// GarbageCollect acts only under disk pressure, like the kubelet's image garbage
	// collector: when usage reaches HighPercent or free space falls below MinFree, it
	// deletes unreferenced snapshots, then unused images least recently used first, until
	// usage is down to LowPercent and MinFree is free. It leaves containers alone.
	GarbageCollect PruneMode = iota
	// PruneDangling is `docker system prune`: stopped containers, dangling images and
	// unreferenced snapshots, whatever the disk usage.
	PruneDangling
	// PruneAll is `docker system prune -a`: stopped containers, every image no remaining
	// container uses, and unreferenced snapshots.
	PruneAll
)

func (m PruneMode) String() string {
	switch m {
	case GarbageCollect:
		return "garbage-collect"
	case PruneDangling:
		return "prune"
	case PruneAll:
		return "prune-all"
	}
	return "PruneMode(" + strconv.Itoa(int(m)) + ")"
}

// CleanPolicy says what a node may delete to free disk space. Whatever the mode, a cleaner
// never deletes a running container, an image that a remaining container uses or that is
// InUse, anything pinned, or anything younger than MinAge.
type CleanPolicy struct {
	// Mode is GarbageCollect (the default), PruneDangling or PruneAll.
	Mode PruneMode
	// HighPercent and LowPercent are the disk usage thresholds of GarbageCollect, 0-100:
	// collect when usage reaches HighPercent, down to LowPercent. The kubelet's defaults,
	// in DefaultCleanPolicy, are 85 and 80. A HighPercent of 0 turns the thresholds off.
	HighPercent, LowPercent int
	// MinFree is an absolute floor of free bytes for GarbageCollect: collect when less is
	// free, until at least this is. 0 means none. On large disks it catches what
	// percentages hide.
	MinFree int64
	// MinAge protects what was used recently: nothing created, run or finished within it
	// is deleted; default (in DefaultCleanPolicy) 2m, the kubelet's.
	MinAge time.Duration
	// KeepPerRepository keeps the newest N images (by Created) of each repository, even
	// unused. 0 keeps none for this reason.
	KeepPerRepository int
	// Pinned lists label selectors, "key" or "key=value": whatever carries a matching label
	// is never deleted.
	Pinned []string
	// Until, in the prune modes, deletes only containers and images created more than
	// Until before now, like `docker system prune --filter until=24h`. 0 means no limit.
	Until time.Duration
	// Labels, in the prune modes, deletes only containers and images that match every
	// filter, in the syntax of `docker system prune --filter`: "label=key",
	// "label=key=value", "label!=key" and "label!=key=value".
	Labels []string
}

// DefaultCleanPolicy returns the kubelet's defaults for the node's garbage collector: collect
// from 85% disk usage down to 80%, nothing younger than 2m, and keep what carries
// containerd's pin label (io.cri-containerd.pinned=pinned) or Dao's (io.opendao.pinned).
func DefaultCleanPolicy() CleanPolicy {
	return CleanPolicy{
		HighPercent: 85,
		LowPercent:  80,
		MinAge:      2 * time.Minute,
		Pinned:      []string{"io.cri-containerd.pinned=pinned", dao.LabelPrefix + "pinned"},
	}
}

// Deletion is one thing a CleanPlan deletes.
type Deletion struct {
	// ID is a container's ID, an image's Name (its Digest when dangling) or a snapshot's
	// Key.
	ID string
	// Bytes is what deleting it frees: an image's Size when it is the last record of its
	// digest, a snapshot's Size; 0 for a container (its writable layer is a snapshot).
	Bytes int64
	// Reason says why, in a few words.
	Reason string
}

// CleanPlan is what a CleanPolicy chose to delete. Delete in order: the containers, then the
// images, then the snapshots (which are ordered children first). Nothing is deleted by
// making a plan: show it for a dry run.
type CleanPlan struct {
	Containers, Images, Snapshots []Deletion
	// FreedBytes is the sum of the Bytes of the deletions.
	FreedBytes int64
	// Wanted is the bytes GarbageCollect set out to free (0 in the prune modes).
	Wanted int64
	// Reason says what the plan set out to do: "disk 90% used, high threshold 85%: free
	// 1GiB to reach 80%".
	Reason string
}

// Plan chooses what to delete from inv at now. A malformed selector or filter returns a
// *SyntaxError.
func (p CleanPolicy) Plan(inv Inventory, now time.Time) (CleanPlan, error) {
	pins, err := parseSelectors(p.Pinned, false)
	if err != nil {
		return CleanPlan{}, err
	}
	filters, err := parseSelectors(p.Labels, true)
	if err != nil {
		return CleanPlan{}, err
	}
	if p.Mode < GarbageCollect || p.Mode > PruneAll {
		return CleanPlan{}, fmt.Errorf("%w: clean mode %d", ErrInvalidPolicy, int(p.Mode))
	}
	c := cleaner{policy: p, inv: inv, now: now, pins: pins, filters: filters}
	return c.plan(), nil
}

type cleaner struct {
	policy  CleanPolicy
	inv     Inventory
	now     time.Time
	pins    []selector
	filters []selector

	snaps   map[string]*Snapshot
	refs    map[string]int // how many kept roots (images, containers, pinned snapshots) reach each snapshot
	gone    map[string]bool
	digests map[string]int // kept image records per digest
	out     CleanPlan
}

func (c *cleaner) plan() CleanPlan {
	p := c.policy
	inv := c.inv
	c.snaps = map[string]*Snapshot{}
	for i := range inv.Snapshots {
		c.snaps[inv.Snapshots[i].Key] = &inv.Snapshots[i]
	}
	c.refs = map[string]int{}
	c.gone = map[string]bool{}
	c.digests = map[string]int{}

	pruning := p.Mode != GarbageCollect
	var need int64
	if !pruning {
		var why string
		need, why = c.wanted()
		c.out.Wanted, c.out.Reason = need, why
		if need <= 0 {
			return c.out
		}
	} else if p.Mode == PruneDangling {
		c.out.Reason = "prune stopped containers, dangling images and unreferenced snapshots"
	} else {
		c.out.Reason = "prune stopped containers, unused images and unreferenced snapshots"
	}

	// Containers: only the prune modes delete them.
	keptContainers := make([]bool, len(inv.Containers))
	for i, ct := range inv.Containers {
		keptContainers[i] = true
		if !pruning || ct.Running || c.pinned(ct.Labels) || !c.old(ct.Created, ct.Finished) ||
			!c.filtered(ct.Created, ct.Labels) {
			continue
		}
		keptContainers[i] = false
		c.out.Containers = append(c.out.Containers, Deletion{ID: ct.ID, Reason: "stopped container"})
	}

	// Roots: all containers and images for now, pinned snapshots.
	used := map[string]bool{}
	for i, ct := range inv.Containers {
		if keptContainers[i] && ct.Image != "" {
			used[ct.Image] = true
		}
		c.ref(ct.Snapshot, +1)
	}
	for _, im := range inv.Images {
		c.digests[im.Digest]++
		c.ref(im.Snapshot, +1)
	}
	for _, s := range inv.Snapshots {
		if c.pinned(s.Labels) {
			c.ref(s.Key, +1)
		}
	}

	// Image candidates.
	keep := c.keepPerRepository()
	var candidates []int
	for i, im := range inv.Images {
		switch {
		case im.InUse, used[im.Name], im.Digest != "" && used[im.Digest], c.pinned(im.Labels), keep[i],
			!c.old(im.Created, im.LastUsed):
			continue
		case pruning && !c.filtered(im.Created, im.Labels):
			continue
		case p.Mode == PruneDangling && im.Name != "":
			continue
		}
		candidates = append(candidates, i)
	}
	slices.SortStableFunc(candidates, func(a, b int) int {
		x, y := &inv.Images[a], &inv.Images[b]
		if c := lastUse(x).Compare(lastUse(y)); c != 0 {
			return c
		}
		return strings.Compare(x.Name, y.Name)
	})

	// Unreferenced snapshots go first: they are pure garbage.
	c.sweepSnapshots("unreferenced snapshot")
	for i, ct := range inv.Containers {
		if !keptContainers[i] {
			c.ref(ct.Snapshot, -1)
			c.sweepSnapshots("writable layer of deleted container " + ct.ID)
		}
	}
	for _, i := range candidates {
		if !pruning && c.out.FreedBytes >= need {
			break
		}
		c.deleteImage(i)
	}
	c.out.Snapshots = orderChildrenFirst(c.out.Snapshots, c.snaps)
	return c.out
}

// wanted returns the bytes GarbageCollect must free, and why.
func (c *cleaner) wanted() (int64, string) {
	p, d := c.policy, c.inv.Disk
	if d.Capacity <= 0 {
		return 0, "disk capacity unknown: nothing to do"
	}
	var need int64
	pct := d.Used * 100 / d.Capacity
	var reasons []string
	if p.HighPercent > 0 && d.Used*100 >= int64(p.HighPercent)*d.Capacity {
		n := d.Used - int64(p.LowPercent)*d.Capacity/100
		need = max(need, n)
		reasons = append(reasons, fmt.Sprintf("disk %d%% used, high threshold %d%%: free %s to reach %d%%",
			pct, p.HighPercent, dao.FormatBytes(n), p.LowPercent))
	}
	if free := d.Capacity - d.Used; p.MinFree > 0 && free < p.MinFree {
		n := p.MinFree - free
		need = max(need, n)
		reasons = append(reasons, fmt.Sprintf("%s free, below the floor of %s: free %s",
			dao.FormatBytes(free), dao.FormatBytes(p.MinFree), dao.FormatBytes(n)))
	}
	if need <= 0 {
		return 0, fmt.Sprintf("disk %d%% used, below the high threshold %d%%: nothing to do", pct, p.HighPercent)
	}
	return need, strings.Join(reasons, "; ")
}

// deleteImage plans the deletion of image i and of the snapshots it alone held.
func (c *cleaner) deleteImage(i int) {
	im := &c.inv.Images[i]
	id := im.Name
	if id == "" {
		id = im.Digest
	}
	var bytes int64
	c.digests[im.Digest]--
	if c.digests[im.Digest] == 0 {
		bytes = im.Size
	}
	reason := "unused image"
	switch {
	case im.Name == "":
		reason = "dangling image"
	case c.policy.Mode == GarbageCollect:
		reason = "unused for " + c.now.Sub(lastUse(im)).Round(time.Second).String()
	}
	c.out.Images = append(c.out.Images, Deletion{ID: id, Bytes: bytes, Reason: reason})
	c.out.FreedBytes += bytes
	c.ref(im.Snapshot, -1)
	c.sweepSnapshots("layer of deleted image " + id)
}

// ref adds delta to the references of the snapshot key and of its ancestors.
func (c *cleaner) ref(key string, delta int) {
	seen := map[string]bool{}
	for key != "" && !seen[key] {
		seen[key] = true
		c.refs[key] += delta
		s := c.snaps[key]
		if s == nil {
			return
		}
		key = s.Parent
	}
}

// sweepSnapshots plans the deletion of every snapshot no root reaches, old enough and not
// planned already.
func (c *cleaner) sweepSnapshots(reason string) {
	for _, s := range c.inv.Snapshots {
		if c.gone[s.Key] || c.refs[s.Key] > 0 || !c.old(s.Created, time.Time{}) {
			continue
		}
		c.gone[s.Key] = true
		c.out.Snapshots = append(c.out.Snapshots, Deletion{ID: s.Key, Bytes: s.Size, Reason: reason})
		c.out.FreedBytes += s.Size
	}
}

// keepPerRepository returns the indexes of the images kept as the newest of their
// repository.
func (c *cleaner) keepPerRepository() map[int]bool {
	keep := map[int]bool{}
	n := c.policy.KeepPerRepository
	if n <= 0 {
		return keep
	}
	byRepo := map[string][]int{}
	for i, im := range c.inv.Images {
		if im.Name == "" {
			continue
		}
		repo := im.Name
		if named, err := reference.ParseNormalizedNamed(im.Name); err == nil {
			repo = named.Name()
		}
		byRepo[repo] = append(byRepo[repo], i)
	}
	for _, list := range byRepo {
		slices.SortStableFunc(list, func(a, b int) int {
			return c.inv.Images[b].Created.Compare(c.inv.Images[a].Created)
		})
		for _, i := range list[:min(n, len(list))] {
			keep[i] = true
		}
	}
	return keep
}

// old reports whether something created at created and last active at active (either
// may be zero) is older than MinAge.
func (c *cleaner) old(created, active time.Time) bool {
	last := created
	if active.After(last) {
		last = active
	}
	return c.policy.MinAge <= 0 || c.now.Sub(last) >= c.policy.MinAge
}

// filtered reports whether the prune filters (Until and Labels) select something.
func (c *cleaner) filtered(created time.Time, labels map[string]string) bool {
	if c.policy.Until > 0 && !created.IsZero() && c.now.Sub(created) < c.policy.Until {
		return false
	}
	for _, f := range c.filters {
		if f.match(labels) == f.negate {
			return false
		}
	}
	return true
}

func (c *cleaner) pinned(labels map[string]string) bool {
	for _, s := range c.pins {
		if s.match(labels) {
			return true
		}
	}
	return false
}

func lastUse(im *Image) time.Time {
	if im.LastUsed.After(im.Created) {
		return im.LastUsed
	}
	return im.Created
}

// orderChildrenFirst sorts snapshot deletions so that no snapshot comes before one stacked
// on it.
func orderChildrenFirst(ds []Deletion, snaps map[string]*Snapshot) []Deletion {
	depth := func(key string) int {
		d := 0
		seen := map[string]bool{}
		for s := snaps[key]; s != nil && s.Parent != "" && !seen[s.Key]; s = snaps[s.Parent] {
			seen[s.Key] = true
			d++
		}
		return d
	}
	slices.SortStableFunc(ds, func(a, b Deletion) int {
		if c := cmp.Compare(depth(b.ID), depth(a.ID)); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return ds
}

// selector is a label selector: key, or key=value; negate for "label!=" filters.
type selector struct {
	key, value string
	hasValue   bool
	negate     bool
}

func (s selector) match(labels map[string]string) bool {
	v, ok := labels[s.key]
	return ok && (!s.hasValue || v == s.value)
}

// parseSelectors reads pin selectors ("key", "key=value") or, with docker, prune filters
// ("label=key", "label=key=value", "label!=key", "label!=key=value").
func parseSelectors(texts []string, docker bool) ([]selector, error) {
	var out []selector
	for _, t := range texts {
		var s selector
		rest, at := t, 0
		if docker {
			switch {
			case strings.HasPrefix(t, "label!="):
				s.negate, rest, at = true, t[len("label!="):], len("label!=")
			case strings.HasPrefix(t, "label="):
				rest, at = t[len("label="):], len("label=")
			default:
				return nil, &SyntaxError{Text: t, Column: 1, Msg: "want label=<key>[=<value>] or label!=<key>[=<value>]"}
			}
		}
		s.key, s.value, s.hasValue = strings.Cut(rest, "=")
		if s.key == "" {
			return nil, &SyntaxError{Text: t, Column: at + 1, Msg: "want a label key"}
		}
		out = append(out, s)
	}
	return out, nil
}
