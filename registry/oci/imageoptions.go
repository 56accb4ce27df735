package oci

import (
	"fmt"
	"maps"
	"runtime"
	"time"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImageOption configures NewImage.
type ImageOption func(*imageOptions) error

type imageOptions struct {
	platform    ocispec.Platform
	created     *time.Time
	history     []ocispec.History
	annotations map[string]string
}

func defaultImageOptions() imageOptions {
	return imageOptions{platform: platforms.Normalize(ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH})}
}

// WithPlatform sets the platform the image runs on. OS and Architecture are required; the
// platform is normalised ("x86_64" becomes "amd64"). The default is linux on the
// architecture the program was compiled for (runtime.GOARCH).
func WithPlatform(p ocispec.Platform) ImageOption {
	return func(o *imageOptions) error {
		if p.OS == "" || p.Architecture == "" {
			return fmt.Errorf("%w: WithPlatform: platform %q needs an OS and an architecture", ErrInvalidOption, platforms.Format(p))
		}
		o.platform = platforms.Normalize(p)
		return nil
	}
}

// WithCreated sets the image's creation time, in the config and in the history entries that
// NewImage generates. The default is no time at all, so that the image's digest depends only
// on its content.
func WithCreated(t time.Time) ImageOption {
	return func(o *imageOptions) error {
		if t.IsZero() {
			return fmt.Errorf("%w: WithCreated: zero creation time", ErrInvalidOption)
		}
		t = t.UTC()
		o.created = &t
		return nil
	}
}

// WithHistory sets the config's history: the entries that are not marked EmptyLayer must
// match the layers one for one, which NewImage checks. The default is one entry per layer,
// created by "github.com/opendao/dao/registry".
func WithHistory(h ...ocispec.History) ImageOption {
	return func(o *imageOptions) error {
		o.history = append([]ocispec.History(nil), h...)
		return nil
	}
}

// WithAnnotations sets the manifest's annotations. The default is none.
func WithAnnotations(a map[string]string) ImageOption {
	return func(o *imageOptions) error {
		for k := range a {
			if k == "" {
				return fmt.Errorf("%w: WithAnnotations: annotation with an empty key", ErrInvalidOption)
			}
		}
		o.annotations = maps.Clone(a)
		return nil
	}
}
