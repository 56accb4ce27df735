package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/ctrd"
	regoci "github.com/opendao/dao/registry/oci"
)

// node is a private containerd with what dao clean must tell apart: a running container and
// a stopped one of the busybox image, an unused image, a pinned one, a labelled one, a
// dangling one, and a blob nothing references.
type node struct {
	t    *testing.T
	ctrd *testutil.Containerd
	c    *client.Client
	ctx  context.Context

	extra, pinned, labelled *regoci.Image
	dangling                digest.Digest
	orphan                  digest.Digest
}

const (
	extraName    = "dao.test/extra:1"
	pinnedName   = "dao.test/pinned:1"
	labelledName = "dao.test/labelled:1"
)

func newNode(t *testing.T) *node {
	t.Helper()
	d := testutil.StartContainerd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	n := &node{t: t, ctrd: d, c: d.Client, ctx: d.Context(ctx)}
	testutil.BusyboxImage(t, d)

	n.extra = n.importImage(extraName, nil)
	n.pinned = n.importImage(pinnedName, map[string]string{"io.opendao.pinned": "true"})
	n.labelled = n.importImage(labelledName, map[string]string{"tier": "keep"})
	// A dangling image: a record named by its digest, once its name moved on.
	old := n.importImage("dao.test/old:1", nil)
	n.dangling = old.Descriptor().Digest
	is := n.c.ImageService()
	if _, err := is.Create(n.ctx, images.Image{Name: n.dangling.String(), Target: old.Descriptor()}); err != nil {
		t.Fatalf("create dangling image: %v", err)
	}
	if err := is.Delete(n.ctx, "dao.test/old:1"); err != nil {
		t.Fatal(err)
	}

	n.container("web", "sleep", "600")
	n.container("done", "true")
	n.wait("done")
	return n
}

// importImage imports and unpacks an image of its own 256KiB of random bytes.
func (n *node) importImage(name string, labels map[string]string) *regoci.Image {
	n.t.Helper()
	lb, err := build.NewLayerBuilder()
	if err != nil {
		n.t.Fatal(err)
	}
	data := make([]byte, 256<<10)
	rand.Read(data)
	if err := lb.AddFile("data", 0o644, data); err != nil {
		n.t.Fatal(err)
	}
	layer, err := lb.Build(n.ctx)
	if err != nil {
		n.t.Fatal(err)
	}
	img, err := regoci.NewImage([]*regoci.Layer{layer}, ocispec.ImageConfig{Cmd: []string{"/data"}})
	if err != nil {
		n.t.Fatal(err)
	}
	opts := []ctrd.Option{ctrd.WithUnpack("overlayfs")}
	if labels != nil {
		opts = append(opts, ctrd.WithLabels(labels))
	}
	if _, err := ctrd.Import(n.ctx, n.c, name, img, opts...); err != nil {
		n.t.Fatalf("import %s: %v", name, err)
	}
	return img
}

// container creates a container id of the busybox image and starts args in it.
func (n *node) container(id string, args ...string) {
	n.t.Helper()
	n.containerOf(testutil.BusyboxImageName, id, args...)
}

// containerOf creates a container id of image and starts args in it.
func (n *node) containerOf(image, id string, args ...string) {
	n.t.Helper()
	img, err := n.c.GetImage(n.ctx, image)
	if err != nil {
		n.t.Fatal(err)
	}
	ct, err := n.c.NewContainer(n.ctx, id,
		client.WithImage(img),
		client.WithNewSnapshot(id+"-rootfs", img),
		client.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs(args...)))
	if err != nil {
		n.t.Fatalf("create %s: %v", id, err)
	}
	n.start(ct)
}

// start starts a new task in ct.
func (n *node) start(ct client.Container) {
	n.t.Helper()
	task, err := ct.NewTask(n.ctx, cio.NullIO)
	if err != nil {
		n.t.Fatalf("task of %s: %v", ct.ID(), err)
	}
	if err := task.Start(n.ctx); err != nil {
		n.t.Fatalf("start %s: %v", ct.ID(), err)
	}
}

