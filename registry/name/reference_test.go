package name_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opendao/dao/registry/name"
)

const testDigest = "sha256:4b8bbf7e3cf5c9c3b0a2b4cd0ad5ad7fdb34a5a4e42c6b5a4c6b4a9ad1f1a1c2"

func TestParseReference(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want name.Reference
		str  string
	}{
		{"busybox", name.Reference{Registry: "docker.io", Repository: "library/busybox", Tag: "latest"}, "docker.io/library/busybox:latest"},
		{"team/app:1.0", name.Reference{Registry: "docker.io", Repository: "team/app", Tag: "1.0"}, "docker.io/team/app:1.0"},
		{"127.0.0.1:5000/app", name.Reference{Registry: "127.0.0.1:5000", Repository: "app", Tag: "latest"}, "127.0.0.1:5000/app:latest"},
		{"localhost/a/b/c:x", name.Reference{Registry: "localhost", Repository: "a/b/c", Tag: "x"}, "localhost/a/b/c:x"},
		{"r.example/app@" + testDigest, name.Reference{Registry: "r.example", Repository: "app", Digest: testDigest}, "r.example/app@" + testDigest},
		{"r.example/app:1@" + testDigest, name.Reference{Registry: "r.example", Repository: "app", Tag: "1", Digest: testDigest}, "r.example/app:1@" + testDigest},
	} {
		got, err := name.ParseReference(tc.in)
		if err != nil {
			t.Errorf("ParseReference(%q): %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseReference(%q) (-want +got):\n%s", tc.in, diff)
		}
		if got.String() != tc.str {
			t.Errorf("ParseReference(%q).String(): got %q, want %q", tc.in, got.String(), tc.str)
		}
	}
	for _, bad := range []string{"", "App", "app:", "app@sha256:12", "a/../b", "app:tag with space"} {
		if _, err := name.ParseReference(bad); !errors.Is(err, name.ErrInvalidName) {
			t.Errorf("ParseReference(%q): %v, want ErrInvalidName", bad, err)
		}
	}
}

func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"busybox", "team/app:1.0", "127.0.0.1:5000/app", "r.example/app:1@" + testDigest, "[::1]:5000/x", "a:b:c", "@", "localhost:99999/a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := name.ParseReference(s)
		if err != nil {
			if !errors.Is(err, name.ErrInvalidName) {
				t.Fatalf("ParseReference(%q): %v does not match ErrInvalidName", s, err)
			}
			return
		}
		if r.Registry == "" || r.Repository == "" || (r.Tag == "" && r.Digest == "") {
			t.Fatalf("ParseReference(%q) = %+v: a part is missing", s, r)
		}
		// The normalised form is a fixed point.
		again, err := name.ParseReference(r.String())
		if err != nil {
			t.Fatalf("ParseReference(%q) of ParseReference(%q): %v", r.String(), s, err)
		}
		if again != r {
			t.Fatalf("ParseReference(%q) = %+v, but its String %q parses to %+v", s, r, r.String(), again)
		}
	})
}

func ExampleParseReference() {
	for _, s := range []string{"busybox", "team/app:1.0", "127.0.0.1:5000/app"} {
		r, err := name.ParseReference(s)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s: registry %s, repository %s, tag %s\n", r, r.Registry, r.Repository, r.Tag)
	}
	// Output:
	// docker.io/library/busybox:latest: registry docker.io, repository library/busybox, tag latest
	// docker.io/team/app:1.0: registry docker.io, repository team/app, tag 1.0
	// 127.0.0.1:5000/app:latest: registry 127.0.0.1:5000, repository app, tag latest
}
