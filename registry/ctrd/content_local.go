package ctrd

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/containerd/containerd/v2/client"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opendao/dao/registry/oci"
	"golang.org/x/sys/unix"
)

// localStore is the directory of containerd's local content store ("content" plugin of type
// io.containerd.content.v1), written directly by this process: a blob lives at
// blobs/<algorithm>/<encoded digest> under root, as containerd's own store names it, and
// containerd serves any file there as the blob of that digest. Pull writes a layer blob into
// an unnamed file of the store's filesystem, hashing it in this process as it arrives, and
// links it into place only once its digest and size are verified; containerd's metadata
// then learns of it through the content API (see puller.register), without reading or
// hashing a byte of it.
type localStore struct {
	root string
}

// findLocalStore returns the local content store of the containerd behind cc when this
// process can write it itself: containerd exports the store's root, the directory is here,
// and the process is root outside a user namespace. It returns nil otherwise. A daemon on
// another host whose store's path happens to exist here too is found out when the first
// blob is registered (containerd does not see it), and the pull goes on through the API.
func findLocalStore(ctx context.Context, cc *client.Client) *localStore {
	if os.Geteuid() != 0 || inUserNS() {
		return nil
	}
	resp, err := cc.IntrospectionService().Plugins(ctx, "type==io.containerd.content.v1,id==content")
	if err != nil || len(resp.Plugins) != 1 {
		return nil
	}
	return openLocalStore(resp.Plugins[0].Exports["root"])
}

// openLocalStore returns the store at root, or nil if root is not the directory of one.
func openLocalStore(root string) *localStore {
	if !filepath.IsAbs(root) {
		return nil
	}
	// containerd makes ingest/ when it opens the store.
	if fi, err := os.Stat(filepath.Join(root, "ingest")); err != nil || !fi.IsDir() {
		return nil
	}
	return &localStore{root: root}
}

// localBlob is a blob being written into a localStore: an unnamed file in the store's
// ingest directory (O_TMPFILE), which is freed if the process dies before link names it.
type localBlob struct {
	s    *localStore
	desc ocispec.Descriptor
	f    *os.File
	h    hash.Hash
	n    int64
}

// create starts a blob of desc.
func (s *localStore) create(desc ocispec.Descriptor) (*localBlob, error) {
	if !desc.Digest.Algorithm().Available() {
		return nil, fmt.Errorf("%w: digest algorithm of %s", oci.ErrInvalidImage, desc.Digest)
	}
	dir := filepath.Join(s.root, "ingest")
	// The mode is containerd's for an ingest's data; link makes it read-only as containerd's
	// commit does.
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o666)
	if err != nil {
		// EOPNOTSUPP or EISDIR where the filesystem cannot make unnamed files.
		return nil, fmt.Errorf("registry: create a blob in %s: %w", dir, err)
	}
	return &localBlob{s: s, desc: desc, f: os.NewFile(uintptr(fd), filepath.Join(dir, "(unnamed)")), h: desc.Digest.Algorithm().Hash()}, nil
}

// Write appends p to the blob and to its hash.
func (b *localBlob) Write(p []byte) (int, error) {
	n, err := b.f.Write(p)
	b.h.Write(p[:n])
	b.n += int64(n)
	return n, err
}

// verify checks the blob written so far against its descriptor.
func (b *localBlob) verify() error {
	if b.n != b.desc.Size {
		return fmt.Errorf("%w: %d bytes written of the %d the descriptor says", oci.ErrSizeMismatch, b.n, b.desc.Size)
	}
	if got := digest.NewDigest(b.desc.Digest.Algorithm(), b.h); got != b.desc.Digest {
		return fmt.Errorf("%w: unexpected commit digest %s, expected %s", oci.ErrDigestMismatch, got, b.desc.Digest)
	}
	return nil
}

// link verifies the blob, makes it durable and read-only, and names it in the store, as
// containerd's commit of an ingest does (fsync of the data, then rename; no fsync of the
// directory). A blob the store has already is left as it is: either is verified content of
// the digest.
func (b *localBlob) link() error {
	if err := b.verify(); err != nil {
		return err
	}
	if err := b.f.Sync(); err != nil {
		return fmt.Errorf("registry: sync blob %s: %w", b.desc.Digest, err)
	}
	fi, err := b.f.Stat()
	if err != nil {
		return err
	}
	if err := b.f.Chmod(fi.Mode().Perm() &^ 0o333); err != nil {
		return err
	}
	target := b.s.path(b.desc.Digest)
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	fd := int(b.f.Fd())
	err = unix.Linkat(fd, "", unix.AT_FDCWD, target, unix.AT_EMPTY_PATH)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EPERM) {
		// AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; the file's /proc link does not.
		err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.AT_FDCWD, target, unix.AT_SYMLINK_FOLLOW)
	}
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("registry: link blob %s into %s: %w", b.desc.Digest, target, err)
	}
	return nil
}

// dup returns another file of the blob, for reading.
func (b *localBlob) dup() (*os.File, error) {
	fd, err := unix.FcntlInt(b.f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), b.f.Name()), nil
}

// reader returns a reader of the first n bytes of the blob.
func (b *localBlob) reader(n int64) io.Reader { return io.NewSectionReader(b.f, 0, n) }

// close frees the file; a blob not linked is gone.
func (b *localBlob) close() { b.f.Close() }

// path is where the store keeps the blob of d.
func (s *localStore) path(d digest.Digest) string {
	return filepath.Join(s.root, "blobs", d.Algorithm().String(), d.Encoded())
}
