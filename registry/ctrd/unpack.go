package ctrd

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/archive"
	"github.com/containerd/errdefs"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opendao/dao/registry/oci"
)

// Labels the unpacker sets, as containerd's own unpacker does.
const (
	labelGCSnapshot     = "containerd.io/gc.ref.snapshot."
	labelSnapshotParent = "containerd.io/snapshot/parent-chain-id"
)

// unpacker unpacks an image's layers into a snapshotter, one snapshot per layer named by
// its chain ID, from the bottom layer up: a layer's snapshot is prepared on its parent's,
// which must be committed first. Each layer is extracted while its blob is still being
// fetched (from the ingest's tap), and committed once the blob's digest and the layer's
// diff ID are verified.
type unpacker struct {
	p       *puller
	name    string // the snapshotter's
	sn      snapshots.Snapshotter
	layers  []ocispec.Descriptor
	diffIDs []digest.Digest
	chain   []digest.Digest
	// first is the first layer to unpack: those below are unpacked already.
	first int
	// ingests are the fetches of the layers' blobs, by layer.
	ingests []*ingest
	// next is the decoder of layer nextLayer, started ahead while the layer below is
	// extracted; nil if none.
	next      *layerDecoder
	nextLayer int
	// limit is how many bytes the layers may unpack to (WithUnpackLimit); decoded and
	// files count the bytes decompressed and the sizes of the files extracted so far.
	limit          int64
	decoded, files atomic.Int64
}

