// Package busybox builds an OCI image from a static busybox binary (Debian's
// busybox-static): the one image Dao's tests, benchmarks and offline demos can make with no
// registry. It is the layout of a small distribution image: /bin/busybox with a link for
// each applet, /etc/passwd and /etc/group with root and nobody, /tmp (sticky), and /bin/sh as
// the command.
package busybox

import (
	"context"
	"os"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/oci"
)

// Path is where Debian's busybox-static installs the program.
const Path = "/usr/bin/busybox"

// Image builds the image of the busybox program at path, with a link in /bin for each of
// applets. The caller closes the image's layers when done with it.
func Image(ctx context.Context, path string, applets []string) (*oci.Image, error) {
	lb, err := build.NewLayerBuilder()
	if err != nil {
		return nil, err
	}
	lb.AddHostFile("bin/busybox", path) // Build fails with the first error of the Adds
	for _, a := range applets {
		lb.AddSymlink("bin/"+a, "busybox")
	}
	for _, d := range []string{"etc", "proc", "sys", "dev", "root"} {
		lb.AddDir(d, 0o755)
	}
	lb.AddDir("tmp", 0o777|os.ModeSticky)
	lb.AddFile("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"))
	lb.AddFile("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n"))
	layer, err := lb.Build(ctx)
	if err != nil {
		return nil, err
	}
	img, err := oci.NewImage([]*oci.Layer{layer}, ocispec.ImageConfig{
		Cmd: []string{"/bin/sh"},
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
	})
	if err != nil {
		layer.Close()
		return nil, err
	}
	return img, nil
}
