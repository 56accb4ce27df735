package oci

import (
	"fmt"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// SelectPlatform returns the descriptor of index's image manifest that suits platform best,
// as containerd chooses: the same OS and architecture, and the closest compatible variant
// (an arm64 host also takes arm/v8). Among equals the first listed wins. It fails with
// ErrNoPlatform if none suits.
func SelectPlatform(index ocispec.Index, platform ocispec.Platform) (ocispec.Descriptor, error) {
	match := platforms.Only(platform)
	best := -1
	for i, d := range index.Manifests {
		if d.Platform == nil || !IsManifestType(d.MediaType) || !match.Match(*d.Platform) {
			continue
		}
		if best < 0 || match.Less(*d.Platform, *index.Manifests[best].Platform) {
			best = i
		}
	}
	if best < 0 {
		return ocispec.Descriptor{}, fmt.Errorf("%w: %s among %d manifests", ErrNoPlatform, platforms.Format(platform), len(index.Manifests))
	}
	return index.Manifests[best], nil
}
