package storage_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/server/storage"
)

// clock is a settable time for the store.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func commit(t *testing.T, st *storage.FS, repo string, data []byte) digest.Digest {
	t.Helper()
	up, err := st.NewUpload(t.Context(), repo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Append(t.Context(), 0, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(data)
	if err := up.Commit(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if err := st.LinkBlob(t.Context(), repo, d); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestUploadAppendOutOfOrder(t *testing.T) {
	st, err := storage.OpenFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	up, err := st.NewUpload(t.Context(), "app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Append(t.Context(), 3, strings.NewReader("x")); !errors.Is(err, storage.ErrRangeInvalid) {
		t.Fatalf("append at 3 of 0: %v", err)
	}
	if _, err := up.Append(t.Context(), 0, strings.NewReader("abc")); err != nil {
		t.Fatal(err)
	}
	if err := up.Commit(t.Context(), digest.FromString("abd")); !errors.Is(err, storage.ErrDigestInvalid) {
		t.Fatalf("commit of a wrong digest: %v", err)
	}
	// The session is left as it was: it can still be finished.
	if _, err := up.Append(t.Context(), 3, strings.NewReader("d")); err != nil {
		t.Fatal(err)
	}
	if err := up.Commit(t.Context(), digest.SHA512.FromString("abcd")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Upload(t.Context(), "app", up.ID()); !errors.Is(err, storage.ErrUploadUnknown) {
		t.Fatalf("session after commit: %v", err)
	}
}

// TestDeleteBlobSparesRecentReferences is the collector's guard: a blob referenced after
// the sweep's cut-off survives DeleteBlob, an older one does not.
func TestDeleteBlobSparesRecentReferences(t *testing.T) {
	c := &clock{t: time.Unix(1_000_000, 0)}
	st, err := storage.OpenFS(t.TempDir(), storage.WithClock(c.now))
	if err != nil {
		t.Fatal(err)
	}
	old := commit(t, st, "app", []byte("old"))
	c.t = c.t.Add(time.Hour)
	recent := commit(t, st, "app", []byte("recent"))
	cut := c.t.Add(-time.Minute)
	var seen []digest.Digest
	if err := st.WalkBlobs(t.Context(), func(d digest.Digest, size int64, ref time.Time) error {
		seen = append(seen, d)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 {
		t.Fatalf("WalkBlobs saw %v", seen)
	}
	if ok, err := st.DeleteBlob(t.Context(), recent, cut); err != nil || ok {
		t.Fatalf("recent blob deleted: %v %v", ok, err)
	}
	if ok, err := st.DeleteBlob(t.Context(), old, cut); err != nil || !ok {
		t.Fatalf("old blob kept: %v %v", ok, err)
	}
	if _, err := st.StatBlob(t.Context(), old); !errors.Is(err, storage.ErrBlobUnknown) {
		t.Fatalf("deleted blob: %v", err)
	}
	if _, err := st.StatBlob(t.Context(), recent); err != nil {
		t.Fatal(err)
	}
	// A link refreshes the reference time.
	c.t = c.t.Add(time.Hour)
	if ok, _ := st.BlobLinked(t.Context(), "app", recent); !ok {
		t.Fatal("recent blob not linked")
	}
	if ok, _ := st.DeleteBlob(t.Context(), recent, c.t.Add(-time.Second)); ok {
		t.Fatal("a blob just checked was deleted")
	}
}

func TestManifestsTagsReferrers(t *testing.T) {
	st, err := storage.OpenFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	raw := []byte(`{"schemaVersion":2}`)
	d := digest.FromBytes(raw)
	subj := digest.FromString("subject")
	ref := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: int64(len(raw)), ArtifactType: "a"}
	if err := st.PutManifest(t.Context(), "team/app", storage.Manifest{Descriptor: ref, Raw: raw, Subject: subj, Referrer: ref}); err != nil {
		t.Fatal(err)
	}
	if err := st.Tag(t.Context(), "team/app", "v1", d); err != nil {
		t.Fatal(err)
	}
	repos, _ := st.Repositories(t.Context())
	if len(repos) != 1 || repos[0] != "team/app" {
		t.Fatalf("repositories %v", repos)
	}
	refs, _ := st.Referrers(t.Context(), "team/app", subj)
	if len(refs) != 1 || refs[0].ArtifactType != "a" {
		t.Fatalf("referrers %v", refs)
	}
	if err := st.DeleteManifest(t.Context(), "team/app", d); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ResolveTag(t.Context(), "team/app", "v1"); !errors.Is(err, storage.ErrManifestUnknown) {
		t.Fatalf("tag of a deleted manifest: %v", err)
	}
	refs, _ = st.Referrers(t.Context(), "team/app", subj)
	if len(refs) != 0 {
		t.Fatalf("referrers after delete %v", refs)
	}
	// No temporary files are left behind.
	filepath.Walk(st.Root(), func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasPrefix(fi.Name(), ".") {
			t.Errorf("left %s", p)
		}
		return nil
	})
}
