package ctrd

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

func TestReadahead(t *testing.T) {
	t.Parallel()
	data := make([]byte, 1<<20+123)
	for i := range data {
		data[i] = byte(rand.IntN(256))
	}
	for _, tc := range []struct {
		name string
		read func(io.Reader) ([]byte, error)
	}{
		{"ReadAll", io.ReadAll},
		{"one byte at a time", func(r io.Reader) ([]byte, error) { return io.ReadAll(iotest.OneByteReader(r)) }},
		{"WriteTo", func(r io.Reader) ([]byte, error) {
			var b bytes.Buffer
			_, err := io.Copy(&b, r)
			return b.Bytes(), err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ra := newReadahead(iotest.HalfReader(bytes.NewReader(data)), 4096, 3)
			defer ra.Close()
			got, err := tc.read(ra)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes (equal: %v), %v; want %d bytes", len(got), bytes.Equal(got, data), err, len(data))
			}
		})
	}
}

func TestReadaheadError(t *testing.T) {
	t.Parallel()
	bad := errors.New("bad")
	ra := newReadahead(io.MultiReader(bytes.NewReader(make([]byte, 10000)), iotest.ErrReader(bad)), 4096, 2)
	defer ra.Close()
	got, err := io.ReadAll(ra)
	if len(got) != 10000 || !errors.Is(err, bad) {
		t.Errorf("ReadAll = %d bytes, %v; want 10000 bytes, %v", len(got), err, bad)
	}
}

func TestReadaheadCloseEarly(t *testing.T) {
	t.Parallel()
	ra := newReadahead(bytes.NewReader(make([]byte, 1<<20)), 4096, 2)
	if _, err := io.ReadFull(ra, make([]byte, 5000)); err != nil {
		t.Fatal(err)
	}
	ra.Close() // the goroutine is blocked handing over a chunk: Close stops it
	ra.Close()
}
