package ctrd

import (
	"fmt"
	"maps"
	"time"

	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	refname "github.com/opendao/dao/registry/name"
)

// Option configures Pull and Import. Each With function says which of the two it applies to
// (the other ignores it) and what its default is. A bad value makes Pull or Import fail, before
// anything is fetched or written, with an error that names the option and matches
// ErrInvalidOption (of class dao.ErrInvalid).
type Option func(*options) error

type options struct {
	platform    ocispec.Platform
	unpack      bool
	snapshotter string
	name        string
	concurrency int
	labels      map[string]string
	keep        time.Duration
	// unpackLimit is WithUnpackLimit's; 0 for the default.
	unpackLimit int64

	// content says where layer blobs go: contentAuto, contentAPI or a directory taken for
	// the root of containerd's local content store (for tests).
	content string
	// directHook, if not nil, is told of each blob written directly and whether containerd
	// saw it in its store (for tests).
	directHook func(d digest.Digest, shared bool)
}

// DefaultSnapshotter is the snapshotter WithUnpack("") names, and the one Pull unpacks into
// by default.
const DefaultSnapshotter = "overlayfs"

// Values of options.content other than a directory.
const (
	// contentAuto writes layer blobs directly into containerd's local content store when
	// the pull can (findLocalStore), through the content API otherwise.
	contentAuto = ""
	// contentAPI writes every blob through the content API.
	contentAPI = "api"
)

// withContent sets options.content and directHook, for tests.
func withContent(content string, hook func(d digest.Digest, shared bool)) Option {
	return func(o *options) error {
		o.content, o.directHook = content, hook
		return nil
	}
}

func pullDefaults() options {
	return options{
		platform:    platforms.DefaultSpec(),
		unpack:      true,
		snapshotter: DefaultSnapshotter,
		concurrency: 3,
		keep:        24 * time.Hour,
	}
}

func importDefaults() options {
	return options{platform: platforms.DefaultSpec(), snapshotter: DefaultSnapshotter}
}

// apply applies opts to o.
func (o *options) apply(opts []Option) error {
	for _, opt := range opts {
		if opt == nil {
			return fmt.Errorf("%w: nil option", ErrInvalidOption)
		}
		if err := opt(o); err != nil {
			return err
		}
	}
	return nil
}

// WithPlatform chooses, of an index, the image for p (as oci.SelectPlatform does): the one
// that Pull fetches and unpacks, the one that Import unpacks. Pull also refuses to unpack an
// image (not an index) whose config says it is for another platform. It applies to Pull and
// Import; the default is the platform of the host. p needs an OS and an architecture.
func WithPlatform(p ocispec.Platform) Option {
	return func(o *options) error {
		if p.OS == "" || p.Architecture == "" {
			return fmt.Errorf("%w: WithPlatform(%q): needs an OS and an architecture", ErrInvalidOption, platforms.Format(p))
		}
		o.platform = platforms.Normalize(p)
		return nil
	}
}

// WithUnpack unpacks the image into the named snapshotter, so that containers can start from
// it at once; "" names DefaultSnapshotter ("overlayfs"). It applies to Pull, which unpacks
// into DefaultSnapshotter by default, and to Import, which by default does not unpack
// (containerd then unpacks when a container is first created from the image).
func WithUnpack(snapshotter string) Option {
	return func(o *options) error {
		if snapshotter == "" {
			snapshotter = DefaultSnapshotter
		}
		o.unpack, o.snapshotter = true, snapshotter
		return nil
	}
}

// WithoutUnpack stores the image's content and record only, unpacking nothing. It applies to
// Pull (whose default is to unpack, see WithUnpack) and Import (whose default it is).
func WithoutUnpack() Option {
	return func(o *options) error {
		o.unpack = false
		return nil
	}
}

// WithName names containerd's image record name instead of the reference normalised
// ("docker.io/library/busybox:latest"). It applies to Pull (Import takes the name as an
// argument); the default is the normalised reference. name must be an image reference
// (name.ErrInvalidName otherwise).
func WithName(name string) Option {
	return func(o *options) error {
		if err := refname.Validate(name); err != nil {
			return fmt.Errorf("WithName: %w", err)
		}
		o.name = name
		return nil
	}
}

// WithConcurrency fetches up to n layers at once. Layers are started in order, so that the
// unpacking, which goes from the bottom layer up, has its next layer first. It applies to
// Pull; the default is 3, and n must be at least 1.
func WithConcurrency(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("%w: WithConcurrency(%d): want at least 1", ErrInvalidOption, n)
		}
		o.concurrency = n
		return nil
	}
}

// WithLabels sets the labels of containerd's image record. It applies to Pull and Import;
// the default is none. A label may not have an empty key.
func WithLabels(labels map[string]string) Option {
	return func(o *options) error {
		for k := range labels {
			if k == "" {
				return fmt.Errorf("%w: WithLabels: a label with an empty key", ErrInvalidOption)
			}
		}
		o.labels = maps.Clone(labels)
		return nil
	}
}

// WithKeep sets how long what a failed or cancelled pull committed (blobs, unpacked layers)
// is kept under a lease, so that the next pull of the image reuses it instead of fetching it
// again; containerd's garbage collector takes it afterwards. A pull that succeeds releases
// the leases of earlier failed pulls of the same name at once. It applies to Pull; the
// default is 24 hours, as containerd keeps partial ingests; 0 releases at once, and d may
// not be negative.
func WithKeep(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("%w: WithKeep(%v): negative", ErrInvalidOption, d)
		}
		o.keep = d
		return nil
	}
}

// Default unpack limit of a pull (WithUnpackLimit): defaultUnpackRatio times the
// compressed size of the layers, and at least defaultUnpackFloor.
const (
	defaultUnpackRatio = 100
	defaultUnpackFloor = 1 << 30
)

// WithUnpackLimit sets the most bytes the layers of a pull may unpack to: both their tar
// streams decompressed and the sizes of the files these hold, summed over the layers the
// pull unpacks. It is checked as the layers are decompressed and before each file is
// written, so that a decompression bomb (a small blob that inflates to more than the disk
// holds, or a tar of sparse files) fails the pull with an error matching oci.ErrTooLarge as
// soon as it passes the limit, and the snapshot it was unpacked into is removed. It applies
// to Pull. The default is 100 times the compressed size of the layers, or 1 GiB if that is
// more: real layers compress far less than a hundredfold, so only a layer of little but
// zeros (a bomb, or a preallocated disk image) meets it. math.MaxInt64 sets no limit; n must
// be positive. The limit applies where Pull extracts layers itself (containerd on this host,
// the process root); through containerd's diff service, containerd extracts them.
func WithUnpackLimit(n int64) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("%w: WithUnpackLimit(%d): want a positive number of bytes", ErrInvalidOption, n)
		}
		o.unpackLimit = n
		return nil
	}
}

// WithDirectContent says whether Pull may write layer blobs straight into containerd's local
// content store (the default, true): it does so only when containerd runs on this host,
// exports the store's directory and this process is root outside a user namespace, and it
// verifies every blob before naming it in the store and tells containerd of it through the
// content API. false sends every byte through the content API, as ctr does, at the cost of a
// copy through containerd's socket; choose it where something other than containerd watches
// the store's directory. It applies to Pull.
func WithDirectContent(enabled bool) Option {
	return func(o *options) error {
		if enabled {
			o.content = contentAuto
		} else {
			o.content = contentAPI
		}
		return nil
	}
}
