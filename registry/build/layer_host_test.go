package build_test

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opendao/dao/registry/internal/regtest"

	"github.com/google/go-cmp/cmp"

	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/oci"
)

// forEachOpenMode runs test with openat2 and with the walk that replaces it on kernels
// without it.
// The walk's test passes build.WithOpenWalk to the builders it makes.
func forEachOpenMode(t *testing.T, test func(t *testing.T, mode ...build.Option)) {
	t.Run("openat2", func(t *testing.T) { test(t) })
	t.Run("walk", func(t *testing.T) { test(t, build.WithOpenWalk()) })
}

const secret = "host secret\n"

// TestLayerHostFilesReplacedBeforeBuild adds host files, then replaces them or a directory
// above them before Build: with a link to a host secret, a named pipe, another file. Build
// must fail naming the entry, in seconds, and never put the secret in a layer.
func TestLayerHostFilesReplacedBeforeBuild(t *testing.T) {
	t.Parallel()
	forEachOpenMode(t, testLayerHostFilesReplaced)
}

func testLayerHostFilesReplaced(t *testing.T, mode ...build.Option) {
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "secret"), secret, 0o600)
	writeFile(t, filepath.Join(outside, "sub", "f"), secret, 0o600)
	writeFile(t, filepath.Join(outside, "tree", "conf"), secret, 0o600)
	writeFile(t, filepath.Join(outside, "tree", "sub", "f"), secret, 0o600)

	for _, tc := range []struct {
		name string
		// add adds host files of host to b; swap then changes host.
		add, swap func(t *testing.T, b *build.LayerBuilder, host string)
		entry     string // the entry the error names
		reason    string
	}{{
		name: "tree file replaced by a symlink",
		add: func(t *testing.T, b *build.LayerBuilder, host string) {
			writeFile(t, filepath.Join(host, "conf"), "conf\n", 0o644)
			mustAdd(t, b.AddHostTree("etc", host))
		},
		swap: func(t *testing.T, _ *build.LayerBuilder, host string) {
			replaceWithSymlink(t, filepath.Join(host, "conf"), filepath.Join(outside, "secret"))
		},
		entry: "etc/conf", reason: "symbolic link",
	}, {
		name: "tree directory replaced by a symlink",
		add: func(t *testing.T, b *build.LayerBuilder, host string) {
			writeFile(t, filepath.Join(host, "sub", "f"), "f\n", 0o644)
			mustAdd(t, b.AddHostTree("", host))
		},
		swap: func(t *testing.T, _ *build.LayerBuilder, host string) {
			replaceWithSymlink(t, filepath.Join(host, "sub"), filepath.Join(outside, "sub"))
		},
		entry: "sub/f", reason: "symbolic link",
	}, {
		name: "tree root replaced by a symlink",
		add: func(t *testing.T, b *build.LayerBuilder, host string) {
			writeFile(t, filepath.Join(host, "tree", "conf"), "conf\n", 0o644)
			mustAdd(t, b.AddHostTree("", filepath.Join(host, "tree")))
		},
		swap: func(t *testing.T, _ *build.LayerBuilder, host string) {
			replaceWithSymlink(t, filepath.Join(host, "tree"), filepath.Join(outside, "tree"))
		},
		entry: "conf", reason: "symbolic link",
	}, {
		name: "host file replaced by a symlink",
		add: func(t *testing.T, b *build.LayerBuilder, host string) {
			writeFile(t, filepath.Join(host, "f"), "f\n", 0o644)
			mustAdd(t, b.AddHostFile("bin/f", filepath.Join(host, "f")))
		},
		swap: func(t *testing.T, _ *build.LayerBuilder, host string) {
			replaceWithSymlink(t, filepath.Join(host, "f"), filepath.Join(outside, "secret"))
		},
		entry: "bin/f", reason: "symbolic link",
	}, {
		name: "directory of a host file replaced by a symlink",
		add: func(t *testing.T, b *build.LayerBuilder, host string) {
			writeFile(t, filepath.Join(host, "sub", "f"), "f\n", 0o644)
			mustAdd(t, b.AddHostFile("f", filepath.Join(host, "sub", "f")))
		},
		swap: func(t *testing.T, _ *build.LayerBuilder, host string) {
			replaceWithSymlink(t, filepath.Join(host, "sub"), filepath.Join(outside, "sub"))
		},
		entry: "f", reason: "symbolic link",
	}, {
		name: "tree file replaced by a named pipe",
		add: func(t *testing.T, b *build.LayerBuilder, host string) {
			writeFile(t, filepath.Join(host, "conf"), "conf\n", 0o644)
			mustAdd(t, b.AddHostTree("", host))
		},
		swap: func(t *testing.T, _ *build.LayerBuilder, host string) {
			os.Remove(filepath.Join(host, "conf"))
			if err := syscall.Mkfifo(filepath.Join(host, "conf"), 0o644); err != nil {
				t.Fatal(err)
			}
		},
		entry: "conf", reason: "named pipe",
	}, {
		name: "host file replaced by a named pipe",
		add: func(t *testing.T, b *build.LayerBuilder, host string) {
			writeFile(t, filepath.Join(host, "f"), "f\n", 0o644)
			mustAdd(t, b.AddHostFile("f", filepath.Join(host, "f")))
		},
		swap: func(t *testing.T, _ *build.LayerBuilder, host string) {
			os.Remove(filepath.Join(host, "f"))
			if err := syscall.Mkfifo(filepath.Join(host, "f"), 0o644); err != nil {
				t.Fatal(err)
			}
		},
		entry: "f", reason: "named pipe",
	}, {
		name: "tree file replaced by a hard link to a secret",
		add: func(t *testing.T, b *build.LayerBuilder, host string) {
			writeFile(t, filepath.Join(host, "conf"), "conf\n", 0o644)
			mustAdd(t, b.AddHostTree("", host))
		},
		swap: func(t *testing.T, _ *build.LayerBuilder, host string) {
			os.Remove(filepath.Join(host, "conf"))
			if err := os.Link(filepath.Join(outside, "secret"), filepath.Join(host, "conf")); err != nil {
				t.Fatal(err)
			}
		},
		entry: "conf", reason: "replaced by another regular file",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBuilder(t, mode...)
			host := t.TempDir()
			tc.add(t, b, host)
			tc.swap(t, b, host)
			done := make(chan error, 1)
			var layer *oci.Layer
			go func() {
				var err error
				layer, err = b.Build(context.Background())
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Build still runs after 5s: it blocks on what replaced the host file")
			}
			if err == nil {
				defer layer.Close()
				for _, e := range regtest.ReadLayer(t, layer) {
					if e.Content == secret {
						t.Errorf("the layer holds the host secret as %s", e.Name)
					}
				}
				t.Fatal("Build succeeded, want an error naming the replaced host file")
			}
			var ee *build.EntryError
			if !errors.As(err, &ee) || !errors.Is(err, build.ErrInvalidEntry) {
				t.Fatalf("Build: %v, want an *EntryError matching ErrInvalidEntry", err)
			}
			if ee.Path != tc.entry || !strings.Contains(ee.Reason, tc.reason) {
				t.Errorf("Build: %v, want it to name %q and say %q", err, tc.entry, tc.reason)
			}
		})
	}
}

