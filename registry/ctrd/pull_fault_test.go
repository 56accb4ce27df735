package ctrd_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/ctrd"
	"github.com/opendao/dao/registry/internal/regtest"
	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/registrytest"
	"github.com/opendao/dao/registry/remote"
)

// randomLayersImage builds an image of one layer per size, each a file of that many random
// bytes compressed with c.
func randomLayersImage(t *testing.T, c build.Compression, sizes ...int) *oci.Image {
	t.Helper()
	var layers []*oci.Layer
	for i, n := range sizes {
		data := make([]byte, n)
		rand.Read(data)
		b := newBuilder(t, build.WithCompression(c))
		mustAdd(t, b.AddFile(fmt.Sprintf("/data/%d", i), 0o644, data))
		layers = append(layers, mustBuild(t, b))
	}
	img, err := oci.NewImage(layers, ocispec.ImageConfig{Cmd: []string{"/data/0"}})
	if err != nil {
		t.Fatalf("NewImage: %v", err)
	}
	return img
}

// hasBlob reports whether containerd's content store has the blob.
func (e *pullEnv) hasBlob(t *testing.T, dgst digest.Digest) bool {
	t.Helper()
	_, err := e.Ctrd.Client.ContentStore().Info(e.Ctx, dgst)
	if err != nil && !errdefs.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

// hasImage reports whether containerd has an image record of name.
func (e *pullEnv) hasImage(t *testing.T, name string) bool {
	t.Helper()
	_, err := e.Ctrd.Client.ImageService().Get(e.Ctx, name)
	if err != nil && !errdefs.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

// activeSnapshots returns the keys of the active snapshots of overlayfs.
func (e *pullEnv) activeSnapshots(t *testing.T) []string {
	t.Helper()
	var keys []string
	err := e.Ctrd.Client.SnapshotService("overlayfs").Walk(e.Ctx, func(_ context.Context, info snapshots.Info) error {
		if info.Kind == snapshots.KindActive {
			keys = append(keys, info.Name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// checkNothingOf fails t if containerd has the image record, the blob, an active snapshot
// or an ingest of the blob.
func (e *pullEnv) checkNothingOf(t *testing.T, name string, blob digest.Digest) {
	t.Helper()
	if e.hasImage(t, name) {
		t.Errorf("image record %s exists after a failed pull", name)
	}
	if e.hasBlob(t, blob) {
		t.Errorf("content store has blob %s after a failed pull", blob)
	}
	if keys := e.activeSnapshots(t); len(keys) > 0 {
		t.Errorf("active snapshots left: %q", keys)
	}
	sts, err := e.Ctrd.Client.ContentStore().ListStatuses(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range sts {
		if strings.Contains(st.Ref, blob.String()) {
			t.Errorf("ingest %s of the bad blob is left (%d bytes)", st.Ref, st.Offset)
		}
	}
}

// contentPaths are the ways Pull writes layer blobs into containerd's content store, for
// tests to run each: the default (directly, when the store is local as in tests) and the
// content API.
var contentPaths = []struct{ name, content string }{{"direct", ""}, {"api", "api"}}

// forEachContentPath runs test as a subtest for each content path, with the pull option
// that chooses it.
func forEachContentPath(t *testing.T, test func(*testing.T, ctrd.Option)) {
	for _, cp := range contentPaths {
		t.Run(cp.name, func(t *testing.T) { test(t, ctrd.WithContent(cp.content, nil)) })
	}
}

// TestPullFaults pulls through a proxy that breaks the registry's answers: the pull either
// succeeds with verified content, or fails with a clear error and stores nothing bad.
func TestPullFaults(t *testing.T) {
	forEachContentPath(t, testPullFaults)
}

func testPullFaults(t *testing.T, content ctrd.Option) {
	e := newPullEnv(t)
	proxy := startFaultProxy(t, e.Reg.Addr)
	for i, tc := range []struct {
		name  string
		comp  build.Compression
		fault fault
		// wantErr is the error a failing pull matches; nil for a pull that succeeds.
		wantErr error
		wantMsg string
		// check looks at the proxy's log after a success.
		check func(t *testing.T, p *faultProxy)
	}{{
		name:  "cut mid-blob resumes with a range",
		comp:  build.Gzip,
		fault: fault{Kind: registrytest.Cut, At: 700_000, Times: 1},
		check: func(t *testing.T, p *faultProxy) {
			if r := regtest.Ranged(p.Requests()); len(r) != 1 || !strings.HasPrefix(r[0].Range, "bytes=700000-") {
				t.Errorf("ranged requests %q, want one from byte 700000", r)
			}
		},
	}, {
		name:  "stalled answer is cut and resumed",
		comp:  build.Zstd,
		fault: fault{Kind: registrytest.Stall, At: 500_000, Times: 1},
	}, {
		name:  "500s are retried",
		comp:  build.Uncompressed,
		fault: fault{Kind: registrytest.Respond, StatusCode: http.StatusInternalServerError, Times: 2},
	}, {
		name:    "flipped byte in a gzip layer fails, nothing kept",
		comp:    build.Gzip,
		fault:   fault{Kind: registrytest.Corrupt, At: 1000, Times: registrytest.Forever},
		wantErr: oci.ErrDigestMismatch,
		wantMsg: "unexpected commit digest",
	}, {
		// The tar extracts without error: only the digest tells, after the snapshot is
		// extracted, and it must go.
		name:    "flipped byte in file data of a plain tar fails, snapshot removed",
		comp:    build.Uncompressed,
		fault:   fault{Kind: registrytest.Corrupt, At: 1_500_000, Times: registrytest.Forever},
		wantErr: oci.ErrDigestMismatch,
		wantMsg: "unexpected commit digest",
	}, {
		name:    "short body is a size mismatch",
		comp:    build.Gzip,
		fault:   fault{Kind: registrytest.Truncate, At: -10, Times: registrytest.Forever},
		wantErr: oci.ErrSizeMismatch,
		wantMsg: "the descriptor says",
	}, {
		name:    "500 for ever fails",
		fault:   fault{Kind: registrytest.Respond, StatusCode: http.StatusInternalServerError, Times: registrytest.Forever},
		wantMsg: "500 Internal Server Error",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			img := randomLayersImage(t, tc.comp, 256<<10, 2<<20)
			layer := img.Layers()[1].Descriptor()
			repo := fmt.Sprintf("faults%d", i)
			e.Push(t, e.Reg.Ref(repo+":1"), img)
			proxy.Reset()
			f := tc.fault
			f.Method, f.Path = "GET", layer.Digest.String()
			proxy.MustAdd(t, f)
			ref := proxy.Ref(repo + ":1")
			c := newClient(t, []string{proxy.Addr}, remote.WithSpeedLimit(remote.SpeedLimit{Period: 300 * time.Millisecond}))
			_, err := ctrd.Pull(e.Ctx, e.Ctrd.Client, c, ref, content)
			if tc.wantErr == nil && tc.wantMsg == "" {
				if err != nil {
					t.Fatalf("Pull: %v", err)
				}
				if !e.hasBlob(t, layer.Digest) || !e.hasImage(t, ref) {
					t.Fatalf("pulled image or layer missing")
				}
				if tc.check != nil {
					tc.check(t, proxy)
				}
				e.checkNoIngests(t, e.contentRoot(t))
				return
			}
			if err == nil {
				t.Fatalf("Pull succeeded, want an error with %q", tc.wantMsg)
			}
			t.Logf("Pull: %v", err)
			if !strings.Contains(err.Error(), tc.wantMsg) || !strings.Contains(err.Error(), layer.Digest.String()) {
				t.Errorf("Pull: %v, want an error with %q naming %s", err, tc.wantMsg, layer.Digest)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Pull: %v, want %v", err, tc.wantErr)
			}
			e.checkNothingOf(t, ref, layer.Digest)
			e.checkNoStrayIngests(t, e.contentRoot(t))
		})
	}
}

// TestPullCancelThenResume cancels a pull in the middle of its last layer: no image record
// is left, and the next pull fetches only the rest of that layer, resuming the ingest where
// it stopped, and reuses every blob and unpacked layer the first one committed.
func TestPullCancelThenResume(t *testing.T) {
	forEachContentPath(t, testPullCancelThenResume)
}

func testPullCancelThenResume(t *testing.T, content ctrd.Option) {
	e := newPullEnv(t)
	img, big, proxy, ref := e.slowLastLayer(t, "resume:1")

	ctx, cancel := context.WithCancel(e.Ctx)
	defer cancel()
	var cancelled atomic.Bool
	c := newClient(t, []string{proxy.Addr}, remote.WithProgress(func(p remote.Progress) {
		if p.Descriptor.Digest == big.Digest && p.Done >= big.Size/2 && !cancelled.Swap(true) {
			cancel()
		}
	}))
	_, err := ctrd.Pull(ctx, e.Ctrd.Client, c, ref, ctrd.WithConcurrency(1), content)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Pull = %v, want context.Canceled", err)
	}
	if e.hasImage(t, ref) {
		t.Fatalf("image record exists after a cancelled pull")
	}
	if keys := e.activeSnapshots(t); len(keys) > 0 {
		t.Errorf("active snapshots left: %q", keys)
	}
	var partial int64
	sts, _ := e.Ctrd.Client.ContentStore().ListStatuses(e.Ctx)
	for _, st := range sts {
		if strings.Contains(st.Ref, big.Digest.String()) {
			partial = st.Offset
		}
	}
	if partial == 0 || partial >= big.Size {
		t.Fatalf("partial ingest of the big layer holds %d bytes, want some of %d", partial, big.Size)
	}
	// What the cancelled pull committed is kept under a lease of its own: it survives a
	// garbage collection (which deleting a lease synchronously runs).
	ls := e.Ctrd.Client.LeasesService()
	all, err := ls.List(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].Labels["dao.registry/kept-for"] != ref {
		t.Errorf("leases after the cancelled pull: %+v, want one kept for %s", all, ref)
	}
	gc, err := ls.Create(e.Ctx, leases.WithRandomID())
	if err != nil {
		t.Fatal(err)
	}
	if err := ls.Delete(e.Ctx, gc, leases.SynchronousDelete); err != nil {
		t.Fatal(err)
	}
	for _, l := range img.Layers()[:2] {
		if !e.hasBlob(t, l.Descriptor().Digest) {
			t.Errorf("small layer %s, committed by the cancelled pull, is gone", l.Descriptor().Digest)
		}
	}

	proxy.Reset()
	rec, err := ctrd.Pull(e.Ctx, e.Ctrd.Client, newClient(t, []string{proxy.Addr}), ref, content)
	if err != nil {
		t.Fatalf("second Pull: %v", err)
	}
	blobGets := proxy.Find("GET", "/v2/resume/blobs/")
	if len(blobGets) != 1 || !strings.Contains(blobGets[0].Path, big.Digest.String()) || !strings.HasPrefix(blobGets[0].Range, fmt.Sprintf("bytes=%d-", partial)) {
		t.Errorf("second pull's blob requests %q, want only the big layer from byte %d", blobGets, partial)
	}
	if rec.Target.Digest != img.Descriptor().Digest {
		t.Errorf("record target %s, want %s", rec.Target.Digest, img.Descriptor().Digest)
	}
	if keys := e.activeSnapshots(t); len(keys) > 0 {
		t.Errorf("active snapshots left: %q", keys)
	}
	checkNoLeases(t, e)
}

// TestPullBodyFaults pulls into containerd through a proxy that breaks the body of the
// manifest or the config once (a reset, a stall after the headers), and through a mirror
// that trickles layers at 20 bytes a second: the pull asks again, or leaves the mirror for
// the registry, and succeeds in seconds.
func TestPullBodyFaults(t *testing.T) {
	forEachContentPath(t, testPullBodyFaults)
}

func testPullBodyFaults(t *testing.T, content ctrd.Option) {
	e := newPullEnv(t)
	proxy := startFaultProxy(t, e.Reg.Addr)
	for i, tc := range []struct {
		name string
		// match is "manifest", "config" or "layer": what the fault spoils.
		match  string
		fault  fault
		mirror bool // the proxy is a mirror of the registry, not the registry
	}{
		{name: "manifest reset once", match: "manifest", fault: fault{Kind: registrytest.Cut, At: 20, Times: 1}},
		{name: "manifest stalls once", match: "manifest", fault: fault{Kind: registrytest.Stall, At: 20, Times: 1}},
		{name: "config reset once", match: "config", fault: fault{Kind: registrytest.Cut, At: 20, Times: 1}},
		{name: "config stalls once", match: "config", fault: fault{Kind: registrytest.Stall, At: 20, Times: 1}},
		{name: "slow mirror of layers", match: "layer", fault: fault{Kind: registrytest.Slow, BytesPerSecond: 20, At: 1000, Times: registrytest.Forever}, mirror: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := randomLayersImage(t, build.Gzip, 256<<10, 1<<20)
			repo := fmt.Sprintf("bodyfaults%d", i)
			e.Push(t, e.Reg.Ref(repo+":1"), img)
			proxy.Reset()
			f := tc.fault
			f.Method = "GET"
			switch tc.match {
			case "manifest":
				f.Path = "/manifests/"
			case "config":
				f.Path = img.Manifest().Config.Digest.String()
			case "layer":
				f.Path = "/blobs/"
			}
			proxy.MustAdd(t, f)
			ref := proxy.Ref(repo + ":1")
			c := newClient(t, []string{proxy.Addr}, watchdog)
			if tc.mirror {
				ref = e.Reg.Ref(repo + ":1")
				c = newClient(t, nil, watchdog, remote.WithHosts(map[string]remote.HostConfig{
					e.Reg.Addr: {PlainHTTP: true, Mirrors: []remote.Mirror{{URL: "http://" + proxy.Addr}}},
				}))
			}
			ctx, cancel := context.WithTimeout(e.Ctx, time.Minute)
			defer cancel()
			start := time.Now()
			_, err := ctrd.Pull(ctx, e.Ctrd.Client, c, ref, content)
			if took := time.Since(start); took > 15*time.Second {
				t.Errorf("Pull took %v", took)
			}
			if err != nil {
				t.Fatalf("Pull: %v", err)
			}
			if !e.hasImage(t, ref) {
				t.Fatalf("no image record after the pull")
			}
			if proxy.Count("", f.Path) < 2 && !tc.mirror {
				t.Errorf("%d requests of %s, want it asked again", proxy.Count("", f.Path), f.Path)
			}
		})
	}
}
