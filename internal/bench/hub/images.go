package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/remote"
)

// benchImage is one of the pull benchmark's images (internal/bench/pull builds the same
// ones, with the same seeds): layers of files about half compressible, gzip-compressed by
// Dao's image builder.
type benchImage struct {
	name       string
	img        *oci.Image
	layers     []*oci.Layer
	compressed int64
}

// block is the unit of the generated data: one random block, then one repeated block.
const block = 64 << 10

// fill fills b with data about half compressible, as internal/bench/pull does.
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

// buildLayer builds a gzip layer of about compressedMB megabytes compressed, as
// internal/bench/pull's buildLayer does.
func buildLayer(ctx context.Context, seed uint64, compressedMB int) (*oci.Layer, error) {
	r := rand.New(rand.NewPCG(seed, 1))
	cr := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 1})
	b, err := build.NewLayerBuilder()
	if err != nil {
		return nil, err
	}
	want := int64(float64(compressedMB) * 1e6 * 1.78)
	var total int64
	for i := 0; total < want; i++ {
		n := min(int64(256<<10+r.IntN(7<<18)), want-total)
		data := make([]byte, n)
		fill(cr, data)
		name := fmt.Sprintf("/data/l%d/d%02d/f%04d", seed, i%16, i)
		if err := b.AddFile(name, 0o644, data); err != nil {
			return nil, err
		}
		total += n
	}
	return b.Build(ctx)
}

// buildImage builds an image of n layers of about mb megabytes each.
func buildImage(ctx context.Context, name string, seed uint64, n, mb int) (*benchImage, error) {
	bi := &benchImage{name: name}
	for i := range n {
		l, err := buildLayer(ctx, seed+uint64(i), mb)
		if err != nil {
			bi.close()
			return nil, err
		}
		bi.layers = append(bi.layers, l)
		bi.compressed += l.Descriptor().Size
	}
	img, err := oci.NewImage(bi.layers, ocispec.ImageConfig{Cmd: []string{"/data"}})
	if err != nil {
		bi.close()
		return nil, err
	}
	bi.img = img
	return bi, nil
}

func (bi *benchImage) close() {
	for _, l := range bi.layers {
		l.Close()
	}
}

// imageRates pushes bi to ref with Dao's client (blobs at once, then the manifest) and
// pulls it back (the manifest, then every blob at once, verified as read), and returns
// the compressed megabytes (10^6 bytes) per second of each.
func imageRates(ctx context.Context, c *remote.Client, ref, repo string, bi *benchImage) (push, pull float64, err error) {
	start := time.Now()
	if _, err := c.Push(ctx, ref, bi.img); err != nil {
		return 0, 0, err
	}
	push = float64(bi.compressed) / 1e6 / time.Since(start).Seconds()
	start = time.Now()
	m, err := c.Manifest(ctx, ref)
	if err != nil {
		return 0, 0, err
	}
	if m.Image == nil {
		return 0, 0, fmt.Errorf("%s: not an image", ref)
	}
	descs := append([]ocispec.Descriptor{m.Image.Config}, m.Image.Layers...)
	if err := parallel(len(descs), func(i int) error {
		rc, err := c.FetchBlob(ctx, repo, descs[i])
		if err != nil {
			return err
		}
		defer rc.Close()
		_, err = io.Copy(io.Discard, rc)
		return err
	}); err != nil {
		return 0, 0, err
	}
	pull = float64(bi.compressed) / 1e6 / time.Since(start).Seconds()
	return push, pull, nil
}
