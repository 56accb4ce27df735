package layout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opendao/dao/registry/internal/hostfs"
	"github.com/opendao/dao/registry/oci"
	"golang.org/x/sys/unix"
)

// Layout is an OCI image layout directory as layout.Read found it.
type Layout struct {
	// Dir is the layout's directory.
	Dir string
	// Entries lists the entries of index.json, in its order.
	Entries []Entry
}

// Entry is one entry of a layout's index.json: a named image or index.
type Entry struct {
	// Name is the entry's io.containerd.image.name annotation, or else its
	// org.opencontainers.image.ref.name annotation, or else "".
	Name string
	// Descriptor is the entry as index.json lists it, annotations included.
	Descriptor ocispec.Descriptor
	// Artifact is the image (*oci.Image) or index (*oci.Index) the entry describes.
	Artifact oci.Artifact
}

// Read reads the OCI image layout in dir: the oci-layout file, index.json, and every
// manifest, index and config these lead to, which it verifies against their descriptors.
// Layer blobs must be present with the right size; their content is verified as it is read
// through oci.Layer.Open, which then fails with oci.ErrDigestMismatch.
//
// Its files are opened without following a symbolic link below dir (a link to dir itself is
// followed), and must be regular files: a link or a named pipe in the layout is an error
// matching ErrInvalidLayout, so that a layout cannot lead its reader (and PushLayout, the
// registry it pushes to) to another file of the host. A layer is opened again as it was
// found when its Open is called.
//
// It accepts OCI and Docker schema 2 manifests and indexes, and an index only of manifests.
// A missing blob is an error matching oci.ErrBlobNotFound; a blob that does not match its
// descriptor, oci.ErrDigestMismatch; anything else wrong with the layout, ErrInvalidLayout or
// oci.ErrInvalidImage. Every such error names the blob or file.
func Read(ctx context.Context, dir string) (*Layout, error) {
	return read(ctx, dir, hostfs.Opener{})
}

// read is Read, opening files with op.
func read(ctx context.Context, dir string, op hostfs.Opener) (*Layout, error) {
	if err := checkLayoutFile(op, dir); err != nil {
		return nil, err
	}
	index, err := readIndexJSON(op, dir)
	if err != nil {
		return nil, err
	}
	r := layoutReader{dir: dir, op: op}
	l := &Layout{Dir: dir}
	for _, desc := range index.Manifests {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("registry: read layout %s: %w", dir, err)
		}
		a, err := r.artifact(desc)
		if err != nil {
			return nil, err
		}
		name := desc.Annotations[oci.AnnotationImageName]
		if name == "" {
			name = desc.Annotations[ocispec.AnnotationRefName]
		}
		l.Entries = append(l.Entries, Entry{Name: name, Descriptor: desc, Artifact: a})
	}
	return l, nil
}

// Find returns the artifact whose io.containerd.image.name or
// org.opencontainers.image.ref.name annotation is name. If several are, the last one wins,
// as a later write would have replaced the others. It fails with ErrNotFound if none is.
func (l *Layout) Find(name string) (oci.Artifact, error) {
	for i := len(l.Entries) - 1; i >= 0; i-- {
		a := l.Entries[i].Descriptor.Annotations
		if a[oci.AnnotationImageName] == name || a[ocispec.AnnotationRefName] == name {
			return l.Entries[i].Artifact, nil
		}
	}
	return nil, fmt.Errorf("%w: no image %q in layout %s", ErrNotFound, name, l.Dir)
}

// maxLayoutFile is the largest oci-layout file read.
const maxLayoutFile = 64 << 10

// openLayoutFile opens the regular file rel (slash-separated) of the layout in dir, following
// no symbolic link below dir (one to dir itself is followed), so that a layout cannot lead
// its reader to a file elsewhere on the host, nor make it wait on a named pipe.
func openLayoutFile(op hostfs.Opener, dir, rel string) (*os.File, hostfs.FileID, error) {
	file := filepath.Join(dir, filepath.FromSlash(rel))
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, hostfs.FileID{}, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(dfd)
	f, err := op.Open(dfd, rel, file, hostfs.ReadFileFlags, true)
	if err != nil {
		if errors.Is(err, hostfs.ErrSymlink) {
			return nil, hostfs.FileID{}, fmt.Errorf("%w: %v", ErrInvalidLayout, err)
		}
		return nil, hostfs.FileID{}, err
	}
	id, err := hostfs.StatFile(f)
	if err == nil && !id.IsRegular() {
		err = fmt.Errorf("%w: %s is a %s, not a regular file", ErrInvalidLayout, file, id.Kind())
	}
	if err != nil {
		f.Close()
		return nil, hostfs.FileID{}, err
	}
	return f, id, nil
}

