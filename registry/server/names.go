package server

import (
	_ "crypto/sha256" // the digest algorithms the server takes
	_ "crypto/sha512"
	"fmt"
	"net/http"
	"regexp"

	"github.com/opencontainers/go-digest"

	"github.com/opendao/dao/registry/name"
)

// nameRE is the distribution spec's grammar of a repository name: lower-case components of
// letters and digits joined by one separator (".", "_", "__" or dashes), separated by "/".
// It admits no empty component, no "." or "..", no upper case and no leading separator.
var nameRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)

// tagRE is the grammar of a tag.
var tagRE = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

// maxNameLength bounds a repository name, as Distribution does.
const maxNameLength = 255

// ValidateRepository refuses a repository name that the distribution spec's grammar does
// not admit, with an error matching name.ErrInvalidName.
func ValidateRepository(repo string) error {
	if len(repo) > maxNameLength {
		return fmt.Errorf("%w: repository name of %d bytes, more than %d", name.ErrInvalidName, len(repo), maxNameLength)
	}
	if !nameRE.MatchString(repo) {
		return fmt.Errorf("%w: repository %q does not match the distribution grammar", name.ErrInvalidName, repo)
	}
	return nil
}

// parseDigest parses a digest of a supported algorithm (sha256, sha512).
func parseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", newError(http.StatusBadRequest, codeDigestInvalid, "invalid digest %q: %v", s, err)
	}
	switch d.Algorithm() {
	case digest.SHA256, digest.SHA512:
		return d, nil
	}
	return "", newError(http.StatusBadRequest, codeDigestInvalid, "unsupported digest algorithm %q", d.Algorithm())
}
