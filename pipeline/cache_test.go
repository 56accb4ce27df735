package pipeline

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func openRoot(t *testing.T, dir string) *os.Root {
	t.Helper()
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestCacheKey(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	writeFiles(t, ws, map[string]string{"go.sum": "a", "mod/x.lock": "1", "mod/y.lock": "2"})
	root := openRoot(t, ws)
	step := &Step{Name: "s", Image: "busybox", Commands: []string{"make"}, Cache: &Cache{KeyFiles: []string{"go.sum", "mod/*.lock", "absent"}, Paths: []string{".cache"}}}
	key := func(s *Step, env map[string]string) string {
		t.Helper()
		k, err := cacheKey(root, env, s, instance{})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k1 := key(step, nil)
	if k1 != key(step, nil) {
		t.Fatal("same inputs, different keys")
	}
	// What decides when and whether the step runs is not part of the key.
	other := step.clone()
	other.Needs, other.If, other.Retries = []string{"x"}, "always()", 3
	if key(other, nil) != k1 {
		t.Error("needs, if or retries changed the key")
	}
	for name, change := range map[string]func(){
		"key file content": func() { writeFiles(t, ws, map[string]string{"go.sum": "b"}) },
		"glob match":       func() { writeFiles(t, ws, map[string]string{"mod/z.lock": "3"}) },
		"absent appears":   func() { writeFiles(t, ws, map[string]string{"absent": ""}) },
	} {
		before := key(step, nil)
		change()
		if key(step, nil) == before {
			t.Errorf("%s: key unchanged", name)
		}
	}
	k2 := key(step, nil)
	changed := step.clone()
	changed.Commands = []string{"make all"}
	if key(changed, nil) == k2 {
		t.Error("commands changed, key did not")
	}
	if key(step, map[string]string{"X": "1"}) == k2 {
		t.Error("pipeline env changed, key did not")
	}
}

func TestCacheSaveRestore(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	writeFiles(t, ws, map[string]string{".cache/a/b.txt": "bee", ".cache/c.txt": "sea", "bin/tool": "#!/bin/sh\n"})
	if err := os.Chmod(filepath.Join(ws, "bin/tool"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a/b.txt", filepath.Join(ws, ".cache/link")); err != nil {
		t.Fatal(err)
	}
	// A link out of the workspace is kept as a link, never followed.
	if err := os.Symlink("/etc/passwd", filepath.Join(ws, ".cache/escape")); err != nil {
		t.Fatal(err)
	}
	root := openRoot(t, ws)
	store := &cacheStore{dir: filepath.Join(t.TempDir(), "cache")}
	paths := []string{".cache", "/workspace/bin/tool", "missing"}
	key := "0123456789abcdef0123456789abcdef"
	if _, hit, err := store.restore(root, key, paths); hit || err != nil {
		t.Fatalf("restore before save = hit %t, %v", hit, err)
	}
	if err := store.save(root, key, paths, map[string]string{"v": "1"}); err != nil {
		t.Fatalf("save: %v", err)
	}
	// Saving the same key again keeps the first entry.
	if err := store.save(root, key, paths, map[string]string{"v": "2"}); err != nil {
		t.Fatalf("second save: %v", err)
	}

	ws2 := t.TempDir()
	writeFiles(t, ws2, map[string]string{".cache/stale.txt": "old"})
	root2 := openRoot(t, ws2)
	outputs, hit, err := store.restore(root2, key, paths)
	if err != nil || !hit {
		t.Fatalf("restore = hit %t, %v", hit, err)
	}
	if diff := cmp.Diff(map[string]string{"v": "1"}, outputs); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
	for name, want := range map[string]string{".cache/a/b.txt": "bee", ".cache/c.txt": "sea", ".cache/link": "bee"} {
		if b, err := os.ReadFile(filepath.Join(ws2, name)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", name, b, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(ws2, ".cache/stale.txt")); !os.IsNotExist(err) {
		t.Errorf("stale file survived the restore: %v", err)
	}
	if target, err := os.Readlink(filepath.Join(ws2, ".cache/escape")); err != nil || target != "/etc/passwd" {
		t.Errorf("escape link = %q, %v", target, err)
	}
	if info, err := os.Stat(filepath.Join(ws2, "bin/tool")); err != nil || info.Mode().Perm() != 0o755 {
		t.Errorf("bin/tool: %v, %v; want mode 0755", info, err)
	}
	entries, _ := os.ReadDir(store.dir)
	if len(entries) != 1 {
		t.Errorf("cache dir holds %d entries, want 1 (no temporary left)", len(entries))
	}
}
