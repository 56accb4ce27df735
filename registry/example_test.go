package registry_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry"
)

func ExampleLayerBuilder() {
	b, err := registry.NewLayerBuilder()
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

func ExampleNewImage() {
	b, err := registry.NewLayerBuilder(registry.WithCompression(registry.Zstd))
	if err != nil {
		log.Fatal(err)
	}
	b.AddFile("app/run.sh", 0o755, []byte("#!/bin/sh\necho hi\n"))
	layer, err := b.Build(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	defer layer.Close()

	img, err := registry.NewImage([]*registry.Layer{layer}, ocispec.ImageConfig{
		Entrypoint: []string{"/bin/sh"},
		Cmd:        []string{"/app/run.sh"},
		Env:        []string{"PATH=/bin:/usr/bin"},
		WorkingDir: "/app",
	}, registry.WithPlatform(ocispec.Platform{OS: "linux", Architecture: "arm64"}))
	if err != nil {
		log.Fatal(err)
	}

	m := img.Manifest()
	fmt.Println(m.MediaType)
	fmt.Println(len(m.Layers), "layer:", m.Layers[0].MediaType)
	fmt.Println(platforms.Format(img.Platform()), img.Config().Config.Cmd)
	for _, blob := range img.Blobs() {
		fmt.Println(blob.Descriptor().MediaType)
	}
	// Output:
	// application/vnd.oci.image.manifest.v1+json
	// 1 layer: application/vnd.oci.image.layer.v1.tar+zstd
	// linux/arm64 [/app/run.sh]
	// application/vnd.oci.image.layer.v1.tar+zstd
	// application/vnd.oci.image.config.v1+json
	// application/vnd.oci.image.manifest.v1+json
}

func ExampleNewIndex() {
	b, err := registry.NewLayerBuilder()
	if err != nil {
		log.Fatal(err)
	}
	b.AddFile("README", 0o644, []byte("same files everywhere\n"))
	layer, err := b.Build(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	defer layer.Close()

	var images []*registry.Image
	for _, arch := range []string{"amd64", "arm64", "riscv64"} {
		img, err := registry.NewImage([]*registry.Layer{layer}, ocispec.ImageConfig{},
			registry.WithPlatform(ocispec.Platform{OS: "linux", Architecture: arch}))
		if err != nil {
			log.Fatal(err)
		}
		images = append(images, img)
	}
	index, err := registry.NewIndex(images)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(index.Descriptor().MediaType)
	for _, m := range index.Index().Manifests {
		fmt.Println(platforms.Format(*m.Platform))
	}
	fmt.Println(len(index.Blobs()), "blobs") // 1 layer, 3 configs, 3 manifests, the index
	// Output:
	// application/vnd.oci.image.index.v1+json
	// linux/amd64
	// linux/arm64
	// linux/riscv64
	// 8 blobs
}

func ExampleWriteLayout() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "layout-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	b, err := registry.NewLayerBuilder()
	if err != nil {
		log.Fatal(err)
	}
	b.AddFile("hello.txt", 0o644, []byte("hello\n"))
	layer, err := b.Build(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer layer.Close()
	img, err := registry.NewImage([]*registry.Layer{layer}, ocispec.ImageConfig{Cmd: []string{"cat", "/hello.txt"}})
	if err != nil {
		log.Fatal(err)
	}

	if err := registry.WriteLayout(ctx, dir, "example.com/hello:1", img); err != nil {
		log.Fatal(err)
	}
	layout, err := registry.ReadLayout(ctx, dir)
	if err != nil {
		log.Fatal(err)
	}
	for _, ref := range layout.Refs {
		read := ref.Artifact.(*registry.Image)
		fmt.Println(ref.Name, read.Descriptor().Digest == img.Descriptor().Digest, read.Config().Config.Cmd)
	}
	// Output:
	// example.com/hello:1 true [cat /hello.txt]
}
