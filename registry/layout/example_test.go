package layout_test

import (
	"context"
	"fmt"
	"log"
	"os"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/layout"
	"github.com/opendao/dao/registry/oci"
)

func ExampleWrite() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "layout-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	b, err := build.NewLayerBuilder()
	if err != nil {
		log.Fatal(err)
	}
	b.AddFile("hello.txt", 0o644, []byte("hello\n"))
	layer, err := b.Build(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer layer.Close()
	img, err := oci.NewImage([]*oci.Layer{layer}, ocispec.ImageConfig{Cmd: []string{"cat", "/hello.txt"}})
	if err != nil {
		log.Fatal(err)
	}

	if err := layout.Write(ctx, dir, "example.com/hello:1", img); err != nil {
		log.Fatal(err)
	}
	layout, err := layout.Read(ctx, dir)
	if err != nil {
		log.Fatal(err)
	}
	for _, ref := range layout.Entries {
		read := ref.Artifact.(*oci.Image)
		fmt.Println(ref.Name, read.Descriptor().Digest == img.Descriptor().Digest, read.Config().Config.Cmd)
	}
	// Output:
	// example.com/hello:1 true [cat /hello.txt]
}
