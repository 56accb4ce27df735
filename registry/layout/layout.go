package layout

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opendao/dao/registry/internal/ctxio"
	"github.com/opendao/dao/registry/internal/hostfs"
	refname "github.com/opendao/dao/registry/name"

	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/oci"
)

// Write writes a into the OCI image layout in dir under name, creating the layout if
// dir holds none: the oci-layout file, every blob under blobs/<algorithm>/<hex>, and an entry
// in index.json whose org.opencontainers.image.ref.name and io.containerd.image.name
// annotations are name. An entry of the same name that index.json already lists is
// replaced; blobs already present are kept. Each blob is verified against its descriptor as
// it is copied, and each file is written atomically.
func Write(ctx context.Context, dir, name string, a oci.Artifact) error {
	if err := refname.Validate(name); err != nil {
		return err
	}
	if err := initLayout(dir); err != nil {
		return err
	}
	for _, b := range a.Blobs() {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("registry: write layout: %w", err)
		}
		if err := writeLayoutBlob(ctx, dir, b); err != nil {
			return err
		}
	}
	index, err := readIndexJSON(hostfs.Opener{}, dir)
	if err != nil {
		return err
	}
	index.Manifests = slices.DeleteFunc(index.Manifests, func(d ocispec.Descriptor) bool {
		return d.Annotations[ocispec.AnnotationRefName] == name || d.Annotations[oci.AnnotationImageName] == name
	})
	index.Manifests = append(index.Manifests, layoutDescriptor(name, a))
	data, err := json.Marshal(index)
	if err != nil {
		return fmt.Errorf("registry: encode index.json: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, ocispec.ImageIndexFile), writeBytes(data))
}

// WriteTar writes a as a tar stream of an OCI image layout that holds only a, under
// name, as layout.Write would write it into an empty directory; `ctr images import` accepts
// it. The tar is reproducible: entries in a fixed order, with fixed times and owners.
func WriteTar(ctx context.Context, w io.Writer, name string, a oci.Artifact) error {
	if err := refname.Validate(name); err != nil {
		return err
	}
	index, err := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{layoutDescriptor(name, a)},
	})
	if err != nil {
		return fmt.Errorf("registry: encode index.json: %w", err)
	}
	layout, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return fmt.Errorf("registry: encode oci-layout: %w", err)
	}
	blobs := a.Blobs()
	slices.SortFunc(blobs, func(x, y oci.Blob) int {
		return strings.Compare(blobPath(x.Descriptor()), blobPath(y.Descriptor()))
	})
	var dirs []string
	for _, b := range blobs {
		if d := path.Dir(blobPath(b.Descriptor())) + "/"; !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}

	tw := tar.NewWriter(w)
	header := func(name string, typ byte, mode, size int64) error {
		return tw.WriteHeader(&tar.Header{Name: name, Typeflag: typ, Mode: mode, Size: size, ModTime: time.Unix(0, 0)})
	}
	if err := header(ocispec.ImageBlobsDir+"/", tar.TypeDir, 0o755, 0); err != nil {
		return fmt.Errorf("registry: write layout tar: %w", err)
	}
	for _, d := range dirs {
		if err := header(d, tar.TypeDir, 0o755, 0); err != nil {
			return fmt.Errorf("registry: write layout tar: %w", err)
		}
	}
	for _, b := range blobs {
		desc := b.Descriptor()
		if err := header(blobPath(desc), tar.TypeReg, 0o644, desc.Size); err != nil {
			return fmt.Errorf("registry: write layout tar: %w", err)
		}
		if err := copyBlob(ctx, tw, b); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{ocispec.ImageIndexFile, index}, {ocispec.ImageLayoutFile, layout}} {
		if err := header(f.name, tar.TypeReg, 0o644, int64(len(f.data))); err != nil {
			return fmt.Errorf("registry: write layout tar: %w", err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return fmt.Errorf("registry: write layout tar: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("registry: write layout tar: %w", err)
	}
	return nil
}

// layoutDescriptor is a's entry in index.json: its descriptor annotated with name.
func layoutDescriptor(name string, a oci.Artifact) ocispec.Descriptor {
	d := a.Descriptor()
	d.Annotations = maps.Clone(d.Annotations)
	if d.Annotations == nil {
		d.Annotations = make(map[string]string)
	}
	d.Annotations[ocispec.AnnotationRefName] = name
	d.Annotations[oci.AnnotationImageName] = name
	return d
}

// blobPath is where a layout keeps the blob desc describes, relative to the layout's root.
// The digest must be valid (desc.Digest.Validate), so that the path stays inside the layout.
func blobPath(desc ocispec.Descriptor) string {
	return path.Join(ocispec.ImageBlobsDir, desc.Digest.Algorithm().String(), desc.Digest.Encoded())
}

// initLayout creates dir and its oci-layout file, or checks the file if it is there.
func initLayout(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, ocispec.ImageBlobsDir), 0o755); err != nil {
		return fmt.Errorf("registry: write layout: %w", err)
	}
	_, err := os.Stat(filepath.Join(dir, ocispec.ImageLayoutFile))
	if err == nil {
		return checkLayoutFile(hostfs.Opener{}, dir)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("registry: write layout: %w", err)
	}
	data, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return fmt.Errorf("registry: encode oci-layout: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, ocispec.ImageLayoutFile), writeBytes(data))
}

// writeLayoutBlob copies b into the layout unless a file of its size is already there.
func writeLayoutBlob(ctx context.Context, dir string, b oci.Blob) error {
	desc := b.Descriptor()
	if err := desc.Digest.Validate(); err != nil {
		return fmt.Errorf("%w: blob %q: %v", oci.ErrInvalidImage, desc.Digest, err)
	}
	file := filepath.Join(dir, filepath.FromSlash(blobPath(desc)))
	if fi, err := os.Stat(file); err == nil && fi.Size() == desc.Size {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return fmt.Errorf("registry: write layout: %w", err)
	}
	return writeFileAtomic(file, func(w io.Writer) error { return copyBlob(ctx, w, b) })
}

// copyBlob copies b to w, verifying it against its descriptor.
func copyBlob(ctx context.Context, w io.Writer, b oci.Blob) error {
	desc := b.Descriptor()
	r, err := b.Open()
	if err != nil {
		return fmt.Errorf("registry: open blob %s: %w", desc.Digest, err)
	}
	defer r.Close()
	_, err = io.Copy(w, ctxio.Reader(ctx, oci.Verify(r, desc)))
	return blobError("copy", desc, err)
}

// blobError adds the blob's digest to err, unless err is nil or already names the blob.
func blobError(op string, desc ocispec.Descriptor, err error) error {
	if err == nil || errors.Is(err, oci.ErrDigestMismatch) || errors.Is(err, oci.ErrInvalidImage) {
		return err
	}
	return fmt.Errorf("registry: %s blob %s: %w", op, desc.Digest, err)
}

// writeBytes returns a function that writes data, for writeFileAtomic.
func writeBytes(data []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}
}

// writeFileAtomic writes a temporary file beside name with write and renames it to name.
// Errors from write are returned as they are.
func writeFileAtomic(name string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-"+filepath.Base(name)+"-*")
	if err != nil {
		return fmt.Errorf("registry: write %s: %w", name, err)
	}
	if err := write(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	err = f.Close()
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("registry: write %s: %w", name, err)
	}
	return nil
}