// wait waits until the task of container id has exited.
func (n *node) wait(id string) {
	n.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ct, err := n.c.LoadContainer(n.ctx, id)
		if err != nil {
			n.t.Fatal(err)
		}
		task, err := ct.Task(n.ctx, nil)
		if err != nil {
			n.t.Fatal(err)
		}
		st, err := task.Status(n.ctx)
		if err != nil {
			n.t.Fatal(err)
		}
		if st.Status == client.Stopped {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("%s did not exit within 30s", id)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writeBlob writes a blob that nothing references, but the lease of ctx if any.
func (n *node) writeBlob(ctx context.Context, name string) digest.Digest {
	n.t.Helper()
	data := []byte(fmt.Sprintf("%s blob of %s\n", name, time.Now()))
	desc := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(data), Size: int64(len(data))}
	if err := content.WriteBlob(ctx, n.c.ContentStore(), name, bytes.NewReader(data), desc); err != nil {
		n.t.Fatalf("write blob: %v", err)
	}
	return desc.Digest
}

// dao runs the command against the node.
func (n *node) dao(args ...string) (stdout string) {
	n.t.Helper()
	args = append([]string{"--address", n.ctrd.Address, "--namespace", testutil.Namespace}, args...)
	status, out, errOut := runDao(n.t, args...)
	n.t.Logf("$ dao %s\n%s%s", strings.Join(args, " "), out, errOut)
	if status != exitOK || errOut != "" {
		n.t.Fatalf("dao %v: status %d, stderr %q", args, status, errOut)
	}
	return out
}

// state is what containerd holds in the test namespace, as containerd's client sees it.
type state struct {
	Containers map[string]string // ID -> task status
	Images     map[string]digest.Digest
	Snapshots  []string
	Content    []digest.Digest
}

func (n *node) state() state {
	n.t.Helper()
	s := state{Containers: map[string]string{}, Images: map[string]digest.Digest{}}
	cs, err := n.c.Containers(n.ctx)
	if err != nil {
		n.t.Fatal(err)
	}
	for _, c := range cs {
		st := "no task"
		if task, err := c.Task(n.ctx, nil); err == nil {
			status, err := task.Status(n.ctx)
			if err != nil {
				n.t.Fatal(err)
			}
			st = string(status.Status)
		}
		s.Containers[c.ID()] = st
	}
	imgs, err := n.c.ImageService().List(n.ctx)
	if err != nil {
		n.t.Fatal(err)
	}
	for _, img := range imgs {
		s.Images[img.Name] = img.Target.Digest
	}
	err = n.c.SnapshotService("overlayfs").Walk(n.ctx, func(_ context.Context, info snapshots.Info) error {
		s.Snapshots = append(s.Snapshots, info.Name)
		return nil
	})
	if err != nil {
		n.t.Fatal(err)
	}
	err = n.c.ContentStore().Walk(n.ctx, func(info content.Info) error {
		s.Content = append(s.Content, info.Digest)
		return nil
	})
	if err != nil {
		n.t.Fatal(err)
	}
	slices.Sort(s.Snapshots)
	slices.Sort(s.Content)
	return s
}

// blobs returns the manifest, config and layers of img.
func blobs(img *regoci.Image) []digest.Digest {
	out := []digest.Digest{img.Descriptor().Digest, img.Manifest().Config.Digest}
	for _, l := range img.Manifest().Layers {
		out = append(out, l.Digest)
	}
	return out
}

// snapshotOf returns the key of the unpacked top layer of img.
func snapshotOf(img *regoci.Image) string {
	var diffIDs []digest.Digest
	for _, l := range img.Layers() {
		diffIDs = append(diffIDs, l.DiffID())
	}
	return identity.ChainID(diffIDs).String()
}

// has reports whether s holds the image name with all its content and its snapshot.
func (s state) has(name string, img *regoci.Image) bool {
	if s.Images[name] != img.Descriptor().Digest || !slices.Contains(s.Snapshots, snapshotOf(img)) {
		return false
	}
	for _, d := range blobs(img) {
		if !slices.Contains(s.Content, d) {
			return false
		}
	}
	return true
}

// lacks reports whether s holds nothing of the image name: no record, content or snapshot.
func (s state) lacks(name string, img *regoci.Image) bool {
	if _, ok := s.Images[name]; ok || slices.Contains(s.Snapshots, snapshotOf(img)) {
		return false
	}
	for _, d := range blobs(img) {
		if slices.Contains(s.Content, d) {
			return false
		}
	}
	return true
}

// rowOf returns the fields of the line of out whose first two fields are kind and id.
func rowOf(out, kind, id string) []string {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == kind && f[1] == id {
			return f
		}
	}
	return nil
}

