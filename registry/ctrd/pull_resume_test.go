package ctrd_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/containerd/containerd/v2/client"
	"github.com/opencontainers/go-digest"

	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/ctrd"
	"github.com/opendao/dao/registry/registrytest"
	"github.com/opendao/dao/registry/remote"
)

// countingTransport counts the bytes of the bodies of blob answers that it carries.
type countingTransport struct {
	rt http.RoundTripper
	n  atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(r)
	if err == nil && strings.Contains(r.URL.Path, "/blobs/") {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &c.n}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// TestPullCancelResumesEveryLayer cancels a pull (as Ctrl-C does) while several layers are
// half fetched at once: each keeps what it fetched, to the last byte read, and the next pull asks each for the rest
// only, with a Range from where its ingest stopped, fetches fewer bytes than the layers
// hold, and unpacks an image whose every layer has its digest.
func TestPullCancelResumesEveryLayer(t *testing.T) {
	forEachContentPath(t, testPullCancelResumesEveryLayer)
}

func testPullCancelResumesEveryLayer(t *testing.T, content ctrd.Option) {
	e := newPullEnv(t)
	img := randomLayersImage(t, build.Gzip, 4<<20, 4<<20, 4<<20)
	e.Push(t, e.Reg.Ref("resumeall:1"), img)
	proxy := startFaultProxy(t, e.Reg.Addr)
	var total int64
	for _, l := range img.Layers() {
		d := l.Descriptor()
		total += d.Size
		proxy.MustAdd(t, fault{Kind: registrytest.Slow, Method: "GET", Path: d.Digest.String(), At: 256 << 10, BytesPerSecond: 2 << 20, Times: registrytest.Forever})
	}
	ref := proxy.Ref("resumeall:1")

	ctx, cancel := context.WithCancel(e.Ctx)
	defer cancel()
	var mu sync.Mutex
	done := map[digest.Digest]int64{}
	var read int64 // the bytes of layers read when the pull was cancelled
	c := newClient(t, []string{proxy.Addr}, remote.WithProgress(func(p remote.Progress) {
		mu.Lock()
		defer mu.Unlock()
		done[p.Descriptor.Digest] = p.Done
		half := 0
		for _, l := range img.Layers() {
			if done[l.Descriptor().Digest] >= 1<<20 {
				half++
			}
		}
		if half == len(img.Layers()) && read == 0 {
			for _, l := range img.Layers() {
				read += done[l.Descriptor().Digest]
			}
			cancel()
		}
	}))
	_, err := ctrd.Pull(ctx, e.Ctrd.Client, c, ref, ctrd.WithConcurrency(3), content)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Pull = %v, want context.Canceled", err)
	}
	partial := map[digest.Digest]int64{}
	sts, err := e.Ctrd.Client.ContentStore().ListStatuses(e.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range sts {
		for _, l := range img.Layers() {
			if strings.Contains(st.Ref, l.Descriptor().Digest.String()) {
				partial[l.Descriptor().Digest] = st.Offset
			}
		}
	}
	for _, l := range img.Layers() {
		d := l.Descriptor()
		if n := partial[d.Digest]; n == 0 || n >= d.Size {
			t.Errorf("partial ingest of layer %s holds %d bytes, want some of %d", d.Digest, n, d.Size)
		}
	}

	var kept int64
	for _, n := range partial {
		kept += n
	}
	if kept < read {
		t.Errorf("the cancelled pull kept %d bytes of layers, less than the %d it had read", kept, read)
	}

	proxy.Reset()
	ct := &countingTransport{rt: http.DefaultTransport.(*http.Transport).Clone()}
	rec, err := ctrd.Pull(e.Ctx, e.Ctrd.Client, newClient(t, []string{proxy.Addr}, remote.WithHTTPClient(&http.Client{Transport: ct})), ref, content)
	if err != nil {
		t.Fatalf("second Pull: %v", err)
	}
	for _, l := range img.Layers() {
		d := l.Descriptor()
		gets := proxy.Find("GET", d.Digest.String())
		if len(gets) != 1 || !strings.HasPrefix(gets[0].Range, "bytes="+strconv.FormatInt(partial[d.Digest], 10)+"-") {
			t.Errorf("second pull's requests of layer %s: %q, want one from byte %d", d.Digest, gets, partial[d.Digest])
		}
	}
	if got, want := ct.n.Load(), total-kept; got != want {
		t.Errorf("second pull fetched %d bytes of layers, want %d (%d of %d were kept)", got, want, kept, total)
	}
	t.Logf("layers of %d bytes: the cancelled pull kept %d, the second fetched %d", total, kept, ct.n.Load())
	checkImageWhole(t, e, ref)
	if ok, err := client.NewImage(e.Ctrd.Client, rec).IsUnpacked(e.Ctx, "overlayfs"); !ok || err != nil {
		t.Errorf("IsUnpacked = %v, %v; want true", ok, err)
	}
	checkNoLeases(t, e)
}
