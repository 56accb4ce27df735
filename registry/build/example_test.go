package build_test

import (
	"context"
	"fmt"
	"log"

	"github.com/opendao/dao/registry/build"
)

func ExampleLayerBuilder() {
	b, err := build.NewLayerBuilder()
	if err != nil {
		log.Fatal(err)
	}
	b.AddFile("/etc/motd", 0o644, []byte("hello\n"))
	b.AddSymlink("etc/issue", "motd")
	b.AddDir("tmp", 0o777)
	layer, err := b.Build(context.Background()) // reports the first error of the Adds
	if err != nil {
		log.Fatal(err)
	}
	defer layer.Close()

	fmt.Println(layer.Descriptor().MediaType)
	fmt.Println(layer.Descriptor().Digest != layer.DiffID()) // compressed and uncompressed differ
	// Output:
	// application/vnd.oci.image.layer.v1.tar+gzip
	// true
}
