package registry

import (
	"errors"
	"fmt"
	"testing"
)

func TestOpErrorSaysRegistryOnce(t *testing.T) {
	inner := fmt.Errorf("registry: write sha256:abc into the content store: %w",
		fmt.Errorf("%w: 10 of 20 bytes", ErrDigestMismatch))
	err := opErrorf(inner, "pull %s", "dao.test/app:1")
	want := "registry: pull dao.test/app:1: write sha256:abc into the content store: " +
		ErrDigestMismatch.Error()[len("registry: "):] + ": 10 of 20 bytes"
	if err.Error() != want {
		t.Errorf("message\n got %q\nwant %q", err, want)
	}
	if !errors.Is(err, ErrDigestMismatch) {
		t.Error("errors.Is does not find ErrDigestMismatch")
	}
	if got := opErrorf(errors.New("connection refused"), "push x").Error(); got != "registry: push x: connection refused" {
		t.Errorf("foreign error: %q", got)
	}
}
