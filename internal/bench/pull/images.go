package main

import (
	"context"
	"fmt"
	"math/rand/v2"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry"
	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/oci"
)

// benchImage is an image pushed to the benchmark's registry.
type benchImage struct {
	name   string // what the output calls it
	ref    string
	layers []*oci.Layer
	// compressed and uncompressed are the sizes of all layers.
	compressed, uncompressed int64
}

// block is the unit of the generated data: one random block, then one repeated block.
const block = 64 << 10

// fill fills b with data about half compressible: random blocks alternating with blocks of a
// repeated short pattern.
func fill(r *rand.ChaCha8, b []byte) {
	for off := 0; off < len(b); off += block {
		end := min(off+block, len(b))
		if (off/block)%2 == 0 {
			r.Read(b[off:end])
			continue
		}
		for i := off; i < end; i++ {
			b[i] = byte(i % 251)
		}
	}
}

// buildLayer builds a gzip layer of about compressedMB megabytes (10^6 bytes) compressed:
// files of 256 KiB to 2 MiB in a few directories. The data compresses to about 0.58: the
// repeated blocks to almost nothing, the random ones not at all, but as gzip's blocks mix
// both, it codes most random bytes with Huffman codes, which decompress byte by byte (at
// about 600 MB/s of compressed bytes per core here, as real layers do).
func buildLayer(ctx context.Context, seed uint64, compressedMB int) (*oci.Layer, int64, error) {
	r := rand.New(rand.NewPCG(seed, 1))
	cr := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 1})
	b, err := build.NewLayerBuilder()
	if err != nil {
		return nil, 0, err
	}
	// 1.78 times the target compresses to the target.
	want := int64(float64(compressedMB) * 1e6 * 1.78)
	var total int64
	for i := 0; total < want; i++ {
		n := min(int64(256<<10+r.IntN(7<<18)), want-total)
		data := make([]byte, n)
		fill(cr, data)
		name := fmt.Sprintf("/data/l%d/d%02d/f%04d", seed, i%16, i)
		if err := b.AddFile(name, 0o644, data); err != nil {
			return nil, 0, err
		}
		total += n
	}
	l, err := b.Build(ctx)
	return l, total, err
}

// buildImage builds an image of n layers of about mb megabytes each (see buildLayer) and
// pushes it to ref.
func buildImage(ctx context.Context, c *registry.Client, name, ref string, seed uint64, n, mb int) (*benchImage, error) {
	img := &benchImage{name: name, ref: ref}
	for i := range n {
		l, size, err := buildLayer(ctx, seed+uint64(i), mb)
		if err != nil {
			img.close()
			return nil, err
		}
		img.layers = append(img.layers, l)
		img.compressed += l.Descriptor().Size
		img.uncompressed += size
	}
	ri, err := oci.NewImage(img.layers, ocispec.ImageConfig{Cmd: []string{"/data"}})
	if err != nil {
		img.close()
		return nil, err
	}
	if _, err := c.Push(ctx, ref, ri); err != nil {
		img.close()
		return nil, err
	}
	return img, nil
}

func (img *benchImage) close() {
	for _, l := range img.layers {
		l.Close()
	}
}
