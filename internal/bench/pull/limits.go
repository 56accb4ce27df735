package main

import (
	"bytes"
	"crypto/sha256"
	"io"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/opendao/dao/registry/oci"
)

// limits are the machine's throughputs in bytes per second, per core and on every core at
// once, measured over the benchmark's own layers (in memory, so no I/O counts).
type limits struct {
	sha256One, sha256All float64 // bytes hashed
	gunzipOne, gunzipAll float64 // compressed bytes decompressed
	cores                int
}

// measureLimits measures over the layers' blobs, with work split between cores goroutines.
func measureLimits(layers []*oci.Layer, cores int) (limits, error) {
	var blobs [][]byte
	for _, l := range layers {
		rc, err := l.Open()
		if err != nil {
			return limits{}, err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return limits{}, err
		}
		blobs = append(blobs, b)
	}
	hash := func(b []byte) error {
		sha256.Sum256(b)
		return nil
	}
	gunzip := func(b []byte) error {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, zr)
		return err
	}
	l := limits{cores: cores}
	var err error
	if l.sha256One, err = throughput(blobs, 1, hash); err != nil {
		return l, err
	}
	if l.sha256All, err = throughput(blobs, cores, hash); err != nil {
		return l, err
	}
	if l.gunzipOne, err = throughput(blobs, 1, gunzip); err != nil {
		return l, err
	}
	if l.gunzipAll, err = throughput(blobs, cores, gunzip); err != nil {
		return l, err
	}
	return l, nil
}

// throughput runs f over every blob, each blob on each of n goroutines at once (so each core
// has the same work), and returns the bytes per second of all of them together: the best of
// three rounds.
func throughput(blobs [][]byte, n int, f func([]byte) error) (float64, error) {
	var total int64
	for _, b := range blobs {
		total += int64(len(b))
	}
	best := 0.0
	for range 3 {
		start := time.Now()
		var wg sync.WaitGroup
		errs := make([]error, n)
		for g := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, b := range blobs {
					if err := f(b); err != nil {
						errs[g] = err
						return
					}
				}
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return 0, err
			}
		}
		best = max(best, float64(total)*float64(n)/time.Since(start).Seconds())
	}
	return best, nil
}

// pullLimit is the least time the CPU needs to pull img with unpack at these throughputs,
// with every core busy: verify the blobs (sha256), decompress them, and hash what they
// decompress to (the diff IDs). Moving the bytes (HTTP, the content store, the files) is
// not counted.
func (l limits) pullLimit(img *benchImage) time.Duration {
	s := float64(img.compressed)/l.sha256All + float64(img.compressed)/l.gunzipAll + float64(img.uncompressed)/l.sha256All
	return time.Duration(s * float64(time.Second))
}

// fetchLimit is the least time the CPU needs to fetch img without unpack: verify the blobs.
func (l limits) fetchLimit(img *benchImage) time.Duration {
	return time.Duration(float64(img.compressed) / l.sha256All * float64(time.Second))
}
