package remote_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/opendao/dao/registry/remote"
)

// BenchmarkFetchBlob fetches a 64 MiB layer from a local docker-registry in one request and
// in parallel ranges, and 8 concurrent fetches of it that share one download.
func BenchmarkFetchBlob(b *testing.B) {
	reg := startRegistry(b)
	ctx := context.Background()
	img := randomImage(b, 64<<20, "amd64")
	if _, err := newClient(b, []string{reg.Addr}).Push(ctx, reg.Ref("app:1"), img); err != nil {
		b.Fatal(err)
	}
	layer := img.Layers()[0].Descriptor()
	b.Run("plain-http-get", func(b *testing.B) { // the baseline: no verification, no spool
		b.SetBytes(layer.Size)
		for i := 0; i < b.N; i++ {
			resp, err := http.Get("http://" + reg.Addr + "/v2/app/blobs/" + layer.Digest.String())
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	for _, parallel := range []int{1, 4, 8} {
		b.Run(fmt.Sprintf("ranges=%d", parallel), func(b *testing.B) {
			c := newClient(b, []string{reg.Addr}, remote.WithRangeDownload(8<<20, parallel))
			b.SetBytes(layer.Size)
			for i := 0; i < b.N; i++ {
				rc, err := c.FetchBlob(ctx, reg.Ref("app"), layer)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, rc); err != nil {
					b.Fatal(err)
				}
				rc.Close()
			}
		})
	}
}
