package registry

import (
	"fmt"
	"time"

	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PullOption configures Pull.
type PullOption func(*pullOptions) error

type pullOptions struct {
	platform    ocispec.Platform
	snapshotter string // "" for no unpack
	name        string
	concurrency int
	labels      map[string]string
	keep        time.Duration
	// unpackLimit is WithPullUnpackLimit's; 0 for the default.
	unpackLimit int64

	// content says where layer blobs go: contentAuto, contentAPI or a directory taken for
	// the root of containerd's local content store (for tests).
	content string
	// directHook, if not nil, is told of each blob written directly and whether containerd
	// saw it in its store (for tests).
	directHook func(d digest.Digest, shared bool)
}

// Values of pullOptions.content other than a directory.
const (
	// contentAuto writes layer blobs directly into containerd's local content store when
	// the pull can (findLocalStore), through the content API otherwise.
	contentAuto = ""
	// contentAPI writes every blob through the content API.
	contentAPI = "api"
)

// withPullContent sets pullOptions.content and directHook, for tests.
func withPullContent(content string, hook func(d digest.Digest, shared bool)) PullOption {
	return func(o *pullOptions) error {
		o.content, o.directHook = content, hook
		return nil
	}
}

func defaultPullOptions() pullOptions {
	return pullOptions{
		platform:    platforms.DefaultSpec(),
		snapshotter: "overlayfs",
		concurrency: 3,
		keep:        24 * time.Hour,
	}
}

// WithPullPlatform pulls, from an index, the image for p (chosen as SelectPlatform does), and
// unpacks only an image for p. The default is the platform of the host.
func WithPullPlatform(p ocispec.Platform) PullOption {
	return func(o *pullOptions) error {
		if p.OS == "" || p.Architecture == "" {
			return fmt.Errorf("%w: platform %q needs an OS and an architecture", ErrInvalidOption, platforms.Format(p))
		}
		o.platform = platforms.Normalize(p)
		return nil
	}
}

// WithPullUnpack unpacks the image into the named snapshotter as it is pulled, so that
// containers can start from it at once; "" pulls the content only. The default is
// "overlayfs".
func WithPullUnpack(snapshotter string) PullOption {
	return func(o *pullOptions) error {
		o.snapshotter = snapshotter
		return nil
	}
}

// WithPullName names containerd's image record name instead of the reference normalised
// ("docker.io/library/busybox:latest"). The default is the normalised reference.
func WithPullName(name string) PullOption {
	return func(o *pullOptions) error {
		if err := checkName(name); err != nil {
			return err
		}
		o.name = name
		return nil
	}
}

// WithPullConcurrency fetches up to n layers at once. Layers are started in order, so that
// the unpacking, which goes from the bottom layer up, has its next layer first. The default
// is 3.
func WithPullConcurrency(n int) PullOption {
	return func(o *pullOptions) error {
		if n < 1 {
			return fmt.Errorf("%w: pull concurrency %d, want at least 1", ErrInvalidOption, n)
		}
		o.concurrency = n
		return nil
	}
}

// WithPullLabels sets the labels of containerd's image record. The default is none.
func WithPullLabels(labels map[string]string) PullOption {
	return func(o *pullOptions) error {
		var imp importOptions
		if err := WithImageLabels(labels)(&imp); err != nil {
			return err
		}
		o.labels = imp.labels
		return nil
	}
}

// WithPullKeep sets how long what a failed or cancelled pull committed (blobs, unpacked
// layers) is kept under a lease, so that the next pull of the image reuses it instead of
// fetching it again; containerd's garbage collector takes it afterwards. A pull that
// succeeds releases the leases of earlier failed pulls of the same name at once. The default
// is 24 hours, as containerd keeps partial ingests; 0 releases at once.
func WithPullKeep(d time.Duration) PullOption {
	return func(o *pullOptions) error {
		if d < 0 {
			return fmt.Errorf("%w: keep %v is negative", ErrInvalidOption, d)
		}
		o.keep = d
		return nil
	}
}

// Default unpack limit of a pull (WithPullUnpackLimit): defaultUnpackRatio times the
// compressed size of the layers, and at least defaultUnpackFloor.
const (
	defaultUnpackRatio = 100
	defaultUnpackFloor = 1 << 30
)

// WithPullUnpackLimit sets the most bytes the layers of a pull may unpack to: both their
// tar streams decompressed and the sizes of the files these hold, summed over the layers
// the pull unpacks. It is checked as the layers are decompressed and before each file is
// written, so that a decompression bomb (a small blob that inflates to more than the disk
// holds, or a tar of sparse files) fails the pull with an error matching ErrTooLarge as
// soon as it passes the limit, and the snapshot it was unpacked into is removed. The
// default is 100 times the compressed size of the layers, or 1 GiB if that is more: real
// layers compress far less than a hundredfold, so only a layer of little but zeros (a bomb,
// or a preallocated disk image) meets it. math.MaxInt64 sets no limit. The limit applies
// where Pull extracts layers itself (containerd on this host, the process root); through
// containerd's diff service, containerd extracts them.
func WithPullUnpackLimit(n int64) PullOption {
	return func(o *pullOptions) error {
		if n <= 0 {
			return fmt.Errorf("%w: unpack limit %d, want a positive number of bytes", ErrInvalidOption, n)
		}
		o.unpackLimit = n
		return nil
	}
}

// WithPullDirectContent says whether Pull may write layer blobs straight into containerd's
// local content store (the default, true): it does so only when containerd runs on this
// host, exports the store's directory and this process is root outside a user namespace,
// and it verifies every blob before naming it in the store and tells containerd of it
// through the content API. false sends every byte through the content API, as ctr does,
// at the cost of a copy through containerd's socket; choose it where something other than
// containerd watches the store's directory.
func WithPullDirectContent(enabled bool) PullOption {
	return func(o *pullOptions) error {
		if enabled {
			o.content = contentAuto
		} else {
			o.content = contentAPI
		}
		return nil
	}
}
