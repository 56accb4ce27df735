package build

import (
	"archive/tar"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/opendao/dao/registry/internal/hostfs"
	"golang.org/x/sys/unix"
)

// LayerBuilder collects files, directories and links and builds them into one layer.
//
// Layers are reproducible: Build writes the entries sorted by path, every entry with the same
// modification time and with the owner 0:0 unless WithOwner or Chown says otherwise, and no
// user or group names, so the same entries always give the same digests. Parent directories
// are created implicitly (mode 0755, owner 0:0). Paths are slash-separated and relative to the
// layer root; a leading "/" is dropped, and a path that ".." would lead out of the root is
// refused. Adding an entry at a path that already holds one replaces it (a directory keeps
// the entries below it), as a later layer would. No path may have an element that starts
// with ".wh.": unpackers read such a name as a whiteout, a deletion of what lower layers
// hold there, so AddWhiteout and AddOpaqueWhiteout are the only ways to write one.
//
// Host files are found when they are added and read when Build runs. Build opens each
// without following a symbolic link on any component of its path (below the directory of an
// AddHostTree, or from the root of the host for AddHostFile) and only if it is still the
// file that was added: the same regular file (device and inode), not a link, pipe, device or
// other file put in its place since. Otherwise Build fails naming the entry, rather than
// read, say, a host secret that a link placed meanwhile leads to, or wait forever on a pipe.
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
	data     []byte    // content of a regular file given as bytes
	host     *hostFile // host file that holds a regular file's content, read at Build
	link     string    // symlink target as given, or clean path of a hard link's target
	whiteout bool      // a whiteout file (AddWhiteout, AddOpaqueWhiteout)
}

// hostFile is a host file as an Add found it, for Build to open again and check.
type hostFile struct {
	// tree is the AddHostTree directory the file is in; nil for AddHostFile.
	tree *hostTree
	// path is the file's path relative to tree's root, or absolute (links resolved) without
	// a tree.
	path string
	id   hostfs.FileID
}

// hostTree is the host directory of an AddHostTree, links resolved.
type hostTree struct {
	root string
	id   hostfs.FileID
}

// name is the file's host path, for messages.
func (h *hostFile) name() string {
	if h.tree == nil {
		return h.path
	}
	return h.tree.root + "/" + h.path
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
func NewLayerBuilder(opts ...Option) (*LayerBuilder, error) {
	o := defaultLayerOptions()
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("%w: nil option", ErrInvalidOption)
		}
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
	return b.record(b.put(name, &entry{typ: tar.TypeReg, mode: mode, data: data}, ""))
}

// AddHostFile adds a regular file whose content is copied from hostPath when Build runs, with
// the host file's permission bits. The host file's owner is not copied. Symbolic links in
// hostPath are followed now, once: Build reads the file they led to, and fails if another
// file, or a link, has taken its place since.
func (b *LayerBuilder) AddHostFile(name, hostPath string) error {
	return b.record(b.addHostFile(name, hostPath))
}

// AddDir adds a directory with the given permission bits, or sets them on a directory that
// is already there.
func (b *LayerBuilder) AddDir(name string, mode fs.FileMode) error {
	return b.record(b.put(name, &entry{typ: tar.TypeDir, mode: mode}, ""))
}

// AddSymlink adds a symbolic link to target, stored as given: an absolute target is resolved
// inside the container's root filesystem when the link is followed, not in the layer.
func (b *LayerBuilder) AddSymlink(name, target string) error {
	if target == "" || strings.IndexByte(target, 0) >= 0 {
		return b.record(&EntryError{Path: name, Reason: fmt.Sprintf("symbolic link target %q is empty or has a NUL byte", target), Err: ErrInvalidEntry})
	}
	return b.record(b.put(name, &entry{typ: tar.TypeSymlink, mode: 0o777, link: target}, ""))
}

// AddHardlink adds a hard link to target, a regular file (or hard link) already in the
// builder. The link and its target are one file: they share content, mode and owner.
func (b *LayerBuilder) AddHardlink(name, target string) error {
	return b.record(b.addHardlink(name, target))
}