// readLayoutFile reads the file rel of the layout in dir, of at most limit bytes.
func readLayoutFile(op hostfs.Opener, dir, rel string, limit int64) ([]byte, error) {
	f, id, err := openLayoutFile(op, dir, rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if id.Size > limit {
		return nil, fmt.Errorf("%w: %w: %s has %d bytes, more than the %d allowed", ErrInvalidLayout, oci.ErrTooLarge, f.Name(), id.Size, limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(data)) > limit {
		err = fmt.Errorf("%w: %w: %s grew past the %d bytes allowed", ErrInvalidLayout, oci.ErrTooLarge, f.Name(), limit)
	}
	return data, err
}

// checkLayoutFile checks that dir's oci-layout file names a layout version 1.x.
func checkLayoutFile(op hostfs.Opener, dir string) error {
	file := filepath.Join(dir, ocispec.ImageLayoutFile)
	data, err := readLayoutFile(op, dir, ocispec.ImageLayoutFile, maxLayoutFile)
	if err != nil {
		if errors.Is(err, ErrInvalidLayout) {
			return err
		}
		return fmt.Errorf("%w: %v", ErrInvalidLayout, err)
	}
	var l ocispec.ImageLayout
	if err := json.Unmarshal(data, &l); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalidLayout, file, err)
	}
	if !strings.HasPrefix(l.Version, "1.") {
		return fmt.Errorf("%w: %s: unsupported layout version %q", ErrInvalidLayout, file, l.Version)
	}
	return nil
}

// readIndexJSON reads dir's index.json, or returns an empty index if there is none.
func readIndexJSON(op hostfs.Opener, dir string) (ocispec.Index, error) {
	file := filepath.Join(dir, ocispec.ImageIndexFile)
	index := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	data, err := readLayoutFile(op, dir, ocispec.ImageIndexFile, oci.MaxDocumentSize)
	if errors.Is(err, fs.ErrNotExist) {
		return index, nil
	}
	if errors.Is(err, ErrInvalidLayout) {
		return index, err
	}
	if err != nil {
		return index, fmt.Errorf("%w: %v", ErrInvalidLayout, err)
	}
	if err := json.Unmarshal(data, &index); err != nil {
		return index, fmt.Errorf("%w: %s: %v", ErrInvalidLayout, file, err)
	}
	if index.SchemaVersion != 2 {
		return index, fmt.Errorf("%w: %s: schema version %d, want 2", ErrInvalidLayout, file, index.SchemaVersion)
	}
	return index, nil
}

// layoutReader loads images and indexes from a layout's blobs.
type layoutReader struct {
	dir string
	op  hostfs.Opener
}

// artifact loads the image or index desc describes.
func (r layoutReader) artifact(desc ocispec.Descriptor) (oci.Artifact, error) {
	switch desc.MediaType {
	case ocispec.MediaTypeImageManifest, oci.MediaTypeDockerManifest:
		return r.image(desc)
	case ocispec.MediaTypeImageIndex, oci.MediaTypeDockerManifestList:
		return r.index(desc)
	}
	return nil, fmt.Errorf("%w: %s in %s: unsupported media type %q", ErrInvalidLayout, desc.Digest, r.dir, desc.MediaType)
}

// image loads a manifest, its config and its layers.
func (r layoutReader) image(desc ocispec.Descriptor) (*oci.Image, error) {
	manifest, err := r.document(desc)
	if err != nil {
		return nil, err
	}
	var m ocispec.Manifest
	if err := decode(manifest, &m, desc.MediaType); err != nil {
		return nil, err
	}
	config, err := r.document(m.Config)
	if err != nil {
		return nil, err
	}
	var c ocispec.Image
	if err := json.Unmarshal(config.Data(), &c); err != nil {
		return nil, fmt.Errorf("%w: config %s: %v", oci.ErrInvalidImage, m.Config.Digest, err)
	}
	if len(c.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("%w: manifest %s has %d layers but its config lists %d diff IDs", oci.ErrInvalidImage, desc.Digest, len(m.Layers), len(c.RootFS.DiffIDs))
	}
	platform := c.Platform
	if desc.Platform != nil {
		platform = *desc.Platform
	}
	var layers []*oci.Layer
	for i, ld := range m.Layers {
		b, err := r.blob(ld)
		if err != nil {
			return nil, err
		}
		layers = append(layers, oci.NewLayer(ld, c.RootFS.DiffIDs[i], b.Open))
	}
	return oci.ImageOf(manifest, config, platform, layers), nil
}

