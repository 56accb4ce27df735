package gc_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/opendao/dao/registry/server/gc"
	"github.com/opendao/dao/registry/server/storage"
)

// A blob uploaded and never referenced by a manifest is deleted once the grace period has
// passed; an upload session left open past its TTL is cancelled.
func ExampleCollect() {
	dir, _ := os.MkdirTemp("", "gc-example-")
	defer os.RemoveAll(dir)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st, _ := storage.OpenFS(dir, storage.WithClock(clock))
	ctx := context.Background()

	up, _ := st.NewUpload(ctx, "team/app")
	up.Append(ctx, 0, strings.NewReader("a layer whose manifest never came"))
	up.Commit(ctx, digest.FromString("a layer whose manifest never came"))
	st.NewUpload(ctx, "team/app") // abandoned

	opts := []gc.Option{gc.WithClock(clock), gc.WithGrace(time.Hour), gc.WithUploadTTL(24 * time.Hour)}
	rep, _ := gc.Collect(ctx, st, opts...)
	fmt.Println("at once:", rep.BlobsDeleted, "deleted,", rep.BlobsKept, "kept,", rep.UploadsCancelled, "cancelled")

	now = now.Add(25 * time.Hour)
	rep, _ = gc.Collect(ctx, st, opts...)
	fmt.Println("a day later:", rep.BlobsDeleted, "deleted,", rep.BlobsKept, "kept,", rep.UploadsCancelled, "cancelled")
	// Output:
	// at once: 0 deleted, 1 kept, 0 cancelled
	// a day later: 1 deleted, 0 kept, 1 cancelled
}
