package build

// WithOpenWalk makes the builder open host files without openat2, as on kernels that lack
// it, for tests.
func WithOpenWalk() Option { return withOpenWalk() }

// WithWalkHook makes AddHostTree call hook before it opens each directory below its root,
// with the directory's path relative to the root, for tests.
func WithWalkHook(hook func(rel string)) Option { return withWalkHook(hook) }
