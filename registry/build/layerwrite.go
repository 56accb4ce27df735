package build

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/opendao/dao/registry/internal/ctxio"
	"github.com/opendao/dao/registry/internal/hostfs"
	"github.com/opendao/dao/registry/oci"
)

// Build writes the entries as a tar stream, compresses it and returns the layer. The blob is
// streamed to a temporary file (see WithTempDir) while both digests are computed, so memory
// use does not grow with the layer's size; Layer.Close frees the file. Host files are read
// now. Build fails with the first error an Add reported. It leaves the builder as it was:
// more entries may be added and Build called again.
func (b *LayerBuilder) Build(ctx context.Context) (*oci.Layer, error) {
	if b.err != nil {
		return nil, b.err
	}
	f, err := os.CreateTemp(b.opts.tempDir, "dao-layer-*")
	if err != nil {
		return nil, fmt.Errorf("registry: build layer: %w", err)
	}
	// Unlinked, the file cannot outlive the process, even if the layer is never closed.
	path := f.Name()
	if os.Remove(path) == nil {
		path = ""
	}
	l, err := b.write(ctx, f)
	if err != nil {
		f.Close()
		if path != "" {
			os.Remove(path)
		}
		return nil, err
	}
	return oci.NewFileLayer(l.desc, l.diffID, f, path), nil
}

// write streams tar, then compression, then f, hashing the tar (the diff ID) and the
// compressed blob on the way.
// built is what write made of a layer: its blob's descriptor and its diff ID.
type built struct {
	desc   ocispec.Descriptor
	diffID digest.Digest
}

func (b *LayerBuilder) write(ctx context.Context, f *os.File) (*built, error) {
	blobHash, diffHash := digest.SHA256.Digester(), digest.SHA256.Digester()
	var size countWriter
	buf := bufio.NewWriterSize(io.MultiWriter(f, blobHash.Hash(), &size), 1<<20)
	zw, err := b.opts.compression.compress(buf)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(io.MultiWriter(zw, diffHash.Hash()))
	hosts := hostOpener{fs: b.opts.open, trees: make(map[*hostTree]*os.File)}
	defer hosts.close()
	if err := b.writeEntries(ctx, tw, &hosts); err != nil {
		return nil, err
	}
	for _, c := range []io.Closer{tw, zw} {
		if err := c.Close(); err != nil {
			return nil, fmt.Errorf("registry: build layer: %w", err)
		}
	}
	if err := buf.Flush(); err != nil {
		return nil, fmt.Errorf("registry: build layer: %w", err)
	}
	return &built{
		desc: ocispec.Descriptor{
			MediaType: b.opts.compression.MediaType(),
			Digest:    blobHash.Digest(),
			Size:      int64(size),
		},
		diffID: diffHash.Digest(),
	}, nil
}

// writeEntries writes every entry in path order. Of the paths that share one file through
// hard links, the first in that order carries the content and the others link to it, so
// the archive never links to a file it has not yet written.
func (b *LayerBuilder) writeEntries(ctx context.Context, tw *tar.Writer, hosts *hostOpener) error {
	names := make([]string, 0, len(b.entries))
	for name := range b.entries {
		names = append(names, name)
	}
	sort.Strings(names)

	// first maps a hard-linked file's path to the path that carries its content.
	first := make(map[string]string)
	for _, name := range names {
		e := b.entries[name]
		if e.typ != tar.TypeLink {
			continue
		}
		if t := b.entries[e.link]; t == nil || t.typ != tar.TypeReg {
			return &EntryError{Path: name, Reason: fmt.Sprintf("hard link target %q is no longer a regular file", e.link), Err: ErrInvalidEntry}
		}
		if _, ok := first[e.link]; !ok {
			first[e.link] = min(name, e.link)
		}
	}

	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("registry: build layer: %w", err)
		}
		e, file := b.entries[name], name
		if e.typ == tar.TypeLink {
			file, e = e.link, b.entries[e.link]
		}
		hdr := &tar.Header{
			Name:     name,
			Typeflag: e.typ,
			Mode:     tarMode(e.mode),
			Uid:      e.uid,
			Gid:      e.gid,
			ModTime:  b.opts.modTime,
		}
		switch {
		case e.typ == tar.TypeDir:
			hdr.Name += "/"
		case e.typ == tar.TypeSymlink:
			hdr.Linkname = e.link
		case first[file] != "" && first[file] != name:
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, first[file]
		default:
			if err := writeFile(ctx, tw, hdr, e, hosts); err != nil {
				return err
			}
			continue
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("registry: layer entry %q: %w", name, err)
		}
	}
	return nil
}

