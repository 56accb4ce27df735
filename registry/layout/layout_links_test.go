package layout_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/opendao/dao/registry/layout"
	"github.com/opendao/dao/registry/oci"
)

// TestReadLayoutFollowsNoLinks replaces files of a layout with links to host files (even
// of the right content) and named pipes: layout.Read, and opening the layers it read, refuse
// them in seconds rather than read the host's files or wait on a pipe.
func TestReadLayoutFollowsNoLinks(t *testing.T) {
	t.Parallel()
	forEachOpenMode(t, testReadLayoutFollowsNoLinks)
}

func testReadLayoutFollowsNoLinks(t *testing.T, read func(context.Context, string) (*layout.Layout, error)) {
	ctx := context.Background()
	img := testImage(t, "amd64")
	layer := img.Layers()[0].Descriptor()
	blob := filepath.Join("blobs", "sha256", layer.Digest.Encoded())
	for _, tc := range []struct {
		name string
		// spoil changes the layout in dir after it was written (before, if !late, layout.Read).
		spoil func(t *testing.T, dir string)
		late  bool
	}{
		{name: "layer blob is a link to a host file", spoil: func(t *testing.T, dir string) { linkOut(t, dir, blob) }},
		{name: "blobs directory is a link", spoil: func(t *testing.T, dir string) { linkOut(t, dir, "blobs") }},
		{name: "index.json is a link", spoil: func(t *testing.T, dir string) { linkOut(t, dir, "index.json") }},
		{name: "oci-layout is a named pipe", spoil: func(t *testing.T, dir string) { fifo(t, dir, "oci-layout") }},
		{name: "index.json is a named pipe", spoil: func(t *testing.T, dir string) { fifo(t, dir, "index.json") }},
		{name: "layer blob is replaced by a link after layout.Read", late: true, spoil: func(t *testing.T, dir string) { linkOut(t, dir, blob) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := layout.Write(ctx, dir, "example.com/app:1", img); err != nil {
				t.Fatal(err)
			}
			if !tc.late {
				tc.spoil(t, dir)
			}
			err := within(t, func() error {
				l, err := read(ctx, dir)
				if err != nil {
					return err
				}
				if tc.late {
					tc.spoil(t, dir)
				}
				a, err := l.Find("example.com/app:1")
				if err != nil {
					return err
				}
				rc, err := a.(*oci.Image).Layers()[0].Open()
				if err != nil {
					return err
				}
				defer rc.Close()
				_, err = io.ReadAll(rc)
				return err
			})
			if !errors.Is(err, layout.ErrInvalidLayout) {
				t.Errorf("reading the layout: %v, want ErrInvalidLayout", err)
			}
		})
	}
}

// linkOut moves the file or directory rel of dir out of it, and puts a link to it in its
// place: the content is the same, but it is not in the layout.
func linkOut(t *testing.T, dir, rel string) {
	t.Helper()
	outside := filepath.Join(t.TempDir(), filepath.Base(rel))
	if err := os.Rename(filepath.Join(dir, rel), outside); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, rel)); err != nil {
		t.Fatal(err)
	}
}

// fifo replaces the file rel of dir with a named pipe.
func fifo(t *testing.T, dir, rel string) {
	t.Helper()
	p := filepath.Join(dir, rel)
	os.Remove(p)
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
}

// within runs f and returns its error, failing t if it takes more than 5 seconds.
func within(t *testing.T, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("still running after 5s: it blocks")
		return nil
	}
}

// forEachOpenMode runs test with openat2 and with the walk that replaces it on kernels
// without it.
// The test reads the layout with the read it is given: layout.Read or layout.ReadWalk.
func forEachOpenMode(t *testing.T, test func(t *testing.T, read func(context.Context, string) (*layout.Layout, error))) {
	t.Run("openat2", func(t *testing.T) { test(t, layout.Read) })
	t.Run("walk", func(t *testing.T) { test(t, layout.ReadWalk) })
}
