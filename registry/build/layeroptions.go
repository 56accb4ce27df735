package build

import (
	"fmt"
	"os"
	"time"

	"github.com/opendao/dao/registry/internal/hostfs"
)

// Option configures a LayerBuilder.
type Option func(*layerOptions) error

type layerOptions struct {
	compression Compression
	modTime     time.Time
	uid, gid    int
	tempDir     string

	// open opens host files; open.Walk is set by tests (withOpenWalk).
	open hostfs.Opener
	// walkHook, if not nil, is called before AddHostTree opens a directory below its root,
	// with the directory's path relative to the root, for tests (withWalkHook).
	walkHook func(rel string)
}

func defaultLayerOptions() layerOptions {
	return layerOptions{compression: Gzip, modTime: time.Unix(0, 0).UTC()}
}

// WithCompression sets how the layer's tar stream is compressed. The default is Gzip.
func WithCompression(c Compression) Option {
	return func(o *layerOptions) error {
		if c.MediaType() == "" {
			return fmt.Errorf("%w: WithCompression: unknown compression %v", ErrInvalidOption, c)
		}
		o.compression = c
		return nil
	}
}

// WithModTime sets the modification time of every entry, truncated to the second. The
// default is the Unix epoch, 1970-01-01T00:00:00Z, so that a layer's digest depends only on
// its content; times before the epoch are refused.
func WithModTime(t time.Time) Option {
	return func(o *layerOptions) error {
		if t.Before(time.Unix(0, 0)) {
			return fmt.Errorf("%w: WithModTime: modification time %v is before the Unix epoch", ErrInvalidOption, t)
		}
		o.modTime = t.Truncate(time.Second).UTC()
		return nil
	}
}

// WithOwner sets the numeric user and group that own the entries added to the builder; Chown
// changes single entries. Directories that the builder creates implicitly as parents always
// belong to 0:0. The default is 0:0; negative IDs are refused.
func WithOwner(uid, gid int) Option {
	return func(o *layerOptions) error {
		if uid < 0 || gid < 0 {
			return fmt.Errorf("%w: WithOwner: owner %d:%d is negative", ErrInvalidOption, uid, gid)
		}
		o.uid, o.gid = uid, gid
		return nil
	}
}

// WithTempDir sets the directory in which Build writes the temporary files that hold layer
// blobs until Layer.Close. Build unlinks each file at once, so none is left behind even by a
// crash; the space is used until the layer is closed. The default is os.TempDir(); the
// directory must exist.
func WithTempDir(dir string) Option {
	return func(o *layerOptions) error {
		fi, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("%w: WithTempDir: temporary directory: %v", ErrInvalidOption, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("%w: WithTempDir: temporary directory %s is not a directory", ErrInvalidOption, dir)
		}
		o.tempDir = dir
		return nil
	}
}

// withOpenWalk makes the builder open host files without openat2, as on kernels that lack
// it, for tests.
func withOpenWalk() Option {
	return func(o *layerOptions) error {
		o.open.Walk = true
		return nil
	}
}

// withWalkHook makes AddHostTree call hook before it opens each directory below its root,
// with the directory's path relative to the root, for tests.
func withWalkHook(hook func(rel string)) Option {
	return func(o *layerOptions) error {
		o.walkHook = hook
		return nil
	}
}
