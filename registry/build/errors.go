package build

import (
	"strconv"

	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/errclass"
)

// Errors of the layer builder. They are wrapped with more detail (the path, the reason);
// test for them with errors.Is, or for their class (dao.ErrInvalid, so
// errdefs.IsInvalidArgument) with errdefs.
var (
	// ErrInvalidPath means a layer entry's path cannot be used: it is empty, names the root,
	// contains a NUL byte, escapes the root with "..", or has an element that starts with
	// ".wh." (a whiteout's name, which only AddWhiteout and AddOpaqueWhiteout write). The
	// error is an *EntryError.
	ErrInvalidPath = errclass.New(dao.ErrInvalid, "registry: invalid path")
	// ErrInvalidEntry means a layer entry cannot be added or written: its mode has bits other
	// than permissions, it clashes with another entry, a hard link has no target, a host
	// file is of a type a layer cannot hold, or a host file or directory was replaced (by a
	// symbolic link, a pipe, another file) between its Add and Build. The error is an
	// *EntryError.
	ErrInvalidEntry = errclass.New(dao.ErrInvalid, "registry: invalid layer entry")
	// ErrInvalidOption means an option was given a value it does not accept.
	ErrInvalidOption = errclass.New(dao.ErrInvalid, "registry: invalid option")
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
