package registry

import (
	"fmt"

	"github.com/distribution/reference"
)

// checkName refuses a name that is not an image reference, such as
// "registry.example.com/team/app:1.0" or "app:latest". The name is used as given: it is not
// expanded to "docker.io/library/app:latest".
func checkName(name string) error {
	if _, err := reference.ParseNormalizedNamed(name); err != nil {
		return fmt.Errorf("%w: %q: %v", ErrInvalidName, name, err)
	}
	return nil
}
