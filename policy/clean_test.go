package policy

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opendao/dao"
)

const mib = dao.MiB

// inventory is a node with images of all kinds; now is t0.
func inventory(disk Disk) Inventory {
	day := 24 * time.Hour
	ago := func(d time.Duration) time.Time { return t0.Add(-d) }
	return Inventory{
		Disk: disk,
		Images: []Image{
			{Name: "registry.example.com/web:1.0", Digest: "d1", Size: 100 * mib, Created: ago(30 * day), LastUsed: ago(20 * day), Snapshot: "s-web1"},
			{Name: "registry.example.com/web:2.0", Digest: "d2", Size: 100 * mib, Created: ago(10 * day), LastUsed: ago(time.Hour), Snapshot: "s-web2"},
			{Name: "registry.example.com/web:3.0", Digest: "d3", Size: 100 * mib, Created: ago(day), Labels: map[string]string{"env": "dev"}},
			{Name: "", Digest: "d4", Size: 50 * mib, Created: ago(40 * day), Snapshot: "s-dangling"},
			{Name: "docker.io/library/busybox:1", Digest: "d5", Size: 2 * mib, Created: ago(60 * day)},
			{Name: "docker.io/library/busybox:latest", Digest: "d5", Size: 2 * mib, Created: ago(60 * day)},
			{Name: "registry.k8s.io/pause:3.9", Digest: "d6", Size: mib, Created: ago(90 * day), Labels: map[string]string{"io.cri-containerd.pinned": "pinned"}},
			{Name: "registry.example.com/new:1", Digest: "d7", Size: 10 * mib, Created: ago(time.Minute)},
			{Name: "registry.example.com/assigned:1", Digest: "d8", Size: 10 * mib, Created: ago(50 * day), InUse: true},
		},
		Containers: []Container{
			{ID: "c1", Image: "registry.example.com/web:2.0", Running: true, Created: ago(time.Hour), Snapshot: "c1-rw"},
			{ID: "c2", Image: "docker.io/library/busybox:1", Created: ago(3 * day), Finished: ago(2 * day), Snapshot: "c2-rw",
				Labels: map[string]string{"env": "dev"}},
			{ID: "c3", Image: "d1", Created: ago(3 * day), Finished: ago(day), Labels: map[string]string{"io.opendao.pinned": "yes"}},
			{ID: "c4", Image: "registry.example.com/web:3.0", Created: ago(time.Hour), Finished: ago(time.Minute)},
		},
		Snapshots: []Snapshot{
			{Key: "s-base", Size: 10 * mib, Created: ago(30 * day)},
			{Key: "s-web1", Parent: "s-base", Size: 20 * mib, Created: ago(30 * day)},
			{Key: "s-web2", Parent: "s-base", Size: 20 * mib, Created: ago(10 * day)},
			{Key: "s-dangling", Size: 30 * mib, Created: ago(40 * day)},
			{Key: "s-orphan", Size: 5 * mib, Created: ago(day)},
			{Key: "s-young-orphan", Size: 5 * mib, Created: ago(30 * time.Second)},
			{Key: "c1-rw", Parent: "s-web2", Size: mib, Created: ago(time.Hour)},
			{Key: "c2-rw", Parent: "s-web1", Size: 2 * mib, Created: ago(3 * day)},
		},
	}
}

type planView struct {
	Containers, Images, Snapshots []string
	Freed                         int64 // MiB
	Wanted                        int64 // MiB
	Reason                        string
}

func view(p CleanPlan) planView {
	ids := func(ds []Deletion) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}
	return planView{ids(p.Containers), ids(p.Images), ids(p.Snapshots), p.FreedBytes / mib, p.Wanted / mib, p.Reason}
}

