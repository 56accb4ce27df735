package operr

import (
	"fmt"
	"strings"
)

// opError is an error of one of the package's operations (pull, push, ...) on a reference:
// its message says "registry:" once, not again for each of the package's own errors
// within ("registry: pull x: write y: ..." rather than "registry: pull x: registry: write
// y: ..."). errors.Is and errors.As see the whole chain.
type opError struct {
	op  string // "pull docker.io/library/busybox:latest"
	err error
}

func (e *opError) Error() string {
	inner := strings.TrimPrefix(e.err.Error(), "registry: ")
	return "registry: " + e.op + ": " + strings.ReplaceAll(inner, ": registry: ", ": ")
}

func (e *opError) Unwrap() error { return e.err }

// Errorf returns err as the error of the operation that format and args describe.
func Errorf(err error, format string, args ...any) error {
	return &opError{op: fmt.Sprintf(format, args...), err: err}
}