func TestCleanKeepsWhatRunningContainersUse(t *testing.T) {
	n := newNode(t)
	busybox, err := testutil.Busybox()
	if err != nil {
		t.Fatal(err)
	}
	web, err := n.c.LoadContainer(n.ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	webInfo, err := web.Info(n.ctx)
	if err != nil {
		t.Fatal(err)
	}
	// What no clean may touch: the running container, its writable layer, its image with
	// its content and layers, and the pinned image.
	intact := func(s state) {
		t.Helper()
		if s.Containers["web"] != string(client.Running) {
			t.Errorf("container web is %q, want running", s.Containers["web"])
		}
		if !slices.Contains(s.Snapshots, webInfo.SnapshotKey) {
			t.Errorf("the writable layer %s of the running container is gone", webInfo.SnapshotKey)
		}
		if !s.has(testutil.BusyboxImageName, busybox) {
			t.Errorf("the image of the running container lost its record, content or snapshot: %+v", s)
		}
		if !s.has(pinnedName, n.pinned) {
			t.Errorf("the pinned image lost its record, content or snapshot")
		}
	}

	n.ps(t)

	// What a lease holds (a pull or an unpack under way) stays; what nothing holds goes.
	leased, release, err := n.c.WithLease(n.ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = release(context.WithoutCancel(leased)) })
	heldBlob := n.writeBlob(leased, "held")
	sn := n.c.SnapshotService("overlayfs")
	if _, err := sn.Prepare(leased, "held-snapshot", ""); err != nil {
		t.Fatal(err)
	}
	n.orphan = n.writeBlob(n.ctx, "orphan")
	if _, err := sn.Prepare(n.ctx, "stray-snapshot", ""); err != nil {
		t.Fatal(err)
	}
	heldIntact := func(s state) {
		t.Helper()
		if !slices.Contains(s.Content, heldBlob) || !slices.Contains(s.Snapshots, "held-snapshot") {
			t.Errorf("the blob or the snapshot a lease holds is gone")
		}
	}

	// A dry run lists, with bytes, and changes nothing.
	before := n.state()
	out := n.dao("clean", "--dry-run", "--all")
	after := n.state()
	if diff := cmp.Diff(n.withoutStrays(before), n.withoutStrays(after)); diff != "" {
		t.Errorf("clean --dry-run changed containerd (-before +after):\n%s", diff)
	}
	for _, want := range []struct{ kind, id string }{
		{"container", "done"},
		{"snapshot", "done-rootfs"},
		{"image", extraName},
		{"image", labelledName},
		{"image", shortID(n.dangling.String())},
		{"snapshot", shortID(snapshotOf(n.extra))},
	} {
		row := rowOf(out, want.kind, want.id)
		if row == nil {
			t.Errorf("clean --dry-run does not list %s %s", want.kind, want.id)
			continue
		}
		if want.kind != "container" && (row[2] == "0B" || row[2] == "-") {
			t.Errorf("clean --dry-run lists %s %s with size %s", want.kind, want.id, row[2])
		}
	}
	// containerd's garbage collector may take the orphans first.
	if slices.Contains(after.Content, n.orphan) && rowOf(out, "content", shortID(n.orphan.String())) == nil {
		t.Errorf("clean --dry-run does not list the blob %s that nothing references", n.orphan)
	}
	if slices.Contains(after.Snapshots, "stray-snapshot") && rowOf(out, "snapshot", "stray-snapshot") == nil {
		t.Errorf("clean --dry-run does not list the snapshot that nothing references")
	}
	for _, never := range []string{"web", "web-rootfs", testutil.BusyboxImageName, pinnedName, "held-snapshot", shortID(heldBlob.String())} {
		if strings.Contains(out, " "+never+" ") {
			t.Errorf("clean --dry-run would remove %s", never)
		}
	}
	if !strings.Contains(out, "Would free ") || !strings.Contains(out, "Nothing was removed (--dry-run).") {
		t.Errorf("clean --dry-run does not say what it would free")
	}
	intact(after)

	// Without --all: stopped containers and dangling images only.
	out = n.dao("clean", "-f")
	s := n.state()
	intact(s)
	if _, ok := s.Containers["done"]; ok || slices.Contains(s.Snapshots, "done-rootfs") {
		t.Errorf("clean left the stopped container or its writable layer: %+v", s)
	}
	if _, ok := s.Images[n.dangling.String()]; ok {
		t.Errorf("clean left the dangling image")
	}
	if slices.Contains(s.Content, n.orphan) || slices.Contains(s.Snapshots, "stray-snapshot") {
		t.Errorf("clean left the blob or the snapshot nothing references")
	}
	heldIntact(s)
	if !s.has(extraName, n.extra) || !s.has(labelledName, n.labelled) {
		t.Errorf("clean without --all removed a named image")
	}
	if !strings.Contains(out, "Freed ") {
		t.Errorf("clean does not say what it freed")
	}

	// --all with a filter: every unused image but those labelled tier=keep.
	n.dao("clean", "--all", "--force", "--filter", "label!=tier=keep")
	s = n.state()
	intact(s)
	if !s.lacks(extraName, n.extra) {
		t.Errorf("clean --all left something of the unused image %s", extraName)
	}
	if !s.has(labelledName, n.labelled) {
		t.Errorf("clean --all --filter label!=tier=keep removed %s", labelledName)
	}

	// --until: only what is older than an hour; nothing here is.
	if out := n.dao("clean", "--all", "-f", "--until", "1h"); !strings.Contains(out, "Nothing to remove.") {
		t.Errorf("clean --all --until 1h would remove something")
	}
	if out := n.dao("clean", "-af", "--filter", "until=1h"); !strings.Contains(out, "Nothing to remove.") {
		t.Errorf("clean -af --filter until=1h would remove something")
	}

	n.dao("clean", "-af")
	s = n.state()
	intact(s)
	if !s.lacks(labelledName, n.labelled) {
		t.Errorf("clean --all left something of %s", labelledName)
	}
	if got, want := len(s.Containers), 1; got != want {
		t.Errorf("%d containers left, want %d (web)", got, want)
	}
	heldIntact(s)

	if out := n.dao("clean", "--dry-run", "--all"); !strings.Contains(out, "Nothing to remove.") {
		t.Errorf("after clean --all, a dry run still finds something")
	}
	// The running container still works.
	task, err := web.Task(n.ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pids, err := task.Pids(n.ctx); err != nil || len(pids) == 0 {
		t.Errorf("web's processes: %v, %v", pids, err)
	}
}

// ps checks dao ps against the node.
func (n *node) ps(t *testing.T) {
	out := n.dao("ps")
	if rowOf(out, "web", testutil.BusyboxImageName) == nil || strings.Contains(out, "done") {
		t.Errorf("dao ps should list web and only web:\n%s", out)
	}
	out = n.dao("ps", "--all")
	if row := rowOf(out, "done", testutil.BusyboxImageName); row == nil || row[2] != "stopped" || !strings.Contains(out, "exited (0)") {
		t.Errorf("dao ps --all should list done as stopped, exited (0):\n%s", out)
	}
}

// TestSweepKeepsWhatStartedSincePlan plans a clean while a container is stopped, starts it
// again, and carries out the plan: the container, its writable layer, its image and the
// image's layers must stay.
func TestSweepKeepsWhatStartedSincePlan(t *testing.T) {
	n := newNode(t)
	// An image of its own, busybox plus a layer, that only the container "again" uses.
	busybox, err := testutil.Busybox()
	if err != nil {
		t.Fatal(err)
	}
	lb, err := build.NewLayerBuilder()
	if err != nil {
		t.Fatal(err)
	}
	if err := lb.AddFile("etc/motd", 0o644, []byte("again\n")); err != nil {
		t.Fatal(err)
	}
	top, err := lb.Build(n.ctx)
	if err != nil {
		t.Fatal(err)
	}
	againImg, err := regoci.NewImage(append(busybox.Layers(), top), busybox.Config().Config)
	if err != nil {
		t.Fatal(err)
	}
	const againName = "dao.test/again:1"
	if _, err := ctrd.Import(n.ctx, n.c, againName, againImg, ctrd.WithUnpack("overlayfs")); err != nil {
		t.Fatal(err)
	}
	n.containerOf(againName, "again", "sh", "-c", "test -e /tmp/stop || sleep 600")
	ct, err := n.c.LoadContainer(n.ctx, "again")
	if err != nil {
		t.Fatal(err)
	}
	task, err := ct.Task(n.ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Kill(n.ctx, 9); err != nil {
		t.Fatal(err)
	}
	n.wait("again")

	cl := &cleaner{client: n.c, snapshotter: "overlayfs", logf: t.Logf}
	p, err := (&cleanOptions{all: true, snapshotter: "overlayfs"}).policy(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s, err := cl.inventory(n.ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := p.Plan(s.Inventory, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rs := s.removals(n.ctx, n.c.ContentStore(), plan)
	planned := map[string]bool{}
	for _, r := range rs {
		planned[r.kind+" "+r.id] = true
	}
	for _, want := range []string{"container again", "image " + againName, "snapshot again-rootfs", "snapshot " + snapshotOf(againImg)} {
		if !planned[want] {
			t.Fatalf("the plan does not remove %s: %v", want, planned)
		}
	}

	// It starts again before the plan is carried out.
	if _, err := task.Delete(n.ctx); err != nil {
		t.Fatal(err)
	}
	n.start(ct)
	if err := cl.sweep(n.ctx, s, p, rs); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	for _, r := range rs {
		t.Logf("%s %s: %s", r.kind, r.id, r.result)
		if r.failed {
			t.Errorf("%s %s failed: %s", r.kind, r.id, r.result)
		}
	}
	got := n.state()
	if got.Containers["again"] != string(client.Running) {
		t.Errorf("container again is %q, want running", got.Containers["again"])
	}
	if !slices.Contains(got.Snapshots, "again-rootfs") {
		t.Errorf("the writable layer of the running container is gone")
	}
	if !got.has(againName, againImg) {
		t.Errorf("the image of the running container lost its record, content or layers")
	}
	if !got.lacks(extraName, n.extra) {
		t.Errorf("the rest of the plan was not carried out: %s is still there", extraName)
	}
}

// withoutStrays returns s without the orphan blob and the stray snapshot, which
// containerd's garbage collector may remove at any time.
func (n *node) withoutStrays(s state) state {
	s.Content = slices.DeleteFunc(slices.Clone(s.Content), func(d digest.Digest) bool { return d == n.orphan })
	s.Snapshots = slices.DeleteFunc(slices.Clone(s.Snapshots), func(k string) bool { return k == "stray-snapshot" })
	return s
}

// A container between two local restarts of its edge agent is down, but it is not
// stopped for good: clean keeps it, as docker system prune keeps a restarting container.
func TestCleanKeepsARestartingContainer(t *testing.T) {
	n := newNode(t)
	n.container("crashy", "false")
	n.wait("crashy")
	ct, err := n.c.LoadContainer(n.ctx, "crashy")
	if err != nil {
		t.Fatal(err)
	}
	next := time.Now().Add(time.Minute).Format(time.RFC3339Nano)
	if _, err := ct.SetLabels(n.ctx, map[string]string{edge.LabelNextRestart: next}); err != nil {
		t.Fatal(err)
	}
	out := n.dao("clean", "--dry-run", "--all")
	if rowOf(out, "container", "crashy") != nil {
		t.Errorf("clean --dry-run would remove the restarting container crashy:\n%s", out)
	}
	if rowOf(out, "container", "done") == nil {
		t.Errorf("clean --dry-run does not list the stopped container done:\n%s", out)
	}
}
