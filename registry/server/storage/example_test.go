package storage_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/opendao/dao/registry/server/storage"
)

// An upload session as the server drives it: append, commit under the digest, link.
func ExampleOpenFS() {
	ctx := context.Background()
	root, err := os.MkdirTemp("", "store")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	st, err := storage.OpenFS(root)
	if err != nil {
		log.Fatal(err)
	}
	up, err := st.NewUpload(ctx, "team/app")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := up.Append(ctx, 0, strings.NewReader("hello, ")); err != nil {
		log.Fatal(err)
	}
	if _, err := up.Append(ctx, 0, strings.NewReader("again")); err != nil {
		fmt.Println("out of order:", err)
	}
	if _, err := up.Append(ctx, up.Size(), strings.NewReader("store")); err != nil {
		log.Fatal(err)
	}
	d := digest.FromString("hello, store")
	if err := up.Commit(ctx, d); err != nil {
		log.Fatal(err)
	}
	if err := st.LinkBlob(ctx, "team/app", d); err != nil {
		log.Fatal(err)
	}
	size, _ := st.StatBlob(ctx, d)
	linked, _ := st.BlobLinked(ctx, "team/app", d)
	fmt.Println(size, linked)
	// Output:
	// out of order: registry storage: chunk out of order: chunk at 0, the upload has 7 bytes
	// 12 true
}
