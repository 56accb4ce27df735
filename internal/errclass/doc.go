// Package errclass makes Dao's sentinel errors members of containerd's error classes
// (github.com/containerd/errdefs), so that a caller can ask errdefs.IsNotFound(err) of any
// Dao error, as of any containerd one, and still match a package's own sentinel with
// errors.Is.
package errclass
