package registry

import (
	"archive/tar"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// LayerBuilder collects files, directories and links and builds them into one layer.
//
// Layers are reproducible: Build writes the entries sorted by path, every entry with the same
// modification time and with the owner 0:0 unless WithOwner or Chown says otherwise, and no
// user or group names, so the same entries always give the same digests. Parent directories
// are created implicitly (mode 0755, owner 0:0). Paths are slash-separated and relative to the
// layer root; a leading "/" is dropped, and a path that ".." would lead out of the root is
// refused. Adding an entry at a path that already holds one replaces it (a directory keeps
// the entries below it), as a later layer would.
//
// Each Add method (and Chown) reports its own error, and Build fails with the first of them,
// so a series of Adds may be checked once at Build; a builder that reported an error cannot
// build any more. Errors about entries are *EntryError values; errors
// reading host files wrap the *fs.PathError of the host file.
//
// A LayerBuilder is not safe for simultaneous use.
type LayerBuilder struct {
	opts    layerOptions
	entries map[string]*entry
	err     error
}

// entry is one item of a layer, stored under its clean path.
type entry struct {
	typ      byte        // tar.TypeReg, TypeDir, TypeSymlink or TypeLink
	mode     fs.FileMode // permission bits with setuid, setgid and sticky
	uid, gid int
	data     []byte // content of a regular file given as bytes
	host     string // host file that holds a regular file's content, read at Build
	link     string // symlink target as given, or clean path of a hard link's target
}

// kind names an entry's type for error messages.
func (e *entry) kind() string {
	switch e.typ {
	case tar.TypeDir:
		return "directory"
	case tar.TypeSymlink:
		return "symbolic link"
	case tar.TypeLink:
		return "hard link"
	}
	return "regular file"
}

// NewLayerBuilder returns an empty builder.
func NewLayerBuilder(opts ...LayerOption) (*LayerBuilder, error) {
	o := defaultLayerOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	return &LayerBuilder{opts: o, entries: make(map[string]*entry)}, nil
}

// AddFile adds a regular file with the given permission bits (setuid, setgid and sticky
// included) and content. The builder keeps data itself, not a copy: do not modify it while
// the builder may still build.
func (b *LayerBuilder) AddFile(name string, mode fs.FileMode, data []byte) error {
	return b.record(b.put(name, &entry{typ: tar.TypeReg, mode: mode, data: data}))
}

// AddHostFile adds a regular file whose content is copied from hostPath when Build runs, with
// the host file's permission bits. The host file's owner is not copied. A symbolic link at
// hostPath is followed.
func (b *LayerBuilder) AddHostFile(name, hostPath string) error {
	return b.record(b.addHostFile(name, hostPath))
}

// AddDir adds a directory with the given permission bits, or sets them on a directory that
// is already there.
func (b *LayerBuilder) AddDir(name string, mode fs.FileMode) error {
	return b.record(b.put(name, &entry{typ: tar.TypeDir, mode: mode}))
}

// AddSymlink adds a symbolic link to target, stored as given: an absolute target is resolved
// inside the container's root filesystem when the link is followed, not in the layer.
func (b *LayerBuilder) AddSymlink(name, target string) error {
	if target == "" || strings.IndexByte(target, 0) >= 0 {
		return b.record(&EntryError{Path: name, Reason: fmt.Sprintf("symbolic link target %q is empty or has a NUL byte", target), Err: ErrInvalidEntry})
	}
	return b.record(b.put(name, &entry{typ: tar.TypeSymlink, mode: 0o777, link: target}))
}

// AddHardlink adds a hard link to target, a regular file (or hard link) already in the
// builder. The link and its target are one file: they share content, mode and owner.
func (b *LayerBuilder) AddHardlink(name, target string) error {
	return b.record(b.addHardlink(name, target))
}

// AddHostTree adds the directory tree at hostDir under prefix ("" or "/" for the layer root):
// its directories, regular files (read when Build runs) and symbolic links (not followed),
// with their permission bits but not their owners. Other file types, such as devices and
// sockets, are refused. A hard-linked host file becomes independent copies.
func (b *LayerBuilder) AddHostTree(prefix, hostDir string) error {
	return b.record(b.addHostTree(prefix, hostDir))
}

// Chown sets the numeric owner of the entry at name. For a hard link it sets the owner of the
// file it shares with its target.
func (b *LayerBuilder) Chown(name string, uid, gid int) error {
	p, err := cleanPath(name)
	if err != nil {
		return b.record(err)
	}
	e := b.entries[p]
	switch {
	case e == nil:
		return b.record(&EntryError{Path: name, Reason: "no such entry", Err: ErrInvalidEntry})
	case uid < 0 || gid < 0:
		return b.record(&EntryError{Path: name, Reason: fmt.Sprintf("owner %d:%d is negative", uid, gid), Err: ErrInvalidEntry})
	case e.typ == tar.TypeLink:
		e = b.entries[e.link]
		if e == nil {
			return b.record(&EntryError{Path: name, Reason: "hard link target is gone", Err: ErrInvalidEntry})
		}
	}
	e.uid, e.gid = uid, gid
	return nil
}

// record remembers the first error for Build and returns err.
func (b *LayerBuilder) record(err error) error {
	if err != nil && b.err == nil {
		b.err = err
	}
	return err
}

// put stores e at name after checking its mode, path and parents, creating missing parents.
func (b *LayerBuilder) put(name string, e *entry) error {
	const allowed = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky
	if e.mode&^allowed != 0 {
		return &EntryError{Path: name, Reason: fmt.Sprintf("mode %v has bits other than permissions, setuid, setgid and sticky", e.mode), Err: ErrInvalidEntry}
	}
	p, err := cleanPath(name)
	if err != nil {
		return err
	}
	dirs := parents(p)
	for _, dir := range dirs {
		if old := b.entries[dir]; old != nil && old.typ != tar.TypeDir {
			return &EntryError{Path: name, Reason: fmt.Sprintf("parent %q is a %s, not a directory", dir, old.kind()), Err: ErrInvalidEntry}
		}
	}
	old := b.entries[p]
	if old != nil && old.typ == tar.TypeDir && e.typ != tar.TypeDir && b.hasChildren(p) {
		return &EntryError{Path: name, Reason: fmt.Sprintf("cannot replace a directory that has entries below it with a %s", e.kind()), Err: ErrInvalidEntry}
	}
	for _, dir := range dirs {
		if b.entries[dir] == nil {
			b.entries[dir] = &entry{typ: tar.TypeDir, mode: 0o755}
		}
	}
	if e.typ != tar.TypeLink {
		e.uid, e.gid = b.opts.uid, b.opts.gid
	}
	b.entries[p] = e
	return nil
}

// hasChildren reports whether any entry lies below the directory p.
func (b *LayerBuilder) hasChildren(p string) bool {
	prefix := p + "/"
	for name := range b.entries {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

func (b *LayerBuilder) addHardlink(name, target string) error {
	t, err := cleanPath(target)
	if err != nil {
		return err
	}
	te := b.entries[t]
	if te != nil && te.typ == tar.TypeLink { // a link to a link is a link to its file
		t, te = te.link, b.entries[te.link]
	}
	if te == nil || te.typ != tar.TypeReg {
		return &EntryError{Path: name, Reason: fmt.Sprintf("hard link target %q is not a regular file in the layer", target), Err: ErrInvalidEntry}
	}
	if p, _ := cleanPath(name); p == t {
		return &EntryError{Path: name, Reason: "hard link to itself", Err: ErrInvalidEntry}
	}
	return b.put(name, &entry{typ: tar.TypeLink, link: t})
}

func (b *LayerBuilder) addHostFile(name, hostPath string) error {
	fi, err := os.Stat(hostPath)
	if err != nil {
		return fmt.Errorf("registry: layer entry %q: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return &EntryError{Path: name, Reason: fmt.Sprintf("host file %s is not a regular file", hostPath), Err: ErrInvalidEntry}
	}
	return b.put(name, &entry{typ: tar.TypeReg, mode: hostMode(fi.Mode()), host: hostPath})
}

func (b *LayerBuilder) addHostTree(prefix, hostDir string) error {
	root, err := filepath.EvalSymlinks(hostDir)
	if err != nil {
		return fmt.Errorf("registry: layer entry %q: %w", prefix, err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("registry: layer entry %q: %w", prefix, err)
	}
	if !fi.IsDir() {
		return &EntryError{Path: prefix, Reason: fmt.Sprintf("host path %s is not a directory", hostDir), Err: ErrInvalidEntry}
	}
	prefix = strings.Trim(prefix, "/")
	return filepath.WalkDir(root, func(hp string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("registry: add host tree %s: %w", hostDir, err)
		}
		rel, err := filepath.Rel(root, hp)
		if err != nil {
			return err
		}
		name := path.Join(prefix, filepath.ToSlash(rel))
		if name == "." {
			return nil // the layer root itself
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("registry: layer entry %q: %w", name, err)
		}
		switch mode := info.Mode(); {
		case mode.IsDir():
			return b.put(name, &entry{typ: tar.TypeDir, mode: hostMode(mode)})
		case mode.IsRegular():
			return b.put(name, &entry{typ: tar.TypeReg, mode: hostMode(mode), host: hp})
		case mode&fs.ModeSymlink != 0:
			target, err := os.Readlink(hp)
			if err != nil {
				return fmt.Errorf("registry: layer entry %q: %w", name, err)
			}
			return b.put(name, &entry{typ: tar.TypeSymlink, mode: 0o777, link: target})
		default:
			return &EntryError{Path: name, Reason: fmt.Sprintf("host file %s has unsupported type %v", hp, mode.Type()), Err: ErrInvalidEntry}
		}
	})
}

// hostMode keeps the bits of a host file's mode that a layer entry stores.
func hostMode(m fs.FileMode) fs.FileMode {
	return m & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}
