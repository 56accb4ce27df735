package remote_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/registrytest"
	"github.com/opendao/dao/registry/remote"
)

// watchdog is the speed limit of the tests: a body that brings less than 64 KiB/s over
// 200ms, or nothing, is cut.
var watchdog = remote.WithSpeedLimit(remote.SpeedLimit{BytesPerSecond: 64 << 10, Period: 200 * time.Millisecond})

// TestDocumentBodyFaults breaks the body of manifests, indexes and tag lists once, or for
// ever: a reset, a short body, a stall after the headers, a trickle. The client must ask
// again and succeed, or fail with a clear error, in seconds either way, not hang until the
// caller's context ends.
func TestDocumentBodyFaults(t *testing.T) {
	t.Parallel()
	reg, proxy := startMemRegistry(t)
	ctx := context.Background()
	amd, arm := randomImage(t, 64<<10, "amd64"), randomImage(t, 64<<10, "arm64")
	ix, err := oci.NewIndex([]*oci.Image{amd, arm})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newClient(t, []string{reg.Addr}).Push(ctx, reg.Ref("app:1"), ix); err != nil {
		t.Fatal(err)
	}
	child := ix.Descriptor()
	child.Digest, child.Size, child.MediaType = amd.Descriptor().Digest, amd.Descriptor().Size, amd.Descriptor().MediaType

	ops := map[string]func(ctx context.Context, c *remote.Client) error{
		"Manifest": func(ctx context.Context, c *remote.Client) error {
			m, err := c.Manifest(ctx, proxy.Ref("app:1"))
			if err == nil && m.Descriptor.Digest != ix.Descriptor().Digest {
				t.Errorf("Manifest: digest %s, want %s", m.Descriptor.Digest, ix.Descriptor().Digest)
			}
			return err
		},
		"FetchManifest": func(ctx context.Context, c *remote.Client) error {
			_, err := c.FetchManifest(ctx, proxy.Ref("app"), child)
			return err
		},
		"PullLayout": func(ctx context.Context, c *remote.Client) error {
			_, err := c.PullLayout(ctx, proxy.Ref("app:1"), t.TempDir())
			return err
		},
		"Tags": func(ctx context.Context, c *remote.Client) error {
			tags, err := c.Tags(ctx, proxy.Ref("app"))
			if err == nil && (len(tags) != 1 || tags[0] != "1") {
				t.Errorf("Tags = %q, want [1]", tags)
			}
			return err
		},
	}
	for _, tc := range []struct {
		name  string
		fault fault
		// wantMsg is part of the error of an operation that must fail; "" for success.
		wantMsg string
		wantErr error
	}{
		{name: "reset once", fault: fault{Kind: registrytest.Cut, At: 5, Times: 1}},
		{name: "reset twice", fault: fault{Kind: registrytest.Cut, At: 0, Times: 2}},
		{name: "stall after the headers once", fault: fault{Kind: registrytest.Stall, At: 10, Times: 1}},
		{name: "trickle once", fault: fault{Kind: registrytest.Slow, BytesPerSecond: 20, At: 10, Times: 1}},
		{name: "reset for ever", fault: fault{Kind: registrytest.Cut, At: 5, Times: registrytest.Forever}, wantMsg: "unexpected EOF (attempt 5 of 5)"},
		{name: "stall for ever", fault: fault{Kind: registrytest.Stall, At: 10, Times: registrytest.Forever}, wantMsg: "10 bytes in 200ms, less than the 65536 bytes/s allowed (attempt 5 of 5)"},
		{name: "silent for ever", fault: fault{Kind: registrytest.Stall, At: 0, Times: registrytest.Forever}, wantMsg: "no byte for 200ms (attempt 5 of 5)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for op, run := range ops {
				if tc.wantMsg != "" && op != "Manifest" && op != "Tags" {
					continue // failing for ever takes the same path
				}
				match := "/manifests/"
				if op == "Tags" {
					match = "/tags/list"
				}
				proxy.Reset()
				f := tc.fault
				f.Method, f.Path = "GET", match
				proxy.MustAdd(t, f)
				c := newClient(t, []string{proxy.Addr}, watchdog)
				// The deadline is far; the faults must be dealt with long before.
				ctx, cancel := context.WithTimeout(ctx, time.Minute)
				start := time.Now()
				err := run(ctx, c)
				took := time.Since(start)
				cancel()
				if took > 15*time.Second {
					t.Errorf("%s took %v: the fault was left to the context's deadline", op, took)
				}
				if tc.wantMsg == "" {
					if err != nil {
						t.Errorf("%s: %v", op, err)
					}
					if got := proxy.Count("", match); got < 2 {
						t.Errorf("%s: %d requests of %s, want it asked again", op, got, match)
					}
					continue
				}
				if err == nil || !strings.Contains(err.Error(), tc.wantMsg) || errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("%s: %v, want an error with %q", op, err, tc.wantMsg)
				}
			}
		})
	}
}

