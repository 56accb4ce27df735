package oci

import ocispec "github.com/opencontainers/image-spec/specs-go/v1"

// Subject returns the manifest's subject, if any.
func (m *Manifest) Subject() *ocispec.Descriptor {
	switch {
	case m.Image != nil:
		return m.Image.Subject
	case m.Index != nil:
		return m.Index.Subject
	}
	return nil
}

// Referrer is the manifest's entry in a referrers index: its descriptor with its artifact
// type (or its config's media type) and its annotations.
func (m *Manifest) Referrer(desc ocispec.Descriptor) ocispec.Descriptor {
	d := ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}
	switch {
	case m.Image != nil:
		d.ArtifactType = m.Image.ArtifactType
		if d.ArtifactType == "" {
			d.ArtifactType = m.Image.Config.MediaType
		}
		d.Annotations = m.Image.Annotations
	case m.Index != nil:
		d.ArtifactType = m.Index.ArtifactType
		d.Annotations = m.Index.Annotations
	}
	return d
}
