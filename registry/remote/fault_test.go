package remote_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/internal/regtest"
	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/registrytest"
	"github.com/opendao/dao/registry/remote"
)

// TestFaults pulls through a proxy that breaks the registry's answers: the pull either
// succeeds with verified content or fails with a clear error, and never stores bad content.
// The registry is registrytest's, in memory, as in the other tests of faults.
func TestFaults(t *testing.T) {
	t.Parallel()
	reg, proxy := startMemRegistry(t)
	ctx := context.Background()
	img := randomImage(t, 2<<20, "amd64")
	if _, err := newClient(t, []string{reg.Addr}).Push(ctx, reg.Ref("app:1"), img); err != nil {
		t.Fatal(err)
	}
	layer := img.Layers()[0].Descriptor()
	want := layerBytes(t, img)

	for _, tc := range []struct {
		name  string
		fault fault
		opts  []remote.Option
		// wantErr is the error a failing pull matches; nil for a pull that succeeds.
		wantErr error
		// wantMsg is part of the failure's message.
		wantMsg string
		// check looks at the proxy's log and the clock's sleeps after a success.
		check func(t *testing.T, p *faultProxy, clk *fakeClock)
	}{{
		name:  "connection cut mid-blob resumes with a range",
		fault: fault{Kind: registrytest.Cut, At: 700_000, Times: 1},
		check: func(t *testing.T, p *faultProxy, _ *fakeClock) {
			if r := regtest.Ranged(p.Requests()); len(r) != 1 || r[0].Range == "bytes=0-" {
				t.Errorf("ranged requests %q, want one that resumes past byte 0", r)
			}
		},
	}, {
		name:  "429 with Retry-After is honoured in full",
		fault: fault{Kind: registrytest.Respond, StatusCode: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"3"}}, Times: 2},
		check: func(t *testing.T, _ *faultProxy, clk *fakeClock) {
			long := 0
			for _, d := range clk.sleeps() {
				if d >= 3*time.Second {
					long++
				}
			}
			if long != 2 {
				t.Errorf("sleeps %v, want two of at least 3s", clk.sleeps())
			}
		},
	}, {
		name:  "500s are retried with backoff",
		fault: fault{Kind: registrytest.Respond, StatusCode: http.StatusInternalServerError, Times: 3},
		check: func(t *testing.T, _ *faultProxy, clk *fakeClock) {
			if got := len(clk.sleeps()); got != 3 {
				t.Errorf("%d sleeps (%v), want 3", got, clk.sleeps())
			}
		},
	}, {
		name:  "stalled connection is cut and resumed",
		fault: fault{Kind: registrytest.Stall, At: 500_000, Times: 1},
	}, {
		name:  "parallel ranges survive a cut",
		fault: fault{Kind: registrytest.Cut, At: 100_000, Times: 1},
		opts:  []remote.Option{remote.WithRangeDownload(256<<10, 4)},
		check: func(t *testing.T, p *faultProxy, _ *fakeClock) {
			if r := regtest.Ranged(p.Requests()); len(r) < 9 {
				t.Errorf("%d ranged requests, want at least 9 (8 chunks and a resume)", len(r))
			}
		},
	}, {
		name:    "500 for ever fails",
		fault:   fault{Kind: registrytest.Respond, StatusCode: http.StatusInternalServerError, Times: registrytest.Forever},
		wantMsg: "500 Internal Server Error",
	}, {
		name:    "flipped byte is a digest mismatch",
		fault:   fault{Kind: registrytest.Corrupt, At: 1000, Times: registrytest.Forever},
		wantErr: oci.ErrDigestMismatch,
		wantMsg: "content has digest",
	}, {
		name:    "short body is a size mismatch",
		fault:   fault{Kind: registrytest.Truncate, At: -10, Times: registrytest.Forever},
		wantErr: oci.ErrSizeMismatch,
		wantMsg: "the descriptor says",
	}, {
		name:    "cut at the first byte every time gives up",
		fault:   fault{Kind: registrytest.Cut, At: 0, Times: registrytest.Forever},
		wantMsg: "broke 5 times in a row",
	}, {
		name:    "Retry-After beyond the limit fails at once",
		fault:   fault{Kind: registrytest.Respond, StatusCode: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"3600"}}, Times: registrytest.Forever},
		wantErr: remote.ErrTooManyRequests,
		wantMsg: "asks to wait 1h0m0s",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			for _, op := range []string{"FetchBlob", "PullLayout"} {
				proxy.Reset()
				f := tc.fault
				f.Method, f.Path = "GET", layer.Digest.String()
				proxy.MustAdd(t, f)
				clk := newFakeClock()
				c := newClient(t, []string{proxy.Addr}, append([]remote.Option{
					remote.WithClock(clk),
					remote.WithRetry(remote.RetryPolicy{MaxAttempts: 5, MinDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond, MaxRetryAfter: time.Minute}),
					remote.WithSpeedLimit(remote.SpeedLimit{Period: 300 * time.Millisecond}),
				}, tc.opts...)...)
				var got []byte
				var err error
				dir := t.TempDir()
				switch op {
				case "FetchBlob":
					got, err = fetchAll(ctx, c, proxy.Ref("app"), layer)
				case "PullLayout":
					_, err = c.PullLayout(ctx, proxy.Ref("app:1"), dir)
				}
				checkLayoutBlobs(t, dir)
				if tc.wantMsg == "" {
					if err != nil {
						t.Fatalf("%s: %v", op, err)
					}
					if op == "FetchBlob" && string(got) != string(want) {
						t.Fatalf("%s: content differs", op)
					}
					if tc.check != nil {
						tc.check(t, proxy, clk)
					}
					continue
				}
				if err == nil {
					t.Fatalf("%s succeeded, want an error with %q", op, tc.wantMsg)
				}
				if !strings.Contains(err.Error(), tc.wantMsg) {
					t.Errorf("%s: %v, want an error with %q", op, err, tc.wantMsg)
				}
				t.Logf("%s: %v", op, err)
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Errorf("%s: %v, want %v", op, err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), layer.Digest.String()) && op == "FetchBlob" {
					t.Errorf("%s: %v does not name the blob", op, err)
				}
				if _, serr := os.Stat(filepath.Join(dir, "blobs", "sha256", layer.Digest.Encoded())); serr == nil {
					t.Errorf("%s: the layout holds the layer after a failed pull", op)
				}
			}
		})
	}
}

