package remote_test

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/opendao/dao/registry/remote"
)

// TestClientLeavesNothingRunning makes clients, has each resolve, fetch (a shared, ranged
// download and a stream) and copy, and closes them: no goroutine of theirs is left, idle
// connections included. It does not run in parallel, so that other tests' goroutines do not
// count.
func TestClientLeavesNothingRunning(t *testing.T) {
	reg := startRegistry(t)
	ctx := context.Background()
	img := randomImage(t, 3<<20, "amd64")
	setup := newClient(t, []string{reg.Addr})
	if _, err := setup.Push(ctx, reg.Ref("app:1"), img); err != nil {
		t.Fatal(err)
	}
	setup.Close()
	layer := img.Layers()[0].Descriptor()

	ignore := goleak.IgnoreCurrent()
	for i := range 20 {
		c, err := remote.NewClient(plainHTTP(reg.Addr), remote.WithRangeDownload(1<<20, 3))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Resolve(ctx, reg.Ref("app:1")); err != nil {
			t.Fatalf("round %d: Resolve: %v", i, err)
		}
		if _, err := fetchAll(ctx, c, reg.Ref("app"), layer); err != nil {
			t.Fatalf("round %d: FetchBlob: %v", i, err)
		}
		s, err := c.StreamBlob(ctx, reg.Ref("app"), layer, layer.Size/2)
		if err != nil {
			t.Fatalf("round %d: StreamBlob: %v", i, err)
		}
		s.Close() // before its end: the answer being read is closed too
		if _, err := c.Copy(ctx, reg.Ref("app:1"), reg.Ref("copy:1")); err != nil {
			t.Fatalf("round %d: Copy: %v", i, err)
		}
		if err := c.Close(); err != nil {
			t.Fatalf("round %d: Close: %v", i, err)
		}
	}
	goleak.VerifyNone(t, ignore)
}
