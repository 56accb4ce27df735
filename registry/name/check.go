package name

import (
	"fmt"

	"github.com/distribution/reference"
)

// Validate refuses a name that is not an image reference, such as
// "registry.example.com/team/app:1.0" or "app:latest", with an error matching
// ErrInvalidName. The name is not expanded: Validate only checks it.
func Validate(name string) error {
	if _, err := reference.ParseNormalizedNamed(name); err != nil {
		return fmt.Errorf("%w: %q: %v", ErrInvalidName, name, err)
	}
	return nil
}