// fetchAll reads a blob with FetchBlob; it returns what was read and the first error.
func fetchAll(ctx context.Context, c *remote.Client, repo string, desc ocispec.Descriptor) ([]byte, error) {
	rc, err := c.FetchBlob(ctx, repo, desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// checkLayoutBlobs fails t if a blob file of the layout in dir does not have the digest its
// name says.
func checkLayoutBlobs(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(filepath.Join(dir, "blobs", "sha256"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Error(err)
			return nil
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != d.Name() && !strings.HasPrefix(d.Name(), ".tmp-") {
			t.Errorf("layout blob %s has digest sha256:%s", d.Name(), got)
		}
		return nil
	})
}

// TestConcurrentFetchesShareOneDownload fetches one blob from many goroutines at once.
func TestConcurrentFetchesShareOneDownload(t *testing.T) {
	t.Parallel()
	reg, proxy := startMemRegistry(t)
	ctx := context.Background()
	img := randomImage(t, 3<<20, "amd64")
	if _, err := newClient(t, []string{reg.Addr}).Push(ctx, reg.Ref("app:1"), img); err != nil {
		t.Fatal(err)
	}
	layer := img.Layers()[0].Descriptor()
	want := layerBytes(t, img)
	proxy.MustAdd(t, fault{Kind: registrytest.Delay, Method: "GET", Path: layer.Digest.String(), Times: registrytest.Forever})
	c := newClient(t, []string{proxy.Addr})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := fetchAll(ctx, c, proxy.Ref("app"), layer)
			if err != nil || string(got) != string(want) {
				t.Errorf("FetchBlob: %v (content equal: %v)", err, string(got) == string(want))
			}
		}()
	}
	wg.Wait()
	if got := proxy.Find("GET", "/v2/app/blobs/"+layer.Digest.String()); len(got) != 1 {
		t.Errorf("%d blob requests for 8 concurrent fetches, want 1: %q", len(got), got)
	}
}