// writeFile writes a regular file's header and content, from memory or from the host.
func writeFile(ctx context.Context, tw *tar.Writer, hdr *tar.Header, e *entry, hosts *hostOpener) error {
	if e.host == nil {
		hdr.Size = int64(len(e.data))
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("registry: layer entry %q: %w", hdr.Name, err)
		}
		_, err := tw.Write(e.data)
		return err
	}
	f, size, err := hosts.open(hdr.Name, e.host)
	if err != nil {
		return err
	}
	defer f.Close()
	hdr.Size = size
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("registry: layer entry %q: %w", hdr.Name, err)
	}
	n, err := io.Copy(tw, ctxio.Reader(ctx, io.LimitReader(f, hdr.Size)))
	if err == nil && n < hdr.Size {
		err = fmt.Errorf("host file %s shrank from %d to %d bytes while it was read", e.host.name(), hdr.Size, n)
	}
	if err != nil {
		return fmt.Errorf("registry: layer entry %q: %w", hdr.Name, err)
	}
	return nil
}

// hostOpener opens the host files of one Build, each only if it is still the file that was
// added, reached without following a link. It opens the directory of each AddHostTree once.
type hostOpener struct {
	fs    hostfs.Opener
	trees map[*hostTree]*os.File
}

// open opens h, the host file of the entry name, and returns it with its size.
func (o *hostOpener) open(name string, h *hostFile) (*os.File, int64, error) {
	dirfd, beneath := unix.AT_FDCWD, false
	if h.tree != nil {
		root, err := o.tree(name, h.tree)
		if err != nil {
			return nil, 0, err
		}
		dirfd, beneath = int(root.Fd()), true
	}
	f, err := o.fs.Open(dirfd, h.path, h.name(), hostfs.ReadFileFlags, beneath)
	if err != nil {
		if errors.Is(err, hostfs.ErrSymlink) {
			return nil, 0, &EntryError{Path: name, Reason: fmt.Sprintf("host file %s: %v", h.name(), err), Err: ErrInvalidEntry}
		}
		return nil, 0, fmt.Errorf("registry: layer entry %q: %w", name, err)
	}
	st, err := hostfs.StatFile(f)
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("registry: layer entry %q: %w", name, err)
	}
	if !st.Same(h.id) {
		f.Close()
		what := "another " + st.Kind()
		if !st.IsRegular() {
			what = "a " + st.Kind()
		}
		return nil, 0, &EntryError{Path: name, Reason: fmt.Sprintf("host file %s was replaced by %s since it was added", h.name(), what), Err: ErrInvalidEntry}
	}
	return f, st.Size, nil
}

// tree returns the open directory of t, opened now if it is not yet.
func (o *hostOpener) tree(name string, t *hostTree) (*os.File, error) {
	if f := o.trees[t]; f != nil {
		return f, nil
	}
	f, err := o.fs.Open(unix.AT_FDCWD, t.root, t.root, unix.O_PATH, false)
	if err != nil {
		if errors.Is(err, hostfs.ErrSymlink) {
			return nil, &EntryError{Path: name, Reason: fmt.Sprintf("host directory %s: %v", t.root, err), Err: ErrInvalidEntry}
		}
		return nil, fmt.Errorf("registry: layer entry %q: %w", name, err)
	}
	id, err := hostfs.StatFile(f)
	if err == nil && !id.Same(t.id) {
		what := "another directory"
		if !id.IsDir() {
			what = "a " + id.Kind()
		}
		err = &EntryError{Path: name, Reason: fmt.Sprintf("host directory %s was replaced by %s since it was added", t.root, what), Err: ErrInvalidEntry}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	o.trees[t] = f
	return f, nil
}

func (o *hostOpener) close() {
	for _, f := range o.trees {
		f.Close()
	}
}

// tarMode converts permission, setuid, setgid and sticky bits to a tar header's mode.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

// countWriter counts the bytes written to it.
type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}
