package build

import "github.com/opendao/dao/registry/internal/hostfs"

// SetWalkHook makes AddHostTree call hook before it opens each directory below its root,
// with the directory's path relative to the root, for tests; it returns a function that
// removes the hook.
func SetWalkHook(hook func(rel string)) (restore func()) {
	walkHook = hook
	return func() { walkHook = nil }
}

// ForceOpenWalk makes host files open without openat2, as on kernels that lack it, for
// tests; it returns a function that restores the default.
func ForceOpenWalk() (restore func()) { return hostfs.ForceOpenWalk() }