func TestCleanPlan(t *testing.T) {
	t.Parallel()
	gc := DefaultCleanPolicy()
	floor := gc
	floor.MinFree = 600 * mib
	prune := DefaultCleanPolicy()
	prune.Mode = PruneDangling
	pruneAll := DefaultCleanPolicy()
	pruneAll.Mode = PruneAll
	until := pruneAll
	until.Until = 7 * 24 * time.Hour
	dev := pruneAll
	dev.Labels = []string{"label=env=dev"}
	notDev := pruneAll
	notDev.Labels = []string{"label!=env"}
	noAge := pruneAll
	noAge.MinAge = 0

	tests := []struct {
		name   string
		policy CleanPolicy
		disk   Disk
		want   planView
	}{
		{"below the threshold", gc, Disk{1000 * mib, 700 * mib},
			planView{Reason: "disk 70% used, below the high threshold 85%: nothing to do"}},
		{"capacity unknown", gc, Disk{0, 700 * mib},
			planView{Reason: "disk capacity unknown: nothing to do"}},
		{"above the threshold: least recently used first, until 80%", gc, Disk{1000 * mib, 860 * mib},
			// The unreferenced snapshot, then busybox:latest, which frees nothing (busybox:1
			// keeps its digest), then the dangling image and its layer: enough. web:1.0 is
			// used by c3 (by digest) and web:3.0 by c4, stopped but kept: the collector leaves
			// containers alone.
			planView{Images: []string{"docker.io/library/busybox:latest", "d4"}, Snapshots: []string{"s-dangling", "s-orphan"},
				Freed: 5 + 50 + 30, Wanted: 60, Reason: "disk 86% used, high threshold 85%: free 60MiB to reach 80%"}},
		{"not enough to free", gc, Disk{1000 * mib, 950 * mib},
			planView{Images: []string{"docker.io/library/busybox:latest", "d4"}, Snapshots: []string{"s-dangling", "s-orphan"},
				Freed: 85, Wanted: 150, Reason: "disk 95% used, high threshold 85%: free 150MiB to reach 80%"}},
		{"a floor of free bytes", floor, Disk{1000 * mib, 500 * mib},
			planView{Images: []string{"docker.io/library/busybox:latest", "d4"}, Snapshots: []string{"s-dangling", "s-orphan"},
				Freed: 85, Wanted: 100, Reason: "500MiB free, below the floor of 600MiB: free 100MiB"}},
		{"both the threshold and the floor", floor, Disk{1000 * mib, 900 * mib},
			planView{Images: []string{"docker.io/library/busybox:latest", "d4"}, Snapshots: []string{"s-dangling", "s-orphan"},
				Freed: 85, Wanted: 500, Reason: "disk 90% used, high threshold 85%: free 100MiB to reach 80%; 100MiB free, below the floor of 600MiB: free 500MiB"}},
		{"docker system prune", prune, Disk{},
			planView{Containers: []string{"c2"}, Images: []string{"d4"}, Snapshots: []string{"c2-rw", "s-dangling", "s-orphan"},
				Freed: 5 + 2 + 50 + 30, Reason: "prune stopped containers, dangling images and unreferenced snapshots"}},
		{"docker system prune -a", pruneAll, Disk{},
			// c3 is pinned and keeps web:1.0 (by digest); c4 finished a minute ago; web:3.0 is
			// used by c4; pause is pinned; new:1 is too young; assigned:1 is in use.
			planView{Containers: []string{"c2"},
				Images:    []string{"docker.io/library/busybox:1", "docker.io/library/busybox:latest", "d4"},
				Snapshots: []string{"c2-rw", "s-dangling", "s-orphan"},
				Freed:     5 + 2 + 2 + 50 + 30, Reason: "prune stopped containers, unused images and unreferenced snapshots"}},
		{"prune -a without a minimum age", noAge, Disk{},
			planView{Containers: []string{"c2", "c4"},
				Images: []string{"docker.io/library/busybox:1", "docker.io/library/busybox:latest", "d4",
					"registry.example.com/web:3.0", "registry.example.com/new:1"},
				Snapshots: []string{"c2-rw", "s-dangling", "s-orphan", "s-young-orphan"},
				Freed:     5 + 5 + 2 + 2 + 50 + 30 + 100 + 10, Reason: "prune stopped containers, unused images and unreferenced snapshots"}},
		{"prune -a until 7 days", until, Disk{},
			// c2 is too recent, and keeps busybox:1; busybox:latest is another name.
			planView{Containers: []string{}, Images: []string{"docker.io/library/busybox:latest", "d4"}, Snapshots: []string{"s-dangling", "s-orphan"},
				Freed: 5 + 50 + 30, Reason: "prune stopped containers, unused images and unreferenced snapshots"}},
		{"prune -a label=env=dev", dev, Disk{},
			// c2 goes; busybox:1 is now unused but has no env=dev label.
			planView{Containers: []string{"c2"}, Images: []string{}, Snapshots: []string{"c2-rw", "s-orphan"},
				Freed: 5 + 2, Reason: "prune stopped containers, unused images and unreferenced snapshots"}},
		{"prune -a label!=env", notDev, Disk{},
			planView{Containers: []string{}, Images: []string{"docker.io/library/busybox:latest", "d4"}, Snapshots: []string{"s-dangling", "s-orphan"},
				Freed: 5 + 50 + 30, Reason: "prune stopped containers, unused images and unreferenced snapshots"}},
	}
	for _, tt := range tests {
		plan, err := tt.policy.Plan(inventory(tt.disk), t0)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		got := view(plan)
		// Compare empty and nil lists alike.
		for _, l := range []*[]string{&got.Containers, &got.Images, &got.Snapshots, &tt.want.Containers, &tt.want.Images, &tt.want.Snapshots} {
			if len(*l) == 0 {
				*l = nil
			}
		}
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, d)
		}
		var sum int64
		for _, l := range [][]Deletion{plan.Containers, plan.Images, plan.Snapshots} {
			for _, d := range l {
				sum += d.Bytes
			}
		}
		if sum != plan.FreedBytes {
			t.Errorf("%s: FreedBytes %d is not the sum of the deletions %d", tt.name, plan.FreedBytes, sum)
		}
	}
}

