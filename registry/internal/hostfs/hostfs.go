package hostfs

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/opendao/dao/internal/errclass"
)

// Host files that a LayerBuilder reads, and layout files that layout.Read reads, are opened
// without following symbolic links on any component of the path below the directory they
// are opened from, so that a link put there after the file was found (a race with whoever
// else writes the directory) cannot lead the read to another file of the host. The open is
// one openat2 call with RESOLVE_NO_SYMLINKS (Linux 5.6 and later); where openat2 is missing
// or refused (an older kernel, a seccomp filter), the path is walked one component at a
// time with openat and O_NOFOLLOW, which refuses the same links.

// openat2Missing is set once openat2 turned out unavailable: a fact of the kernel, learnt
// once for the process; tests choose the walk with Opener.Walk instead of changing it.
var openat2Missing atomic.Bool

// ErrSymlink is the error of an open that met a symbolic link. Its class is
// errdefs.ErrFailedPrecondition.
var ErrSymlink = errclass.New(errdefs.ErrFailedPrecondition, "a path component is a symbolic link, which is not followed")

// Opener opens files as OpenNoFollow does. Its zero value uses openat2 where the kernel has
// it; Walk makes it open each path by the walk that replaces openat2 on kernels without it,
// for the tests of the packages that use this one.
type Opener struct {
	Walk bool
}

// OpenNoFollow opens path, relative to the directory dirfd (or absolute with unix.AT_FDCWD),
// with flags (O_CLOEXEC and O_NOFOLLOW are added), following no symbolic link on the way,
// and, if beneath, refusing a path that leaves dirfd's directory (".." or an absolute path).
// Errors are *fs.PathError values naming name; an unfollowed link's wraps ErrSymlink.
func OpenNoFollow(dirfd int, path, name string, flags int, beneath bool) (*os.File, error) {
	return Opener{}.Open(dirfd, path, name, flags, beneath)
}

// Open is OpenNoFollow, by the walk if o.Walk.
func (o Opener) Open(dirfd int, path, name string, flags int, beneath bool) (*os.File, error) {
	flags |= unix.O_CLOEXEC | unix.O_NOFOLLOW
	if !o.Walk && !openat2Missing.Load() {
		how := unix.OpenHow{Flags: uint64(flags), Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
		if beneath {
			how.Resolve |= unix.RESOLVE_BENEATH
		}
		for range 16 {
			fd, err := unix.Openat2(dirfd, path, &how)
			switch {
			case err == nil:
				return os.NewFile(uintptr(fd), name), nil
			case err == unix.EINTR || err == unix.EAGAIN: // EAGAIN: a rename raced the lookup
				continue
			case err == unix.ENOSYS || err == unix.EPERM || err == unix.E2BIG:
				openat2Missing.Store(true)
			default:
				return nil, OpenError(name, err)
			}
			break
		}
	}
	return OpenWalk(dirfd, path, name, flags, beneath)
}

// OpenWalk is OpenNoFollow without openat2: it opens each directory of path in turn with
// O_NOFOLLOW, then the last component.
func OpenWalk(dirfd int, path, name string, flags int, beneath bool) (*os.File, error) {
	if strings.HasPrefix(path, "/") {
		if beneath {
			return nil, OpenError(name, unix.EXDEV)
		}
		fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, OpenError(name, err)
		}
		defer unix.Close(fd)
		dirfd = fd
	}
	parts := strings.FieldsFunc(path, func(r rune) bool { return r == '/' })
	if len(parts) == 0 {
		parts = []string{"."}
	}
	cur := dirfd
	defer func() {
		if cur != dirfd {
			unix.Close(cur)
		}
	}()
	for i, p := range parts {
		if p == ".." && beneath {
			return nil, OpenError(name, unix.EXDEV)
		}
		if i == len(parts)-1 {
			fd, err := OpenatRetry(cur, p, flags)
			if err != nil {
				return nil, OpenError(name, err)
			}
			return os.NewFile(uintptr(fd), name), nil
		}
		fd, err := OpenatRetry(cur, p, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC)
		if err == unix.ENOTDIR {
			// Not a directory: a link (which O_NOFOLLOW refused to follow) or a file.
			var st unix.Stat_t
			if unix.Fstatat(cur, p, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
				err = unix.ELOOP
			}
		}
		if err != nil {
			return nil, OpenError(name, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			unix.Close(fd)
			if err == nil {
				err = unix.ELOOP // O_PATH|O_NOFOLLOW opened a link rather than failing
			}
			return nil, OpenError(name, err)
		}
		if cur != dirfd {
			unix.Close(cur)
		}
		cur = fd
	}
	panic("unreachable")
}

func OpenatRetry(dirfd int, path string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, path, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// openError turns an open's errno into a *fs.PathError, with ErrSymlink for a link met.
func OpenError(name string, err error) error {
	switch err {
	case unix.ELOOP:
		err = fmt.Errorf("%w (%w)", ErrSymlink, err)
	case unix.EXDEV:
		err = fmt.Errorf("the path leads out of its directory (%w)", err)
	}
	return &fs.PathError{Op: "open", Path: name, Err: err}
}

// FileID is a file's identity and type, as fstat tells them.
type FileID struct {
	dev, ino uint64
	mode     uint32 // st_mode: type and permission bits
	Size     int64  // st_size
}

// statFile returns f's identity.
func StatFile(f *os.File) (FileID, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return FileID{}, &fs.PathError{Op: "stat", Path: f.Name(), Err: err}
	}
	return FileID{dev: uint64(st.Dev), ino: uint64(st.Ino), mode: st.Mode, Size: st.Size}, nil
}

// statAt returns the identity of name in the directory dirfd, not following a link.
func StatAt(dirfd int, name, hostPath string) (FileID, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return FileID{}, &fs.PathError{Op: "lstat", Path: hostPath, Err: err}
	}
	return FileID{dev: uint64(st.Dev), ino: uint64(st.Ino), mode: st.Mode, Size: st.Size}, nil
}

func (id FileID) IsDir() bool     { return id.mode&unix.S_IFMT == unix.S_IFDIR }
func (id FileID) IsRegular() bool { return id.mode&unix.S_IFMT == unix.S_IFREG }
func (id FileID) IsSymlink() bool { return id.mode&unix.S_IFMT == unix.S_IFLNK }
func (id FileID) Same(o FileID) bool {
	return id.dev == o.dev && id.ino == o.ino && id.mode&unix.S_IFMT == o.mode&unix.S_IFMT
}

// kind names the file type of id for messages.
func (id FileID) Kind() string {
	switch id.mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "regular file"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFLNK:
		return "symbolic link"
	case unix.S_IFIFO:
		return "named pipe"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR:
		return "character device"
	case unix.S_IFBLK:
		return "block device"
	}
	return fmt.Sprintf("file of type %#o", id.mode&unix.S_IFMT)
}

// fileMode returns the permission, setuid, setgid and sticky bits of id as an fs.FileMode.
func (id FileID) FileMode() fs.FileMode {
	m := fs.FileMode(id.mode & 0o777)
	if id.mode&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if id.mode&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if id.mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// ReadFileFlags open a file to read without blocking on a named pipe or taking a terminal:
// what is opened is checked to be a regular file before a byte is read.
const ReadFileFlags = unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY

// absPath returns path absolute and clean, with the symbolic links it names resolved.
func AbsPath(path string) (string, error) {
	p, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", err
	}
	return filepath.Abs(p)
}
