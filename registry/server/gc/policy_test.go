package gc_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/server"
	"github.com/opendao/dao/registry/server/gc"
	"github.com/opendao/dao/registry/server/storage"
)

// TestDeleteUntaggedPolicy checks what WithDeleteUntagged unlinks: an untagged image, and
// the referrer of an untagged image; not a tagged image, the platforms of a tagged index,
// the referrer (a signature) of a tagged image, or an untagged image younger than the
// grace period. Without it, nothing linked is deleted; a dry run deletes nothing.
func TestDeleteUntaggedPolicy(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	st, err := storage.OpenFS(t.TempDir(), storage.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	h, err := server.New(st)
	if err != nil {
		t.Fatal(err)
	}
	image := func(name string, subject *ocispec.Descriptor) (ocispec.Descriptor, []byte) {
		cfg := []byte(`{"architecture":"amd64","os":"linux","n":"` + name + `"}`)
		if err := pushBlob(h, "app", cfg); err != nil {
			t.Fatal(err)
		}
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Subject: subject,
			Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))},
			Layers: []ocispec.Descriptor{}}
		m.SchemaVersion = 2
		raw, _ := json.Marshal(m)
		return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(raw), Size: int64(len(raw))}, raw
	}
	linked := func(d digest.Digest) bool {
		ms, err := st.Manifests(t.Context(), "app") // ManifestLinked would refresh d
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(ms, d)
	}
	put := func(ref string, desc ocispec.Descriptor, raw []byte) digest.Digest {
		t.Helper()
		if a := serve(h, "PUT", "/v2/app/manifests/"+ref, raw, "Content-Type", desc.MediaType); a.status != http.StatusCreated {
			t.Fatalf("put %s: %d %s", ref, a.status, a.body)
		}
		return desc.Digest
	}
	tagged, tr := image("tagged", nil)
	put("v1", tagged, tr)
	sig, sr := image("signature", &tagged)
	put(sig.Digest.String(), sig, sr)
	plat, pr := image("platform", nil)
	put(plat.Digest.String(), plat, pr)
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{plat}}
	idx.SchemaVersion = 2
	ir, _ := json.Marshal(idx)
	put("multi", ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(ir)}, ir)
	loose, lr := image("loose", nil)
	put(loose.Digest.String(), loose, lr)
	looseSig, lsr := image("loose signature", &loose)
	put(looseSig.Digest.String(), looseSig, lsr)

	now = now.Add(2 * time.Hour) // all of it older than the grace period
	young, yr := image("young", nil)
	put(young.Digest.String(), young, yr)

	opts := []gc.Option{gc.WithClock(clock), gc.WithGrace(time.Hour)}
	if rep, err := gc.Collect(t.Context(), st, opts...); err != nil || len(rep.UntaggedDeleted) != 0 {
		t.Fatalf("without WithDeleteUntagged: %v, deleted %v", err, rep.UntaggedDeleted)
	}
	rep, err := gc.Collect(t.Context(), st, append(opts, gc.WithDeleteUntagged(true), gc.WithDryRun(true))...)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"app@" + loose.Digest.String(), "app@" + looseSig.Digest.String()}
	slices.Sort(want)
	got := slices.Sorted(slices.Values(rep.UntaggedDeleted))
	if !slices.Equal(got, want) {
		t.Errorf("dry run: would delete %v, want %v (tagged %s, sig %s, platform %s, index %s, young %s)", got, want, tagged.Digest, sig.Digest, plat.Digest, digest.FromBytes(ir), young.Digest)
	}
	if !linked(loose.Digest) {
		t.Error("the dry run deleted")
	}
	fence := gc.NewFence()
	var told []gc.Deletion
	onDelete := gc.WithOnDelete(func(d gc.Deletion) { told = append(told, d) })
	if _, err := gc.Collect(t.Context(), st, append(opts, gc.WithDeleteUntagged(true), gc.WithDryRun(true), onDelete)...); err != nil || len(told) != 0 {
		t.Fatalf("a dry run told of deletions: %v %v", err, told)
	}
	rep, err = gc.Collect(t.Context(), st, append(opts, gc.WithDeleteUntagged(true), gc.WithFence(fence), onDelete)...)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(slices.Values(rep.UntaggedDeleted)); !slices.Equal(got, want) {
		t.Errorf("deleted %v, want %v", got, want)
	}
	// WithOnDelete tells of each deletion the report counts.
	var toldManifests []string
	var toldBlobs int
	var toldBytes int64
	for _, d := range told {
		if d.Manifest {
			toldManifests = append(toldManifests, d.Repository+"@"+d.Digest.String())
		} else {
			toldBlobs++
			toldBytes += d.Size
		}
	}
	if got := slices.Sorted(slices.Values(toldManifests)); !slices.Equal(got, want) {
		t.Errorf("told of manifests %v, want %v", got, want)
	}
	if toldBlobs != rep.BlobsDeleted || toldBytes != rep.BytesFreed || toldBlobs == 0 {
		t.Errorf("told of %d blobs (%d bytes), the report counts %d (%d bytes)", toldBlobs, toldBytes, rep.BlobsDeleted, rep.BytesFreed)
	}
	for _, d := range []digest.Digest{tagged.Digest, sig.Digest, plat.Digest, digest.FromBytes(ir), young.Digest} {
		if !linked(d) {
			t.Errorf("%s was deleted", d)
		}
	}
	for _, d := range []digest.Digest{loose.Digest, looseSig.Digest} {
		if linked(d) {
			t.Errorf("%s is still linked", d)
		}
		if _, err := st.StatBlob(t.Context(), d); err == nil {
			t.Errorf("the content of %s is still stored", d)
		}
	}
}

// TestFenceOldest checks that a collection never deletes content referenced after the
// start of a manifest put still in progress, however old that start.
func TestFenceOldest(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	st, err := storage.OpenFS(t.TempDir(), storage.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	f := gc.NewFence()
	leave := f.Enter("app") // a put that starts now and takes three hours
	now = now.Add(time.Minute)
	up, _ := st.NewUpload(t.Context(), "app")
	data := []byte("checked by the slow put")
	if _, err := up.Append(t.Context(), 0, bytesReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := up.Commit(t.Context(), digest.FromBytes(data)); err != nil {
		t.Fatal(err)
	}
	now = now.Add(3 * time.Hour)
	opts := []gc.Option{gc.WithClock(clock), gc.WithGrace(time.Hour), gc.WithFence(f)}
	rep, err := gc.Collect(t.Context(), st, opts...)
	if err != nil || rep.BlobsDeleted != 0 {
		t.Fatalf("collection during the put: %v, %d deleted", err, rep.BlobsDeleted)
	}
	leave()
	if rep, err := gc.Collect(t.Context(), st, opts...); err != nil || rep.BlobsDeleted != 1 {
		t.Fatalf("collection after the put: %v, %d deleted, want 1", err, rep.BlobsDeleted)
	}
}
