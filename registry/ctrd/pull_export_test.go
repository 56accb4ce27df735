package ctrd

import "github.com/opencontainers/go-digest"

// WithContent makes Pull write layer blobs through containerd's content API ("api"), or
// directly into the directory given as the root of containerd's local content store; ""
// chooses as Pull does by default. hook, if not nil, is told of each blob written directly
// and whether containerd saw it in its store.
func WithContent(content string, hook func(d digest.Digest, shared bool)) Option {
	return withContent(content, hook)
}