// TestLayerHostFileChangedInPlace rewrites a host file in place after it was added: Build
// reads what it holds then, as documented.
func TestLayerHostFileChangedInPlace(t *testing.T) {
	t.Parallel()
	host := t.TempDir()
	writeFile(t, filepath.Join(host, "f"), "old\n", 0o644)
	b := newBuilder(t)
	mustAdd(t, b.AddHostFile("f", filepath.Join(host, "f")))
	if err := os.WriteFile(filepath.Join(host, "f"), []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := regtest.ReadLayer(t, mustBuild(t, b))
	want := []regtest.TarEntry{{Name: "f", Type: tar.TypeReg, Mode: 0o644, Content: "new\n"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("layer entries (-want +got):\n%s", diff)
	}
}

// TestAddHostTreeDirectoryReplacedWhileRead replaces a directory of the tree by a link to a
// directory of secrets while AddHostTree reads the tree: the walk must not follow it.
func TestAddHostTreeDirectoryReplacedWhileRead(t *testing.T) {
	t.Parallel()
	forEachOpenMode(t, func(t *testing.T, mode ...build.Option) {
		outside := t.TempDir()
		writeFile(t, filepath.Join(outside, "f"), secret, 0o600)
		host := t.TempDir()
		writeFile(t, filepath.Join(host, "sub", "f"), "f\n", 0o644)
		b := newBuilder(t, append(mode, build.WithWalkHook(func(rel string) {
			if rel == "sub" {
				replaceWithSymlink(t, filepath.Join(host, "sub"), outside)
			}
		}))...)
		err := b.AddHostTree("", host)
		var ee *build.EntryError
		if !errors.As(err, &ee) || ee.Path != "sub" || !strings.Contains(ee.Reason, "symbolic link") {
			t.Fatalf("AddHostTree: %v, want an *EntryError naming sub, replaced by a symbolic link", err)
		}
	})
}

// TestLayerRefusesWhiteoutNames adds entries whose names unpackers would take for
// whiteouts, through every Add: each is refused naming its path.
func TestLayerRefusesWhiteoutNames(t *testing.T) {
	t.Parallel()
	host := t.TempDir()
	writeFile(t, filepath.Join(host, "f"), "f\n", 0o644)
	tree := t.TempDir()
	writeFile(t, filepath.Join(tree, "ok"), "ok\n", 0o644)
	writeFile(t, filepath.Join(tree, "d", ".wh.passwd"), "", 0o644)
	for _, tc := range []struct {
		name string
		add  func(b *build.LayerBuilder) error
		path string
	}{
		{"file", func(b *build.LayerBuilder) error { return b.AddFile("etc/.wh.passwd", 0o644, nil) }, "etc/.wh.passwd"},
		{"opaque marker as a file", func(b *build.LayerBuilder) error { return b.AddFile("/opq/.wh..wh..opq", 0o644, nil) }, "/opq/.wh..wh..opq"},
		{"directory", func(b *build.LayerBuilder) error { return b.AddDir(".wh.etc", 0o755) }, ".wh.etc"},
		{"parent directory", func(b *build.LayerBuilder) error { return b.AddFile(".wh.etc/passwd", 0o644, nil) }, ".wh.etc/passwd"},
		{"symlink", func(b *build.LayerBuilder) error { return b.AddSymlink("bin/.wh.sh", "busybox") }, "bin/.wh.sh"},
		{"hard link", func(b *build.LayerBuilder) error {
			mustAdd(t, b.AddFile("f", 0o644, nil))
			return b.AddHardlink(".wh.f", "f")
		}, ".wh.f"},
		{"host file", func(b *build.LayerBuilder) error { return b.AddHostFile("a/.wh.f", filepath.Join(host, "f")) }, "a/.wh.f"},
		{"host tree", func(b *build.LayerBuilder) error { return b.AddHostTree("x", tree) }, "x/d/.wh.passwd"},
		{"whiteout of a whiteout", func(b *build.LayerBuilder) error { return b.AddWhiteout("a/.wh.b") }, "a/.wh.b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBuilder(t)
			err := tc.add(b)
			var ee *build.EntryError
			if !errors.As(err, &ee) || !errors.Is(err, build.ErrInvalidPath) {
				t.Fatalf("got %v, want an *EntryError matching ErrInvalidPath", err)
			}
			if ee.Path != tc.path || !strings.Contains(ee.Reason, "whiteout") {
				t.Errorf("got %v, want it to name %q as a whiteout", err, tc.path)
			}
			if _, err := b.Build(context.Background()); !errors.Is(err, build.ErrInvalidPath) {
				t.Errorf("Build: %v, want the Add's error", err)
			}
		})
	}
}

// TestLayerWhiteouts writes a whiteout and an opaque directory as the OCI specification
// names them.
func TestLayerWhiteouts(t *testing.T) {
	t.Parallel()
	b := newBuilder(t)
	mustAdd(t, b.AddWhiteout("/data/gone"))
	mustAdd(t, b.AddOpaqueWhiteout("opq/"))
	mustAdd(t, b.AddFile("opq/new", 0o644, []byte("new\n")))
	if err := b.AddHardlink("l", "data/.wh.gone"); !errors.Is(err, build.ErrInvalidEntry) {
		t.Errorf("hard link to a whiteout: %v, want ErrInvalidEntry", err)
	}
	b = newBuilder(t)
	mustAdd(t, b.AddWhiteout("/data/gone"))
	mustAdd(t, b.AddOpaqueWhiteout("opq/"))
	mustAdd(t, b.AddFile("opq/new", 0o644, []byte("new\n")))
	got := regtest.ReadLayer(t, mustBuild(t, b))
	want := []regtest.TarEntry{
		{Name: "data/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "data/.wh.gone", Type: tar.TypeReg},
		{Name: "opq/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "opq/.wh..wh..opq", Type: tar.TypeReg},
		{Name: "opq/new", Type: tar.TypeReg, Mode: 0o644, Content: "new\n"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("layer entries (-want +got):\n%s", diff)
	}
}

// replaceWithSymlink replaces the file or directory at p with a symbolic link to target.
func replaceWithSymlink(t *testing.T, p, target string) {
	t.Helper()
	if err := os.RemoveAll(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}
