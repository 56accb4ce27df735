package policy

import (
	"fmt"
	"strings"
)

// lines joins values one per line, for readable failures.
func lines[T any](vs []T) string {
	var b strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&b, "%v\n", v)
	}
	return b.String()
}