// newUnpacker checks that the config describes the layers and finds the layers already
// unpacked.
func (p *puller) newUnpacker(ctx context.Context, cfg *ocispec.Image, im *ocispec.Manifest) (*unpacker, error) {
	diffIDs := cfg.RootFS.DiffIDs
	if cfg.RootFS.Type != "layers" || len(diffIDs) != len(im.Layers) {
		return nil, fmt.Errorf("%w: config has %d diff IDs of type %q for %d layers", oci.ErrInvalidImage, len(diffIDs), cfg.RootFS.Type, len(im.Layers))
	}
	for _, d := range diffIDs {
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("%w: diff ID %q: %v", oci.ErrInvalidImage, d, err)
		}
	}
	// A layer that cannot be unpacked is refused before anything is fetched.
	for _, l := range im.Layers {
		if _, err := images.DiffCompression(ctx, l.MediaType); err != nil {
			return nil, fmt.Errorf("%w: layer %s has media type %q, which containerd cannot unpack", oci.ErrInvalidImage, l.Digest, l.MediaType)
		}
	}
	u := &unpacker{
		p:       p,
		name:    p.opts.snapshotter,
		sn:      p.cc.SnapshotService(p.opts.snapshotter),
		layers:  im.Layers,
		diffIDs: diffIDs,
		chain:   chainIDs(diffIDs),
		ingests: make([]*ingest, len(im.Layers)),
	}
	for i := len(u.chain) - 1; i >= 0; i-- {
		_, err := u.sn.Stat(ctx, u.chain[i].String())
		if err == nil {
			u.first = i + 1
			break
		}
		if !errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("snapshot %s in %s: %w", u.chain[i], u.name, err)
		}
	}
	u.limit = unpackLimit(p.opts.unpackLimit, im.Layers[u.first:])
	if u.first > 0 {
		r := leases.Resource{ID: u.chain[u.first-1].String(), Type: "snapshots/" + u.name}
		if err := p.leaseResource(ctx, r); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// unpackLimit is the unpack limit of WithUnpackLimit, or else the default for the
// layers to unpack.
func unpackLimit(opt int64, layers []ocispec.Descriptor) int64 {
	if opt > 0 {
		return opt
	}
	var compressed int64
	for _, l := range layers {
		compressed += l.Size
	}
	if compressed > math.MaxInt64/defaultUnpackRatio {
		return math.MaxInt64
	}
	return max(defaultUnpackFloor, compressed*defaultUnpackRatio)
}

// errUnpackLimit is the error of layers that unpack to more than limit bytes.
func errUnpackLimit(limit int64) error {
	return fmt.Errorf("%w: the layers unpack to more than %d bytes (WithUnpackLimit)", oci.ErrTooLarge, limit)
}

// countFile counts the size of a file that the layer holds against the limit.
func (u *unpacker) countFile(h *tar.Header) (bool, error) {
	if u.files.Add(max(h.Size, 0)) > u.limit {
		return false, fmt.Errorf("%s: %w", h.Name, errUnpackLimit(u.limit))
	}
	return true, nil
}

// readers returns how many of the layers to unpack have the blob of digest d; 0 for a nil
// unpacker.
func (u *unpacker) readers(layers []ocispec.Descriptor, d digest.Digest) int {
	if u == nil {
		return 0
	}
	n := 0
	for _, l := range layers[u.first:] {
		if l.Digest == d {
			n++
		}
	}
	return n
}

// run unpacks the layers from u.first up.
func (u *unpacker) run(ctx context.Context) error {
	defer u.closeNext()
	for i := u.first; i < len(u.layers); i++ {
		if err := u.unpackLayer(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

// unpackLayer unpacks layer i into the snapshot of its chain ID.
func (u *unpacker) unpackLayer(ctx context.Context, i int) error {
	in, desc := u.ingests[i], u.layers[i]
	if in.tap != nil {
		defer in.tap.release()
	}
	chainID := u.chain[i].String()
	parent := ""
	if i > 0 {
		parent = u.chain[i-1].String()
	}
	labels := snapshotLabels(desc, chainID, u.diffIDs[i].String(), parent)
	key := fmt.Sprintf(snapshots.UnpackKeyFormat, uniquePart(), chainID)
	if err := ctx.Err(); err != nil {
		return err
	}
	// Prepare and Commit are not cut short when ctx ends, so that their outcome is known and
	// no snapshot is left behind unknown.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	mounts, err := u.sn.Prepare(pctx, key, parent, snapshots.WithLabels(labels))
	cancel()
	if errdefs.IsAlreadyExists(err) {
		if _, serr := u.sn.Stat(ctx, chainID); serr == nil {
			// Unpacked meanwhile by another pull.
			return in.wait(ctx)
		}
	}
	if err != nil {
		return fmt.Errorf("prepare snapshot of layer %s: %w", desc.Digest, err)
	}
	active := true
	defer func() {
		if active {
			u.remove(ctx, key)
		}
	}()

	diffID, err := u.apply(ctx, i, in, mounts)
	// Only a verified blob's snapshot is committed; and when the extraction failed, a blob
	// that turns out bad is the cause to report.
	if ierr := in.wait(ctx); ierr != nil {
		return ierr
	}
	if err != nil {
		return fmt.Errorf("unpack layer %s: %w", desc.Digest, err)
	}
	if diffID != u.diffIDs[i] {
		return fmt.Errorf("%w: layer %s has diff ID %s, the config says %s", oci.ErrInvalidImage, desc.Digest, diffID, u.diffIDs[i])
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	err = u.sn.Commit(cctx, chainID, key, snapshots.WithLabels(labels))
	cancel()
	if err != nil && !errdefs.IsAlreadyExists(err) {
		return fmt.Errorf("commit snapshot of layer %s: %w", desc.Digest, err)
	}
	active = err != nil // committed meanwhile by another pull: ours goes
	info := content.Info{Digest: desc.Digest, Labels: map[string]string{labelUncompressed: diffID.String()}}
	if _, err := u.p.cs.Update(ctx, info, "labels."+labelUncompressed); err != nil {
		return fmt.Errorf("label layer %s: %w", desc.Digest, err)
	}
	return nil
}

// remove removes an active snapshot, even when ctx has ended. One that cannot be removed is
// held only by the pull's lease, and containerd's collector takes it when the lease ends.
func (u *unpacker) remove(ctx context.Context, key string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_ = whileRestarting(rctx, func() error { return u.sn.Remove(rctx, key) })
}

// apply extracts layer i, whose blob in fetches, into the active snapshot of mounts and
// returns the diff ID. When the snapshot's directory is reachable here it extracts there,
// from the ingest's tap as the blob arrives, or from the content store, and starts decoding
// the layer above meanwhile; otherwise containerd's diff service extracts the committed
// blob.
func (u *unpacker) apply(ctx context.Context, i int, in *ingest, mounts []mount.Mount) (digest.Digest, error) {
	root, parents, overlay, ok := localTarget(mounts)
	if !ok {
		if err := in.wait(ctx); err != nil {
			return "", err
		}
		d, err := u.p.cc.DiffService().Apply(ctx, in.desc, mounts)
		if err != nil {
			return "", err
		}
		return d.Digest, nil
	}
	dec := u.decoder(ctx, i)
	defer dec.Close()
	if i+1 < len(u.layers) {
		u.next, u.nextLayer = u.decode(ctx, u.ingests[i+1], u.diffIDs[i+1].Algorithm()), i+1
	}
	return extract(ctx, dec, root, parents, overlay, u.countFile)
}

// decoder returns the decoder of layer i: the one started ahead, or a new one.
func (u *unpacker) decoder(ctx context.Context, i int) *layerDecoder {
	if dec := u.next; dec != nil && u.nextLayer == i {
		u.next = nil
		return dec
	}
	u.closeNext()
	return u.decode(ctx, u.ingests[i], u.diffIDs[i].Algorithm())
}

// closeNext stops the decoder started ahead, if any.
func (u *unpacker) closeNext() {
	if u.next != nil {
		u.next.Close()
		u.next = nil
	}
}

// extract extracts the uncompressed layer that dec reads into root, converting whiteouts
// for overlayfs if overlay (with parents, the lower directories, for the attributes of
// directories the layer implies), and asking filter about each entry first. It returns the
// digest of the uncompressed stream.
func extract(ctx context.Context, dec *layerDecoder, root string, parents []string, overlay bool, filter archive.Filter) (digest.Digest, error) {
	opts := []archive.ApplyOpt{archive.WithFilter(filter)}
	if overlay {
		opts = append(opts, archive.WithConvertWhiteout(archive.OverlayConvertWhiteout))
		if len(parents) > 0 {
			opts = append(opts, archive.WithParents(parents))
		}
	}
	if _, err := archive.Apply(ctx, root, dec, opts...); err != nil {
		return "", err
	}
	// What follows the tar's end belongs to the diff ID too, and the decompressor checks
	// its trailer at the end.
	if _, err := io.Copy(io.Discard, dec); err != nil {
		return "", err
	}
	return dec.Digest(), nil
}

// decompress returns a reader of the layer blob of mediaType in r, uncompressed.
func decompress(mediaType string, r *bufio.Reader) (io.ReadCloser, error) {
	comp, err := images.DiffCompression(context.Background(), mediaType)
	if err != nil {
		return nil, fmt.Errorf("%w: layer media type %q", oci.ErrInvalidImage, mediaType)
	}
	if comp == "unknown" { // a Docker layer type that may or may not be compressed
		comp = ""
		if magic, _ := r.Peek(4); len(magic) >= 3 && magic[0] == 0x1f && magic[1] == 0x8b && magic[2] == 8 {
			comp = "gzip"
		} else if len(magic) == 4 && string(magic) == "\x28\xb5\x2f\xfd" {
			comp = "zstd"
		}
	}
	switch comp {
	case "gzip":
		return gzip.NewReader(r)
	case "zstd":
		zr, err := zstd.NewReader(r)
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	case "":
		return io.NopCloser(r), nil
	}
	return nil, fmt.Errorf("%w: layer media type %q: unsupported compression %q", oci.ErrInvalidImage, mediaType, comp)
}

// localTarget returns the directory that the only mount of mounts makes writable, when this
// process can write there itself: the upper directory of an overlay (overlay true, with the
// lower directories as parents) or the source of a bind mount, on this host, as root and
// outside a user namespace.
func localTarget(mounts []mount.Mount) (root string, parents []string, overlay, ok bool) {
	if len(mounts) != 1 || os.Geteuid() != 0 || inUserNS() {
		return "", nil, false, false
	}
	m := mounts[0]
	switch m.Type {
	case "overlay":
		for _, o := range m.Options {
			if v, found := strings.CutPrefix(o, "upperdir="); found {
				root = v
			} else if v, found := strings.CutPrefix(o, "lowerdir="); found {
				parents = strings.Split(v, ":")
			}
		}
		overlay = true
	case "bind":
		for _, o := range m.Options {
			if o == "ro" {
				return "", nil, false, false
			}
		}
		root = m.Source
	}
	if root == "" {
		return "", nil, false, false
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return "", nil, false, false
	}
	return root, parents, overlay, true
}

// inUserNS reports whether the process runs in a user namespace, where the character devices
// of overlayfs whiteouts cannot be made (as github.com/moby/sys/userns tells it).
var inUserNS = sync.OnceValue(func() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) != 3 || f[0] != "0" || f[1] != "0" || f[2] != "4294967295"
})

// snapshotLabels are the labels of a layer's snapshot, as containerd's unpacker sets them:
// those the layer's annotations pass on (less ID mappings, which an image must not choose),
// the chain ID, the diff ID and the parent's chain ID.
func snapshotLabels(desc ocispec.Descriptor, chainID, diffID, parent string) map[string]string {
	labels := snapshots.FilterInheritedLabels(desc.Annotations)
	if labels == nil {
		labels = make(map[string]string)
	}
	delete(labels, snapshots.LabelSnapshotUIDMapping)
	delete(labels, snapshots.LabelSnapshotGIDMapping)
	labels[snapshots.LabelSnapshotRef] = chainID
	labels[snapshots.LabelSnapshotDiffID] = diffID
	if parent != "" {
		labels[labelSnapshotParent] = parent
	}
	return labels
}

// labelConfig ties the image config to the top snapshot, so that containerd's garbage
// collector keeps the unpacked layers while the image is kept, and containerd knows the
// image is unpacked.
func (u *unpacker) labelConfig(ctx context.Context, config ocispec.Descriptor) error {
	if len(u.chain) == 0 {
		return nil
	}
	key := labelGCSnapshot + u.name
	info := content.Info{Digest: config.Digest, Labels: map[string]string{key: u.chain[len(u.chain)-1].String()}}
	if _, err := u.p.cs.Update(ctx, info, "labels."+key); err != nil {
		return fmt.Errorf("label config %s: %w", config.Digest, err)
	}
	return nil
}

// uniquePart makes extraction snapshot keys unique, as containerd's unpacker does.
func uniquePart() string {
	var b [3]byte
	rand.Read(b[:])
	return fmt.Sprintf("%d-%s", time.Now().Nanosecond(), base64.URLEncoding.EncodeToString(b[:]))
}
