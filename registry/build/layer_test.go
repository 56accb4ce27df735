package build_test

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opendao/dao/registry/internal/regtest"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"

	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/oci"
)

// newBuilder returns a builder whose temporary files live in t's temporary directory.
func newBuilder(t *testing.T, opts ...build.Option) *build.LayerBuilder {
	t.Helper()
	return regtest.Builder(t, opts...)
}

// mustBuild builds b and closes the layer when the test ends.
func mustBuild(t *testing.T, b *build.LayerBuilder) *oci.Layer {
	t.Helper()
	return regtest.Build(t, b)
}

func TestLayerContent(t *testing.T) {
	t.Parallel()
	host := t.TempDir()
	writeFile(t, filepath.Join(host, "tool"), "#!/bin/sh\n", 0o750)
	writeFile(t, filepath.Join(host, "tree", "b.txt"), "bee", 0o600)
	writeFile(t, filepath.Join(host, "tree", "sub", "c.txt"), "sea", 0o644)
	if err := os.Symlink("b.txt", filepath.Join(host, "tree", "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(host, "tree", "sub"), 0o700); err != nil {
		t.Fatal(err)
	}

	for _, c := range []build.Compression{build.Gzip, build.Zstd, build.Uncompressed} {
		t.Run(c.String(), func(t *testing.T) {
			b := newBuilder(t, build.WithCompression(c))
			mustAdd(t, b.AddFile("/etc/motd", 0o644, []byte("hello\n")))
			mustAdd(t, b.AddHostFile("usr/local/bin/tool", filepath.Join(host, "tool")))
			mustAdd(t, b.AddDir("tmp", 0o777|fs.ModeSticky))
			mustAdd(t, b.AddSymlink("bin/sh", "busybox"))
			mustAdd(t, b.AddHardlink("etc/motd.link", "etc/motd"))
			mustAdd(t, b.AddHostTree("/opt/app/", filepath.Join(host, "tree")))
			mustAdd(t, b.Chown("opt/app/b.txt", 1000, 1001))
			l := mustBuild(t, b)

			if got, want := l.Descriptor().MediaType, c.MediaType(); got != want {
				t.Errorf("media type = %q, want %q", got, want)
			}
			const reg, dir, sym, lnk = tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink
			want := []regtest.TarEntry{
				{Name: "bin/", Type: dir, Mode: 0o755},
				{Name: "bin/sh", Type: sym, Mode: 0o777, Link: "busybox"},
				{Name: "etc/", Type: dir, Mode: 0o755},
				{Name: "etc/motd", Type: reg, Mode: 0o644, Content: "hello\n"},
				{Name: "etc/motd.link", Type: lnk, Mode: 0o644, Link: "etc/motd"},
				{Name: "opt/", Type: dir, Mode: 0o755},
				{Name: "opt/app/", Type: dir, Mode: 0o755},
				{Name: "opt/app/b.txt", Type: reg, Mode: 0o600, UID: 1000, GID: 1001, Content: "bee"},
				{Name: "opt/app/link", Type: sym, Mode: 0o777, Link: "b.txt"},
				{Name: "opt/app/sub/", Type: dir, Mode: 0o700},
				{Name: "opt/app/sub/c.txt", Type: reg, Mode: 0o644, Content: "sea"},
				{Name: "tmp/", Type: dir, Mode: 0o1777},
				{Name: "usr/", Type: dir, Mode: 0o755},
				{Name: "usr/local/", Type: dir, Mode: 0o755},
				{Name: "usr/local/bin/", Type: dir, Mode: 0o755},
				{Name: "usr/local/bin/tool", Type: reg, Mode: 0o750, Content: "#!/bin/sh\n"},
			}
			if diff := cmp.Diff(want, regtest.ReadLayer(t, l)); diff != "" {
				t.Errorf("layer entries (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLayerIsReproducible(t *testing.T) {
	t.Parallel()
	host := t.TempDir()
	writeFile(t, filepath.Join(host, "a", "data"), strings.Repeat("payload ", 10000), 0o644)
	add := func(b *build.LayerBuilder, reverse bool) {
		steps := []func() error{
			func() error { return b.AddFile("z/last", 0o644, []byte("z")) },
			func() error { return b.AddFile("a/first", 0o600, []byte("a")) },
			func() error { return b.AddHostTree("host", host) },
			func() error { return b.AddSymlink("m/link", "../a/first") },
		}
		for i := range steps {
			if reverse {
				i = len(steps) - 1 - i
			}
			mustAdd(t, steps[i]())
		}
	}
	for _, c := range []build.Compression{build.Gzip, build.Zstd, build.Uncompressed} {
		t.Run(c.String(), func(t *testing.T) {
			var digests, diffIDs []digest.Digest
			for _, reverse := range []bool{false, true} {
				b := newBuilder(t, build.WithCompression(c))
				add(b, reverse)
				// Host files get new times; the layer must not notice.
				now := time.Now().Add(time.Duration(len(digests)) * time.Hour)
				if err := os.Chtimes(filepath.Join(host, "a", "data"), now, now); err != nil {
					t.Fatal(err)
				}
				l := mustBuild(t, b)
				digests = append(digests, l.Descriptor().Digest)
				diffIDs = append(diffIDs, l.DiffID())
			}
			if digests[0] != digests[1] {
				t.Errorf("digests differ between two builds: %s, %s", digests[0], digests[1])
			}
			if diffIDs[0] != diffIDs[1] {
				t.Errorf("diff IDs differ between two builds: %s, %s", diffIDs[0], diffIDs[1])
			}
			if c == build.Uncompressed && digests[0] != diffIDs[0] {
				t.Errorf("uncompressed layer: digest %s, diff ID %s, want equal", digests[0], diffIDs[0])
			}
		})
	}
}

func TestLayerModTimeAndOwner(t *testing.T) {
	t.Parallel()
	when := time.Date(2024, 5, 6, 7, 8, 9, 500, time.UTC)
	b := newBuilder(t, build.WithModTime(when), build.WithOwner(7, 8))
	mustAdd(t, b.AddFile("a/b", 0o644, nil))
	got := regtest.ReadLayer(t, mustBuild(t, b))
	want := []regtest.TarEntry{
		{Name: "a/", Type: tar.TypeDir, Mode: 0o755, ModTime: when.Unix()},
		{Name: "a/b", Type: tar.TypeReg, Mode: 0o644, UID: 7, GID: 8, ModTime: when.Unix()},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("layer entries (-want +got):\n%s", diff)
	}
}

func TestHardlinkTargetAfterLinkInPathOrder(t *testing.T) {
	t.Parallel()
	// "a" sorts before its target "z": "a" must carry the content and "z" link to it.
	b := newBuilder(t)
	mustAdd(t, b.AddFile("z", 0o640, []byte("shared")))
	mustAdd(t, b.AddHardlink("a", "z"))
	mustAdd(t, b.AddHardlink("m", "a")) // a link to a link is a link to the file
	got := regtest.ReadLayer(t, mustBuild(t, b))
	want := []regtest.TarEntry{
		{Name: "a", Type: tar.TypeReg, Mode: 0o640, Content: "shared"},
		{Name: "m", Type: tar.TypeLink, Mode: 0o640, Link: "a"},
		{Name: "z", Type: tar.TypeLink, Mode: 0o640, Link: "a"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("layer entries (-want +got):\n%s", diff)
	}
}

func TestLayerReplacesEntries(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	mustAdd(t, b.AddFile("etc/conf", 0o644, []byte("old")))
	mustAdd(t, b.AddFile("etc/conf", 0o600, []byte("new")))
	mustAdd(t, b.AddDir("etc", 0o700)) // keeps etc/conf
	got := regtest.ReadLayer(t, mustBuild(t, b))
	want := []regtest.TarEntry{
		{Name: "etc/", Type: tar.TypeDir, Mode: 0o700},
		{Name: "etc/conf", Type: tar.TypeReg, Mode: 0o600, Content: "new"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("layer entries (-want +got):\n%s", diff)
	}
}

func TestLayerRefusesBadEntries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		add    func(b *build.LayerBuilder) error
		path   string // the path the *EntryError must name
		reason string // a part of its reason
		is     error
	}{
		{"parent dir", func(b *build.LayerBuilder) error { return b.AddFile("../etc/passwd", 0o644, nil) }, "../etc/passwd", "escapes the layer root", build.ErrInvalidPath},
		{"absolute parent dir", func(b *build.LayerBuilder) error { return b.AddFile("/../x", 0o644, nil) }, "/../x", "escapes the layer root", build.ErrInvalidPath},
		{"climbs out in the middle", func(b *build.LayerBuilder) error { return b.AddDir("a/../../b", 0o755) }, "a/../../b", "escapes the layer root", build.ErrInvalidPath},
		{"empty", func(b *build.LayerBuilder) error { return b.AddFile("", 0o644, nil) }, "", "is empty", build.ErrInvalidPath},
		{"root", func(b *build.LayerBuilder) error { return b.AddDir("/", 0o755) }, "/", "layer root", build.ErrInvalidPath},
		{"dot", func(b *build.LayerBuilder) error { return b.AddFile("a/..", 0o644, nil) }, "a/..", "layer root", build.ErrInvalidPath},
		{"NUL", func(b *build.LayerBuilder) error { return b.AddFile("a\x00b", 0o644, nil) }, "a\x00b", "NUL", build.ErrInvalidPath},
		{"hard link out of root", func(b *build.LayerBuilder) error { return b.AddHardlink("x", "../../etc/shadow") }, "../../etc/shadow", "escapes the layer root", build.ErrInvalidPath},
		{"host tree prefix out of root", func(b *build.LayerBuilder) error { return b.AddHostTree("../up", t.TempDir()) }, "../up", "escapes the layer root", build.ErrInvalidPath},
		{"type bits in mode", func(b *build.LayerBuilder) error { return b.AddDir("d", fs.ModeDir|0o755) }, "d", "bits other than permissions", build.ErrInvalidEntry},
		{"parent is a file", func(b *build.LayerBuilder) error {
			mustAdd(t, b.AddFile("a", 0o644, nil))
			return b.AddFile("a/b", 0o644, nil)
		}, "a/b", `parent "a" is a regular file`, build.ErrInvalidEntry},
		{"parent is a symlink", func(b *build.LayerBuilder) error {
			mustAdd(t, b.AddSymlink("bin", "usr/bin"))
			return b.AddFile("bin/sh", 0o755, nil)
		}, "bin/sh", `parent "bin" is a symbolic link`, build.ErrInvalidEntry},
		{"file over a full directory", func(b *build.LayerBuilder) error {
			mustAdd(t, b.AddFile("d/f", 0o644, nil))
			return b.AddFile("d", 0o644, nil)
		}, "d", "directory that has entries below it", build.ErrInvalidEntry},
		{"hard link to nothing", func(b *build.LayerBuilder) error { return b.AddHardlink("l", "missing") }, "l", "not a regular file", build.ErrInvalidEntry},
		{"hard link to a directory", func(b *build.LayerBuilder) error {
			mustAdd(t, b.AddDir("d", 0o755))
			return b.AddHardlink("l", "d")
		}, "l", "not a regular file", build.ErrInvalidEntry},
		{"hard link to itself", func(b *build.LayerBuilder) error {
			mustAdd(t, b.AddFile("f", 0o644, nil))
			return b.AddHardlink("/f", "f")
		}, "/f", "to itself", build.ErrInvalidEntry},
		{"empty symlink target", func(b *build.LayerBuilder) error { return b.AddSymlink("l", "") }, "l", "empty", build.ErrInvalidEntry},
		{"chown of nothing", func(b *build.LayerBuilder) error { return b.Chown("nothing", 1, 1) }, "nothing", "no such entry", build.ErrInvalidEntry},
		{"host file is a directory", func(b *build.LayerBuilder) error { return b.AddHostFile("f", t.TempDir()) }, "f", "not a regular file", build.ErrInvalidEntry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBuilder(t)
			err := tt.add(b)
			if !errors.Is(err, tt.is) {
				t.Fatalf("got error %v, want one matching %v", err, tt.is)
			}
			var ee *build.EntryError
			if !errors.As(err, &ee) {
				t.Fatalf("got error %T %v, want an *EntryError", err, err)
			}
			if ee.Path != tt.path || !strings.Contains(ee.Reason, tt.reason) {
				t.Errorf("got path %q reason %q, want path %q reason containing %q", ee.Path, ee.Reason, tt.path, tt.reason)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("message %q does not give the reason %q", err, tt.reason)
			}
			// Build reports the first error, even after good entries.
			mustAdd(t, b.AddFile("ok", 0o644, nil))
			if _, err2 := b.Build(context.Background()); !errors.Is(err2, tt.is) {
				t.Errorf("Build: got %v, want the Add's error %v", err2, err)
			}
		})
	}
}

func TestLayerHostErrors(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	err := b.AddHostFile("f", filepath.Join(t.TempDir(), "missing"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("AddHostFile of a missing file: got %v, want fs.ErrNotExist", err)
	}
	host := t.TempDir()
	writeFile(t, filepath.Join(host, "gone"), "x", 0o644)
	b = newBuilder(t)
	mustAdd(t, b.AddHostFile("f", filepath.Join(host, "gone")))
	os.Remove(filepath.Join(host, "gone"))
	if _, err := b.Build(context.Background()); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), `"f"`) {
		t.Errorf("Build after the host file went: got %v, want fs.ErrNotExist naming the entry", err)
	}
}

func TestLayerOptionsRefuseBadValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opt  build.Option
	}{
		{"unknown compression", build.WithCompression(build.Compression(42))},
		{"time before the epoch", build.WithModTime(time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC))},
		{"negative owner", build.WithOwner(-1, 0)},
		{"missing temp dir", build.WithTempDir(filepath.Join(t.TempDir(), "missing"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := build.NewLayerBuilder(tt.opt); !errors.Is(err, build.ErrInvalidOption) {
				t.Errorf("got %v, want ErrInvalidOption", err)
			}
		})
	}
}

func TestLayerLeavesNoFileAndCloses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, err := build.NewLayerBuilder(build.WithTempDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	mustAdd(t, b.AddFile("f", 0o644, []byte("x")))
	l, err := b.Build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if files, _ := os.ReadDir(dir); len(files) != 0 {
		t.Errorf("temp dir holds %d files, want 0: the blob's file is unlinked", len(files))
	}
	want := readAll(t, l)
	open, err := l.Open()
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// A reader opened before Close keeps working.
	if got, err := io.ReadAll(open); err != nil || string(got) != want {
		t.Errorf("reading after Close: got %d bytes, %v; want the blob", len(got), err)
	}
	if err := open.Close(); err != nil {
		t.Errorf("closing the reader: %v", err)
	}
	if _, err := l.Open(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Open after Close: got %v, want fs.ErrClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestLayerReadersAreIndependent(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	mustAdd(t, b.AddFile("f", 0o644, []byte(strings.Repeat("0123456789", 100000))))
	l := mustBuild(t, b)
	want := readAll(t, l)
	done := make(chan string)
	for range 4 {
		go func() {
			rc, err := l.Open()
			if err != nil {
				done <- err.Error()
				return
			}
			defer rc.Close()
			data, _ := io.ReadAll(rc)
			done <- string(data)
		}()
	}
	for range 4 {
		if got := <-done; got != want {
			t.Errorf("a concurrent reader read %d bytes, want the %d of the blob", len(got), len(want))
		}
	}
}

// readAll reads l's blob.
func readAll(t *testing.T, l *oci.Layer) string {
	t.Helper()
	rc, err := l.Open()
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(data)
}

func TestBuildStopsOnCancel(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	mustAdd(t, b.AddFile("f", 0o644, []byte("x")))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Build(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Build with a cancelled context: got %v, want context.Canceled", err)
	}
}

func mustAdd(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, name, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(name, mode); err != nil {
		t.Fatal(err)
	}
}