// AddHostTree adds the directory tree at hostDir under prefix ("" or "/" for the layer root):
// its directories, regular files (read when Build runs) and symbolic links (not followed),
// with their permission bits but not their owners. Symbolic links in hostDir itself are
// followed, now. Other file types, such as devices, pipes and sockets, and names that start
// with ".wh.", are refused. A hard-linked host file becomes independent copies. The tree is
// read through directory handles that follow no link, so a directory replaced by a link
// while it is read is refused, not followed.
func (b *LayerBuilder) AddHostTree(prefix, hostDir string) error {
	return b.record(b.addHostTree(prefix, hostDir))
}

// AddWhiteout adds a whiteout of name: unpacked over lower layers, this layer deletes what
// they hold at name (a directory with everything below it). It is written as the empty file
// ".wh.<base>" beside name, as the OCI image specification says.
func (b *LayerBuilder) AddWhiteout(name string) error {
	p, err := cleanPath(name)
	if err == nil {
		err = checkNotWhiteout(name, p)
	}
	if err != nil {
		return b.record(err)
	}
	return b.record(b.put(name, &entry{typ: tar.TypeReg, whiteout: true}, path.Join(path.Dir(p), whiteoutPrefix+path.Base(p))))
}

// AddOpaqueWhiteout makes the directory dir opaque: unpacked over lower layers, this layer
// hides everything they hold below dir, and dir holds only what this layer puts there. It is
// written as the empty file ".wh..wh..opq" in dir, as the OCI image specification says; dir
// is created (mode 0755) if the builder has no entry there.
func (b *LayerBuilder) AddOpaqueWhiteout(dir string) error {
	p, err := cleanPath(dir)
	if err == nil {
		err = checkNotWhiteout(dir, p)
	}
	if err != nil {
		return b.record(err)
	}
	return b.record(b.put(dir, &entry{typ: tar.TypeReg, whiteout: true}, path.Join(p, whiteoutOpaque)))
}

// checkNotWhiteout refuses p, the clean path of the entry name, if an element of it is a
// whiteout's name.
func checkNotWhiteout(name, p string) error {
	for _, elem := range strings.Split(p, "/") {
		if strings.HasPrefix(elem, whiteoutPrefix) {
			return &EntryError{Path: name, Reason: fmt.Sprintf("%q starts with %q, which unpackers take for a whiteout (a deletion): use AddWhiteout or AddOpaqueWhiteout for one", elem, whiteoutPrefix), Err: ErrInvalidPath}
		}
	}
	return nil
}

