package hub

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/opendao/dao/registry/server/storage"
)

// TestQuotaRefusesAPushAndStoresNothing: a project of 64 KiB holds a blob of 40 KiB;
// a second of 40 KiB is refused with DENIED and a message naming the project and the
// quota, whether pushed at once or in chunks, and nothing of it is stored; a blob the
// project holds already adds nothing; the usage is the same after a restart.
func TestQuotaRefusesAPushAndStoresNothing(t *testing.T) {
	th := newTestHub(t)
	ctx := context.Background()
	if err := th.h.SetQuota(ctx, "team-a", 64<<10); err != nil {
		t.Fatal(err)
	}
	alice := basic("alice", password)
	first := bytes.Repeat([]byte("a"), 40<<10)
	second := bytes.Repeat([]byte("b"), 40<<10)
	th.pushBlob(alice, "team-a/app", first).want(t, http.StatusCreated, "")
	// The same blob in another repository of the project costs nothing more.
	th.pushBlob(alice, "team-a/web", first).want(t, http.StatusCreated, "")
	if used, quota, _ := th.h.Usage("team-a"); used != 40<<10 || quota != 64<<10 {
		t.Fatalf("usage %d of %d, want %d of %d", used, quota, 40<<10, 64<<10)
	}
	ans := th.pushBlob(alice, "team-a/app", second).want(t, http.StatusForbidden, "DENIED")
	if got, want := ans.message(), "project team-a: quota of 64 KiB exceeded: 40 KiB used, this push adds 40 KiB"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	// Chunked: a session, then the PATCH is refused before it is read (see
	// TestQuotaBoundsUploadSessions); the client cancels the session.
	ans = th.do(alice, "POST", "/v2/team-a/app/blobs/uploads/", nil).want(t, http.StatusAccepted, "")
	loc := ans.header.Get("Location")
	th.do(alice, "PATCH", loc, second, "Content-Type", "application/octet-stream").want(t, http.StatusForbidden, "DENIED")
	th.do(alice, "DELETE", loc, nil).want(t, http.StatusNoContent, "")
	// The server's own check at the commit: a session within the quota, a commit whose
	// digest is counted nowhere, after the usage grew meanwhile.
	ans = th.do(alice, "POST", "/v2/team-a/app/blobs/uploads/", nil).want(t, http.StatusAccepted, "")
	loc = ans.header.Get("Location")
	th.do(alice, "PATCH", loc, second[:20<<10], "Content-Type", "application/octet-stream").want(t, http.StatusAccepted, "")
	th.pushBlob(basic("mo", password), "team-a/web", bytes.Repeat([]byte("m"), 10<<10)).want(t, http.StatusCreated, "")
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	th.do(alice, "PUT", loc+sep+"digest="+digest.FromBytes(second[:20<<10]).String(), nil).want(t, http.StatusForbidden, "DENIED")
	th.do(basic("mo", password), "DELETE", "/v2/team-a/web/blobs/"+digest.FromBytes(bytes.Repeat([]byte("m"), 10<<10)).String(), nil).want(t, http.StatusAccepted, "")
	// A token changes nothing.
	tok := bearer(th.token(alice, "repository:team-a/app:pull,push"))
	th.pushBlob(tok, "team-a/app", second).want(t, http.StatusForbidden, "DENIED")

	// Nothing of the refused blob is stored, linked, or left in an upload.
	fs := th.h.Store().(*storage.FS)
	if _, err := fs.StatBlob(ctx, digest.FromBytes(second)); !errors.Is(err, storage.ErrBlobUnknown) {
		t.Errorf("the refused blob is stored: %v", err)
	}
	th.do(alice, "HEAD", "/v2/team-a/app/blobs/"+digest.FromBytes(second).String(), nil).want(t, http.StatusNotFound, "")
	var uploads []string
	fs.WalkUploads(ctx, func(repo, id string, size int64, _ time.Time) error {
		uploads = append(uploads, repo+"/"+id)
		return nil
	})
	if len(uploads) != 0 {
		t.Errorf("uploads left: %v", uploads)
	}
	// Another project's quota is its own.
	th.pushBlob(basic("bob", password), "team-b/app", second).want(t, http.StatusCreated, "")

	// A manifest counts too, and once the quota is raised the push goes through.
	img := newImage(second, nil, nil)
	if err := th.h.SetQuota(ctx, "team-a", 1<<20); err != nil {
		t.Fatal(err)
	}
	th.pushImage(alice, "team-a/app", "1", img)
	want := int64(len(first) + len(second) + len(img.config) + len(img.manifest))
	if used, _, _ := th.h.Usage("team-a"); used != want {
		t.Fatalf("usage %d, want %d", used, want)
	}

	// After a restart, the usage is the same: the manifest's blobs from the store, and
	// the blob linked by no manifest from the hub's database.
	root := th.root
	th.close()
	th2 := openTestHub(t, root)
	if used, _, _ := th2.h.Usage("team-a"); used != want {
		t.Fatalf("usage after a restart %d, want %d", used, want)
	}
	// Deleting the blob from one repository keeps it counted; from both, uncounts it.
	th2.do(basic("root", password), "DELETE", "/v2/team-a/web/blobs/"+digest.FromBytes(first).String(), nil).want(t, http.StatusAccepted, "")
	if used, _, _ := th2.h.Usage("team-a"); used != want {
		t.Fatalf("usage %d, want %d", used, want)
	}
	th2.do(basic("root", password), "DELETE", "/v2/team-a/app/blobs/"+digest.FromBytes(first).String(), nil).want(t, http.StatusAccepted, "")
	want -= int64(len(first))
	if used, _, _ := th2.h.Usage("team-a"); used != want {
		t.Fatalf("usage after deletes %d, want %d", used, want)
	}
	th2.close()
	th3 := openTestHub(t, root)
	if used, _, _ := th3.h.Usage("team-a"); used != want {
		t.Fatalf("usage after deletes and a restart %d, want %d", used, want)
	}
}

