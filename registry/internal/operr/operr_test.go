package operr

import (
	"errors"
	"fmt"
	"testing"
)

var errDigestMismatch = errors.New("registry: digest mismatch")

func TestOpErrorSaysRegistryOnce(t *testing.T) {
	inner := fmt.Errorf("registry: write sha256:abc into the content store: %w",
		fmt.Errorf("%w: 10 of 20 bytes", errDigestMismatch))
	err := Errorf(inner, "pull %s", "dao.test/app:1")
	want := "registry: pull dao.test/app:1: write sha256:abc into the content store: " +
		errDigestMismatch.Error()[len("registry: "):] + ": 10 of 20 bytes"
	if err.Error() != want {
		t.Errorf("message\n got %q\nwant %q", err, want)
	}
	if !errors.Is(err, errDigestMismatch) {
		t.Error("errors.Is does not find errDigestMismatch")
	}
	if got := Errorf(errors.New("connection refused"), "push x").Error(); got != "registry: push x: connection refused" {
		t.Errorf("foreign error: %q", got)
	}
}
