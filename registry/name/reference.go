package name

import (
	"fmt"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// Reference names an image in a registry, normalised as the container ecosystem does it:
// "busybox" is docker.io/library/busybox:latest, "team/app" is docker.io/team/app:latest, a
// first element with a dot or a port, or "localhost", is a registry host.
type Reference struct {
	// Registry is the registry's host, with its port if any: "docker.io",
	// "127.0.0.1:5000".
	Registry string
	// Repository is the repository's path in the registry: "library/busybox".
	Repository string
	// Tag is the tag; "latest" when the reference has neither tag nor digest, "" when it has
	// only a digest.
	Tag string
	// Digest is the manifest's digest if the reference has one; it wins over the tag.
	Digest digest.Digest
}

// ParseReference parses and normalises an image reference. It fails with ErrInvalidName if s
// is not one.
func ParseReference(s string) (Reference, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return Reference{}, fmt.Errorf("%w: %q: %v", ErrInvalidName, s, err)
	}
	named = reference.TagNameOnly(named)
	r := Reference{Registry: reference.Domain(named), Repository: reference.Path(named)}
	if t, ok := named.(reference.Tagged); ok {
		r.Tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		r.Digest = d.Digest()
	}
	return r, nil
}

// ParseRepository parses a repository name without tag or digest, such as
// "127.0.0.1:5000/team/app" or "busybox" (docker.io/library/busybox).
func ParseRepository(s string) (Reference, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return Reference{}, fmt.Errorf("%w: repository %q: %v", ErrInvalidName, s, err)
	}
	if !reference.IsNameOnly(named) {
		return Reference{}, fmt.Errorf("%w: repository %q has a tag or digest", ErrInvalidName, s)
	}
	return Reference{Registry: reference.Domain(named), Repository: reference.Path(named)}, nil
}

// Name returns the repository's full name: "docker.io/library/busybox".
func (r Reference) Name() string { return r.Registry + "/" + r.Repository }

// String returns the normalised reference: "docker.io/library/busybox:latest",
// "127.0.0.1:5000/app@sha256:...", or with both tag and digest "app:1@sha256:...".
func (r Reference) String() string {
	s := r.Name()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest.String()
	}
	return s
}

// WithDigest returns r naming the manifest of digest d, keeping its tag.
func (r Reference) WithDigest(d digest.Digest) Reference {
	r.Digest = d
	return r
}

// Identifier is what the manifests endpoint takes: the digest if there is one, else the tag.
func (r Reference) Identifier() string {
	if r.Digest != "" {
		return r.Digest.String()
	}
	return r.Tag
}
