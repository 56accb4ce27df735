package build

import (
	"path"
	"strings"
)

// cleanPath turns a caller's path into the form a layer stores: slash-separated, relative to
// the layer root, without "." or ".." elements or a trailing slash. A leading "/" is dropped,
// so "/etc/hosts" and "etc/hosts" name the same entry. It refuses an empty path, the root
// itself, a NUL byte and a path that ".." would lead out of the root.
func cleanPath(p string) (string, error) {
	if p == "" {
		return "", &EntryError{Path: p, Reason: "is empty", Err: ErrInvalidPath}
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "", &EntryError{Path: p, Reason: "contains a NUL byte", Err: ErrInvalidPath}
	}
	// ".." is resolved lexically against the root, so "/../x" escapes just as "../x" does.
	rel := path.Clean(strings.TrimLeft(p, "/"))
	switch {
	case rel == ".":
		return "", &EntryError{Path: p, Reason: "names the layer root, not an entry", Err: ErrInvalidPath}
	case rel == ".." || strings.HasPrefix(rel, "../"):
		return "", &EntryError{Path: p, Reason: "escapes the layer root", Err: ErrInvalidPath}
	}
	return rel, nil
}

// parents returns the directories above a clean path, outermost first: "a/b/c" gives "a",
// "a/b".
func parents(p string) []string {
	var dirs []string
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			dirs = append(dirs, p[:i])
		}
	}
	return dirs
}