// Whiteout names, as the OCI image specification gives them.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = whiteoutPrefix + whiteoutPrefix + ".opq"
)

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
// A whiteout entry gives its clean path as wh, and name is the path the caller gave.
func (b *LayerBuilder) put(name string, e *entry, wh string) error {
	const allowed = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky
	if e.mode&^allowed != 0 {
		return &EntryError{Path: name, Reason: fmt.Sprintf("mode %v has bits other than permissions, setuid, setgid and sticky", e.mode), Err: ErrInvalidEntry}
	}
	p := wh
	if p == "" {
		var err error
		if p, err = cleanPath(name); err != nil {
			return err
		}
	}
	checked := p
	if e.whiteout {
		checked = path.Dir(p)
	}
	if err := checkNotWhiteout(name, checked); err != nil {
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
	if te == nil || te.typ != tar.TypeReg || te.whiteout {
		return &EntryError{Path: name, Reason: fmt.Sprintf("hard link target %q is not a regular file in the layer", target), Err: ErrInvalidEntry}
	}
	if p, _ := cleanPath(name); p == t {
		return &EntryError{Path: name, Reason: "hard link to itself", Err: ErrInvalidEntry}
	}
	return b.put(name, &entry{typ: tar.TypeLink, link: t}, "")
}

func (b *LayerBuilder) addHostFile(name, hostPath string) error {
	abs, err := hostfs.AbsPath(hostPath)
	if err != nil {
		return fmt.Errorf("registry: layer entry %q: %w", name, err)
	}
	f, err := b.opts.open.Open(unix.AT_FDCWD, abs, abs, unix.O_PATH, false)
	if err != nil {
		return fmt.Errorf("registry: layer entry %q: %w", name, err)
	}
	id, err := hostfs.StatFile(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("registry: layer entry %q: %w", name, err)
	}
	if !id.IsRegular() {
		return &EntryError{Path: name, Reason: fmt.Sprintf("host file %s is a %s, not a regular file", hostPath, id.Kind()), Err: ErrInvalidEntry}
	}
	return b.put(name, &entry{typ: tar.TypeReg, mode: id.FileMode(), host: &hostFile{path: abs, id: id}}, "")
}

func (b *LayerBuilder) addHostTree(prefix, hostDir string) error {
	if _, err := cleanPath(prefix); err != nil && strings.Trim(prefix, "/") != "" {
		return err
	}
	root, err := hostfs.AbsPath(hostDir)
	if err != nil {
		return fmt.Errorf("registry: layer entry %q: %w", prefix, err)
	}
	dir, err := b.opts.open.Open(unix.AT_FDCWD, root, root, hostfs.ReadFileFlags, false)
	if err != nil {
		return fmt.Errorf("registry: layer entry %q: %w", prefix, err)
	}
	defer dir.Close()
	id, err := hostfs.StatFile(dir)
	if err != nil {
		return fmt.Errorf("registry: layer entry %q: %w", prefix, err)
	}
	if !id.IsDir() {
		return &EntryError{Path: prefix, Reason: fmt.Sprintf("host path %s is not a directory", hostDir), Err: ErrInvalidEntry}
	}
	tree := &hostTree{root: root, id: id}
	return b.walkHostDir(tree, dir, strings.Trim(prefix, "/"), "")
}

// walkHostDir adds the entries of dir, the directory rel (relative to tree's root, "" for
// the root), under prefix.
func (b *LayerBuilder) walkHostDir(tree *hostTree, dir *os.File, prefix, rel string) error {
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("registry: add host tree %s: %w", tree.root, err)
	}
	sort.Strings(names)
	fd := int(dir.Fd())
	for _, n := range names {
		hrel := path.Join(rel, n)
		hp := tree.root + "/" + hrel
		name := path.Join(prefix, hrel)
		id, err := hostfs.StatAt(fd, n, hp)
		if err != nil {
			return fmt.Errorf("registry: layer entry %q: %w", name, err)
		}
		switch {
		case id.IsDir():
			if err := b.put(name, &entry{typ: tar.TypeDir, mode: id.FileMode()}, ""); err != nil {
				return err
			}
			if b.opts.walkHook != nil {
				b.opts.walkHook(hrel)
			}
			sub, err := b.opts.open.Open(fd, n, hp, hostfs.ReadFileFlags, true)
			if err == nil {
				var got hostfs.FileID
				if got, err = hostfs.StatFile(sub); err == nil && !got.Same(id) {
					err = &EntryError{Path: name, Reason: fmt.Sprintf("host directory %s was replaced by another while it was read", hp), Err: ErrInvalidEntry}
				}
				if err == nil {
					err = b.walkHostDir(tree, sub, prefix, hrel)
				}
				sub.Close()
			}
			if err != nil {
				var ee *EntryError
				if errors.As(err, &ee) {
					return err
				}
				if errors.Is(err, hostfs.ErrSymlink) {
					return &EntryError{Path: name, Reason: fmt.Sprintf("host directory %s was replaced by a symbolic link while it was read (links are not followed)", hp), Err: ErrInvalidEntry}
				}
				return fmt.Errorf("registry: layer entry %q: %w", name, err)
			}
		case id.IsRegular():
			if err := b.put(name, &entry{typ: tar.TypeReg, mode: id.FileMode(), host: &hostFile{tree: tree, path: hrel, id: id}}, ""); err != nil {
				return err
			}
		case id.IsSymlink():
			target, err := readlinkAt(fd, n)
			if err != nil {
				return fmt.Errorf("registry: layer entry %q: %w", name, &fs.PathError{Op: "readlink", Path: hp, Err: err})
			}
			if err := b.put(name, &entry{typ: tar.TypeSymlink, mode: 0o777, link: target}, ""); err != nil {
				return err
			}
		default:
			return &EntryError{Path: name, Reason: fmt.Sprintf("host file %s is a %s, which a layer cannot hold", hp, id.Kind()), Err: ErrInvalidEntry}
		}
	}
	return nil
}

// readlinkAt reads the target of the symbolic link name in the directory dirfd.
func readlinkAt(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}