func TestCleanPlanReasons(t *testing.T) {
	t.Parallel()
	inv := inventory(Disk{1000 * mib, 990 * mib})
	inv.Containers = inv.Containers[:2] // without c3 and c4, web:1.0 and web:3.0 are unused
	plan, err := DefaultCleanPolicy().Plan(inv, t0)
	if err != nil {
		t.Fatal(err)
	}
	want := []Deletion{
		{"docker.io/library/busybox:latest", 0, "unused for 1440h0m0s"},
		{"d4", 50 * mib, "dangling image"},
		{"registry.example.com/web:1.0", 100 * mib, "unused for 480h0m0s"},
		{"registry.example.com/web:3.0", 100 * mib, "unused for 24h0m0s"},
	}
	if d := cmp.Diff(want, plan.Images); d != "" {
		t.Errorf("images (-want +got):\n%s", d)
	}
	wantSnaps := []Deletion{
		{"s-dangling", 30 * mib, "layer of deleted image d4"},
		{"s-orphan", 5 * mib, "unreferenced snapshot"},
	}
	if d := cmp.Diff(wantSnaps, plan.Snapshots); d != "" {
		t.Errorf("snapshots (-want +got):\n%s", d)
	}
	if got, want := plan.FreedBytes, 285*mib; got != want {
		t.Errorf("freed %s, want %s", dao.FormatBytes(got), dao.FormatBytes(want))
	}

	// Keeping the newest image of each repository spares web:3.0 (and busybox:1, the
	// first of two equally old busybox images).
	keep := DefaultCleanPolicy()
	keep.KeepPerRepository = 1
	plan, err = keep.Plan(inv, t0)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"docker.io/library/busybox:latest", "d4", "registry.example.com/web:1.0"}, view(plan).Images); d != "" {
		t.Errorf("keep 1 per repository (-want +got):\n%s", d)
	}
}

func TestCleanSnapshotOrder(t *testing.T) {
	t.Parallel()
	inv := Inventory{Snapshots: []Snapshot{
		{Key: "a", Size: 1}, {Key: "b", Parent: "a", Size: 1}, {Key: "c", Parent: "b", Size: 1},
		{Key: "loop1", Parent: "loop2"}, {Key: "loop2", Parent: "loop1"}, // malformed: must not hang
	}}
	plan, err := CleanPolicy{Mode: PruneAll}.Plan(inv, t0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range plan.Snapshots {
		got = append(got, d.ID)
	}
	// Children before parents.
	if d := cmp.Diff([]string{"c", "loop1", "loop2", "b", "a"}, got); d != "" {
		t.Errorf("order (-want +got):\n%s", d)
	}
}

func TestCleanPolicyErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p      CleanPolicy
		column int
	}{
		{CleanPolicy{Mode: PruneAll, Labels: []string{"env=dev"}}, 1},
		{CleanPolicy{Mode: PruneAll, Labels: []string{"label="}}, 7},
		{CleanPolicy{Mode: PruneAll, Labels: []string{"label!==x"}}, 8},
		{CleanPolicy{Pinned: []string{"=x"}}, 1},
	}
	for _, tt := range tests {
		_, err := tt.p.Plan(Inventory{}, t0)
		var se *SyntaxError
		if !errors.As(err, &se) || se.Column != tt.column {
			t.Errorf("%+v: got %v, want a syntax error at column %d", tt.p, err, tt.column)
		}
	}
	if _, err := (CleanPolicy{Mode: 9}).Plan(Inventory{}, t0); !errors.Is(err, ErrInvalidPolicy) {
		t.Errorf("bad mode: %v", err)
	}
	for m, s := range map[PruneMode]string{GarbageCollect: "garbage-collect", PruneDangling: "prune", PruneAll: "prune-all", 5: "PruneMode(5)"} {
		if m.String() != s {
			t.Errorf("%d.String() = %q", int(m), m.String())
		}
	}
}
