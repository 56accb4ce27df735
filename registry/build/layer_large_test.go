package build_test

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/opendao/dao/registry/build"
)

// A large layer is streamed to disk: building it allocates far less than its size.
func TestLargeLayerIsStreamed(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 200 MiB layer")
	}
	const size = 200 << 20
	host := filepath.Join(t.TempDir(), "big")
	f, err := os.Create(host)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: cheap to create, and zeros compress fast.
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()

	for _, c := range []build.Compression{build.Gzip, build.Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			b := newBuilder(t, build.WithCompression(c))
			mustAdd(t, b.AddHostFile("data/big", host))
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			l := mustBuild(t, b)
			runtime.ReadMemStats(&after)
			got, limit := after.TotalAlloc-before.TotalAlloc, uint64(32<<20)
			t.Logf("allocated %.1f MiB for a %d MiB layer of %d bytes", float64(got)/(1<<20), size>>20, l.Descriptor().Size)
			if got > limit {
				t.Errorf("building a %d MiB layer allocated %d MiB, want at most %d MiB", size>>20, got>>20, limit>>20)
			}
			if l.Descriptor().Size >= size {
				t.Errorf("compressed size %d is not below %d", l.Descriptor().Size, size)
			}
		})
	}
}