// TestQuotaReservesAdmittedPushes: two pushes admitted at once cannot together go past
// the quota: the second is refused while the first is in progress, and a reservation
// whose push never completes expires.
func TestQuotaReservesAdmittedPushes(t *testing.T) {
	now := time.Now()
	u := newUsage(nil, nil, func() time.Time { return now })
	d1, d2 := digest.FromString("one"), digest.FromString("two")
	if err := u.admit("p", 100, d1, 60); err != nil {
		t.Fatal(err)
	}
	if err := u.admit("p", 100, d1, 60); err != nil {
		t.Errorf("the same blob again: %v", err)
	}
	var qe *QuotaError
	if err := u.admit("p", 100, d2, 60); !errors.As(err, &qe) || qe.Used != 60 || !errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("second push: %v, want a QuotaError with 60 used", err)
	}
	now = now.Add(reservationTTL + time.Second)
	if err := u.admit("p", 100, d2, 60); err != nil {
		t.Errorf("after the first reservation expired: %v", err)
	}
}

// TestParseSize reads quota sizes and FormatSize writes them.
func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"10GiB": 10 << 30, "512 MiB": 512 << 20, "1048576": 1 << 20, "1.5KiB": 1536, "2GB": 2 << 30, "0": 0} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ten", "-1", "1 XB", "1e30"} {
		if _, err := ParseSize(in); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("ParseSize(%q): %v, want ErrInvalidOption", in, err)
		}
	}
	for n, want := range map[int64]string{512: "512 B", 10 << 20: "10 MiB", 9.5 * (1 << 20): "9.5 MiB", 2 << 30: "2 GiB"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestQuotaUnderConcurrentPushes: 16 developers push distinct 10 KiB blobs at once into a
// project of 64 KiB; six fit, and the project holds no more than its quota.
func TestQuotaUnderConcurrentPushes(t *testing.T) {
	th := newTestHub(t)
	if err := th.h.SetQuota(context.Background(), "team-a", 64<<10); err != nil {
		t.Fatal(err)
	}
	const n = 16
	codes := make(chan int, n)
	for i := range n {
		go func() {
			data := bytes.Repeat([]byte{byte(i)}, 10<<10)
			req, _ := http.NewRequest("POST", th.url+"/v2/team-a/app/blobs/uploads/?digest="+digest.FromBytes(data).String(), bytes.NewReader(data))
			req.SetBasicAuth("alice", password)
			res, err := th.srv.Client().Do(req)
			if err != nil {
				codes <- 0
				return
			}
			res.Body.Close()
			codes <- res.StatusCode
		}()
	}
	created := 0
	for range n {
		select {
		case c := <-codes:
			switch c {
			case http.StatusCreated:
				created++
			case http.StatusForbidden:
			default:
				t.Errorf("status %d", c)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("pushes did not finish")
		}
	}
	used, _, _ := th.h.Usage("team-a")
	if created != 6 || used != 6*10<<10 {
		t.Errorf("%d pushes created, %d bytes used; want 6 and %d", created, used, 6*10<<10)
	}
}

// TestQuotaBoundsUploadSessions: chunks appended to an upload cannot pile up past the
// quota before the commit: a PATCH whose length would pass it is refused with DENIED
// before it is read, and a streamed one is cut off where the quota ends.
func TestQuotaBoundsUploadSessions(t *testing.T) {
	th := newTestHub(t)
	ctx := context.Background()
	if err := th.h.SetQuota(ctx, "team-a", 64<<10); err != nil {
		t.Fatal(err)
	}
	alice := basic("alice", password)
	th.pushBlob(alice, "team-a/app", bytes.Repeat([]byte("a"), 40<<10)).want(t, http.StatusCreated, "")
	loc := th.do(alice, "POST", "/v2/team-a/app/blobs/uploads/", nil).want(t, http.StatusAccepted, "").header.Get("Location")
	ans := th.do(alice, "PATCH", loc, bytes.Repeat([]byte("b"), 30<<10), "Content-Type", "application/octet-stream").want(t, http.StatusForbidden, "DENIED")
	if got, want := ans.message(), "project team-a: quota of 64 KiB exceeded: 40 KiB used, this push adds 30 KiB"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	th.do(alice, "PATCH", loc, bytes.Repeat([]byte("b"), 20<<10), "Content-Type", "application/octet-stream").want(t, http.StatusAccepted, "")
	// A monolithic push too is refused before its body is read.
	th.pushBlob(alice, "team-a/app", bytes.Repeat([]byte("c"), 30<<10)).want(t, http.StatusForbidden, "DENIED")

	// Streamed, without a length: cut off at the 4 KiB left.
	req, _ := http.NewRequest("PATCH", th.url+loc, io.MultiReader(bytes.NewReader(bytes.Repeat([]byte("d"), 20<<10))))
	req.SetBasicAuth("alice", password)
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := th.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode < 400 {
		t.Errorf("a streamed chunk past the quota: %d", res.StatusCode)
	}
	up, err := th.h.Store().Upload(ctx, "team-a/app", loc[strings.LastIndex(loc, "/")+1:])
	if err != nil {
		t.Fatal(err)
	}
	if up.Size() > 24<<10 {
		t.Errorf("the session holds %d bytes, more than the %d the quota leaves", up.Size(), 24<<10)
	}
	// Others' uploads, and projects without quota, are not bounded.
	th.pushBlob(basic("bob", password), "team-b/app", bytes.Repeat([]byte("e"), 100<<10)).want(t, http.StatusCreated, "")
}