// index loads an index and the images it lists.
func (r layoutReader) index(desc ocispec.Descriptor) (*oci.Index, error) {
	doc, err := r.document(desc)
	if err != nil {
		return nil, err
	}
	var index ocispec.Index
	if err := decode(doc, &index, desc.MediaType); err != nil {
		return nil, err
	}
	var images []*oci.Image
	for _, md := range index.Manifests {
		if md.MediaType != ocispec.MediaTypeImageManifest && md.MediaType != oci.MediaTypeDockerManifest {
			return nil, fmt.Errorf("%w: index %s lists %s of unsupported media type %q", ErrInvalidLayout, desc.Digest, md.Digest, md.MediaType)
		}
		img, err := r.image(md)
		if err != nil {
			return nil, err
		}
		images = append(images, img)
	}
	return oci.IndexOf(doc, images), nil
}

// document reads and verifies a manifest, index or config.
func (r layoutReader) document(desc ocispec.Descriptor) (*oci.Bytes, error) {
	b, err := r.blob(desc)
	if err != nil {
		return nil, err
	}
	data, err := oci.ReadAll(b, oci.MaxDocumentSize)
	if err != nil {
		return nil, blobError("read", desc, err)
	}
	return oci.BytesOf(ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}, data), nil
}

// blob returns the layout's blob for desc after checking that it is there with desc's size.
// Reading it verifies its content.
func (r layoutReader) blob(desc ocispec.Descriptor) (oci.Blob, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("%w: blob %q: %v", ErrInvalidLayout, desc.Digest, err)
	}
	f, id, err := openLayoutFile(r.op, r.dir, blobPath(desc))
	if err == nil {
		f.Close()
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: blob %s (%s) is not in %s", oci.ErrBlobNotFound, desc.Digest, desc.MediaType, r.dir)
	case err != nil:
		return nil, fmt.Errorf("registry: blob %s: %w", desc.Digest, err)
	case id.Size != desc.Size:
		return nil, fmt.Errorf("%w: blob %s (%s): file has %d bytes, descriptor says %d", oci.ErrDigestMismatch, desc.Digest, desc.MediaType, id.Size, desc.Size)
	}
	return &fileBlob{desc: desc, dir: r.dir, op: r.op, id: id}, nil
}

// decode decodes a manifest or index and checks that its mediaType field, if any, agrees
// with the descriptor that led to it.
func decode(doc *oci.Bytes, v any, mediaType string) error {
	if err := json.Unmarshal(doc.Data(), v); err != nil {
		return fmt.Errorf("%w: %s: %v", oci.ErrInvalidImage, doc.Descriptor().Digest, err)
	}
	var head struct {
		MediaType string `json:"mediaType"`
	}
	_ = json.Unmarshal(doc.Data(), &head)
	if head.MediaType != "" && head.MediaType != mediaType {
		return fmt.Errorf("%w: %s: media type %q, but its descriptor says %q", oci.ErrInvalidImage, doc.Descriptor().Digest, head.MediaType, mediaType)
	}
	return nil
}

// fileBlob is a blob in a layout; reading it verifies it. Open opens it as layout.Read found
// it, or fails: no link below the layout's directory is followed.
type fileBlob struct {
	desc ocispec.Descriptor
	dir  string
	op   hostfs.Opener
	id   hostfs.FileID
}

func (b *fileBlob) Descriptor() ocispec.Descriptor { return b.desc }

func (b *fileBlob) Open() (io.ReadCloser, error) {
	f, id, err := openLayoutFile(b.op, b.dir, blobPath(b.desc))
	if err == nil && !id.Same(b.id) {
		f.Close()
		err = fmt.Errorf("%w: %s was replaced since the layout was read", ErrInvalidLayout, f.Name())
	}
	if err != nil {
		return nil, fmt.Errorf("registry: open blob %s: %w", b.desc.Digest, err)
	}
	return oci.Verify(f, b.desc), nil
}
