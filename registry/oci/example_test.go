package oci_test

import (
	"context"
	"fmt"
	"log"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/oci"
)

func ExampleNewImage() {
	b, err := build.NewLayerBuilder(build.WithCompression(build.Zstd))
	if err != nil {
		log.Fatal(err)
	}
	b.AddFile("app/run.sh", 0o755, []byte("#!/bin/sh\necho hi\n"))
	layer, err := b.Build(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	defer layer.Close()

	img, err := oci.NewImage([]*oci.Layer{layer}, ocispec.ImageConfig{
		Entrypoint: []string{"/bin/sh"},
		Cmd:        []string{"/app/run.sh"},
		Env:        []string{"PATH=/bin:/usr/bin"},
		WorkingDir: "/app",
	}, oci.WithPlatform(ocispec.Platform{OS: "linux", Architecture: "arm64"}))
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
	b, err := build.NewLayerBuilder()
	if err != nil {
		log.Fatal(err)
	}
	b.AddFile("README", 0o644, []byte("same files everywhere\n"))
	layer, err := b.Build(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	defer layer.Close()

	var images []*oci.Image
	for _, arch := range []string{"amd64", "arm64", "riscv64"} {
		img, err := oci.NewImage([]*oci.Layer{layer}, ocispec.ImageConfig{},
			oci.WithPlatform(ocispec.Platform{OS: "linux", Architecture: arch}))
		if err != nil {
			log.Fatal(err)
		}
		images = append(images, img)
	}
	index, err := oci.NewIndex(images)
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
