package registry

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Errors returned by this package. They are wrapped with more detail (the path, the blob's
// digest, the reason); test for them with errors.Is.
var (
	// ErrInvalidPath means a layer entry's path cannot be used: it is empty, names the root,
	// contains a NUL byte, escapes the root with "..", or has an element that starts with
	// ".wh." (a whiteout's name, which only AddWhiteout and AddOpaqueWhiteout write). The
	// error is an *EntryError.
	ErrInvalidPath = errors.New("registry: invalid path")
	// ErrInvalidEntry means a layer entry cannot be added or written: its mode has bits other
	// than permissions, it clashes with another entry, a hard link has no target, a host
	// file is of a type a layer cannot hold, or a host file or directory was replaced (by a
	// symbolic link, a pipe, another file) between its Add and Build. The error is an
	// *EntryError.
	ErrInvalidEntry = errors.New("registry: invalid layer entry")
	// ErrInvalidOption means an option was given a value it does not accept.
	ErrInvalidOption = errors.New("registry: invalid option")
	// ErrInvalidName means an image name is not a valid image reference.
	ErrInvalidName = errors.New("registry: invalid image name")
	// ErrInvalidImage means a manifest, image config or index is malformed or inconsistent:
	// an unsupported media type, a config whose diff IDs do not match the layers, two images
	// of one platform in an index.
	ErrInvalidImage = errors.New("registry: invalid image")
	// ErrInvalidLayout means a directory or tar stream is not a usable OCI image layout.
	ErrInvalidLayout = errors.New("registry: invalid image layout")
	// ErrBlobNotFound means a blob that a descriptor names is missing.
	ErrBlobNotFound = errors.New("registry: blob not found")
	// ErrDigestMismatch means a blob's content does not match its descriptor: its digest
	// differs, or it is shorter or longer than the descriptor's size.
	ErrDigestMismatch = errors.New("registry: digest mismatch")
	// ErrNotFound means a layout holds no image of the requested name, or a registry answered
	// 404 Not Found.
	ErrNotFound = errors.New("registry: not found")
)

// EntryError reports a layer entry that LayerBuilder refused, naming its path and the reason.
// Err is ErrInvalidPath or ErrInvalidEntry.
type EntryError struct {
	// Path is the entry's path as the caller gave it.
	Path string
	// Reason says what is wrong, such as "escapes the layer root".
	Reason string
	// Err is the sentinel the error matches with errors.Is.
	Err error
}

func (e *EntryError) Error() string {
	return e.Err.Error() + " " + strconv.Quote(e.Path) + ": " + e.Reason
}

// Unwrap returns e.Err.
func (e *EntryError) Unwrap() error { return e.Err }

// opError is an error of one of the package's operations (pull, push, ...) on a reference:
// its message says "registry:" once, not again for each of the package's own errors
// within ("registry: pull x: write y: ..." rather than "registry: pull x: registry: write
// y: ..."). errors.Is and errors.As see the whole chain.
type opError struct {
	op  string // "pull docker.io/library/busybox:latest"
	err error
}

func (e *opError) Error() string {
	inner := strings.TrimPrefix(e.err.Error(), "registry: ")
	return "registry: " + e.op + ": " + strings.ReplaceAll(inner, ": registry: ", ": ")
}

func (e *opError) Unwrap() error { return e.err }

// opErrorf returns err as the error of the operation that format and args describe.
func opErrorf(err error, format string, args ...any) error {
	return &opError{op: fmt.Sprintf(format, args...), err: err}
}