// TestShortManifestBodyIsRetried serves a manifest by digest shorter than its descriptor
// once: the client asks again.
func TestShortManifestBodyIsRetried(t *testing.T) {
	t.Parallel()
	reg, proxy := startMemRegistry(t)
	ctx := context.Background()
	img := randomImage(t, 64<<10, "amd64")
	if _, err := newClient(t, []string{reg.Addr}).Push(ctx, reg.Ref("app:1"), img); err != nil {
		t.Fatal(err)
	}
	proxy.MustAdd(t, fault{Kind: registrytest.Truncate, At: -10, Method: "GET", Path: "/manifests/", Times: 1})
	c := newClient(t, []string{proxy.Addr})
	if _, err := c.FetchManifest(ctx, proxy.Ref("app"), img.Descriptor()); err != nil {
		t.Fatalf("FetchManifest: %v", err)
	}
	proxy.Reset()
	proxy.MustAdd(t, fault{Kind: registrytest.Truncate, At: -10, Method: "GET", Path: "/manifests/", Times: registrytest.Forever})
	_, err := c.FetchManifest(ctx, proxy.Ref("app"), img.Descriptor())
	if !errors.Is(err, oci.ErrSizeMismatch) || !strings.Contains(err.Error(), "attempt 5 of 5") {
		t.Errorf("FetchManifest of a manifest always short: %v, want ErrSizeMismatch after 5 attempts", err)
	}
}

// TestSlowMirrorIsLeftForTheNext puts a mirror in front of the registry that trickles
// blobs and manifests at 20 bytes a second: the client cuts it and gets them from the
// registry, in seconds, with FetchBlob and PullLayout.
func TestSlowMirrorIsLeftForTheNext(t *testing.T) {
	t.Parallel()
	reg, mirror := startMemRegistry(t)
	ctx := context.Background()
	img := randomImage(t, 1<<20, "amd64")
	if _, err := newClient(t, []string{reg.Addr}).Push(ctx, reg.Ref("app:1"), img); err != nil {
		t.Fatal(err)
	}
	layer := img.Layers()[0].Descriptor()
	want := layerBytes(t, img)
	for _, match := range []string{"/blobs/", "/manifests/"} {
		mirror.MustAdd(t, fault{Kind: registrytest.Slow, BytesPerSecond: 20, Method: "GET", Path: match, At: 1000, Times: registrytest.Forever})
	}
	c := newClient(t, nil, watchdog, remote.WithHosts(map[string]remote.HostConfig{
		reg.Addr: {PlainHTTP: true, Mirrors: []remote.Mirror{{URL: "http://" + mirror.Addr}}},
	}))
	for _, op := range []string{"FetchBlob", "PullLayout"} {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		start := time.Now()
		var err error
		switch op {
		case "FetchBlob":
			var got []byte
			got, err = fetchAll(ctx, c, reg.Ref("app"), layer)
			if err == nil && string(got) != string(want) {
				t.Errorf("FetchBlob: content differs")
			}
		case "PullLayout":
			_, err = c.PullLayout(ctx, reg.Ref("app:1"), t.TempDir())
		}
		cancel()
		if err != nil {
			t.Errorf("%s: %v", op, err)
		}
		if took := time.Since(start); took > 15*time.Second {
			t.Errorf("%s took %v with a slow mirror", op, took)
		}
	}
	if mirror.Count("", "/blobs/") == 0 {
		t.Errorf("the mirror was not asked: the test tests nothing")
	}
}
