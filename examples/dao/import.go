package main

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"

	"io/fs"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/containerd/platforms"
	"github.com/spf13/pflag"

	"github.com/opendao/dao/internal/busybox"
	"github.com/opendao/dao/registry/ctrd"
	"github.com/opendao/dao/registry/name"
	"github.com/opendao/dao/registry/oci"
)

// defaultBusyboxName is the name dao import busybox gives its image.
const defaultBusyboxName = "dao.local/busybox:latest"

// busyboxBinary is where Debian's busybox-static installs busybox; tests change it.
var busyboxBinary = "/usr/bin/busybox"

func importCommand() *command {
	var snapshotter string
	c := &command{
		name:    "import",
		summary: "import an image of this machine's busybox into containerd, with no registry",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&snapshotter, "snapshotter", "overlayfs", "unpack into the containerd snapshotter `NAME`")
		},
		usage: `Usage: dao import [options] busybox [NAME]

Builds an image of this machine's busybox (` + busyboxBinary + `, from the Debian package
busybox-static) and imports it into containerd's namespace under NAME (default
` + defaultBusyboxName + `), unpacked, ready to run: for machines that reach no registry.
The image has /bin/busybox with a link in /bin for each of its applets (sh, httpd, wget...),
/etc/passwd, /etc/group and /tmp; its command is /bin/sh. The same busybox always gives the
same digest, so importing again changes nothing.
`,
	}
	c.run = func(ctx context.Context, g *globals, args []string) int {
		switch {
		case len(args) == 0:
			return usageError(g.stderr, c.name, "want what to import: busybox")
		case args[0] != "busybox":
			return usageError(g.stderr, c.name, fmt.Sprintf("cannot import %q: want busybox", args[0]))
		case len(args) > 2:
			return usageError(g.stderr, c.name, fmt.Sprintf("unexpected argument %q", args[2]))
		}
		ref := defaultBusyboxName
		if len(args) == 2 {
			r, err := name.ParseReference(args[1])
			if err != nil || r.Digest != "" {
				return usageError(g.stderr, c.name, fmt.Sprintf("%q is not an image name such as %s", args[1], defaultBusyboxName))
			}
			ref = r.String() // as dao pull names images: "busybox" is docker.io/library/busybox:latest
		}
		if err := checkStatic(busyboxBinary); err != nil {
			return fail(g, c.name, err)
		}
		cl, err := connect(ctx, g)
		if err != nil {
			return fail(g, c.name, err)
		}
		defer cl.Close()

		start := time.Now()
		img, applets, err := buildBusyboxImage(ctx, busyboxBinary)
		if err != nil {
			return fail(g, c.name, fmt.Errorf("build an image of %s: %w", busyboxBinary, err))
		}
		defer closeLayers(img)
		g.logf("built %s: %d applets, manifest %s", busyboxBinary, applets, img.Descriptor().Digest)
		opt := ctrd.WithUnpack(snapshotter)
		if snapshotter == "" {
			opt = ctrd.WithoutUnpack() // --snapshotter "": content only, as dao pull
		}
		rec, err := ctrd.Import(ctx, cl, ref, img, opt)
		if err != nil {
			return fail(g, c.name, err)
		}
		layers, size := imageSize(ctx, cl.ContentStore(), rec, platforms.Default())
		fmt.Fprintf(g.stdout, "%s %s\n", paint(g.color, green, "Imported"), rec.Name)
		fmt.Fprintf(g.stdout, "  digest %s\n", rec.Target.Digest)
		fmt.Fprintf(g.stdout, "  %s of %s: %s with %d applets; took %s\n", plural(layers, "layer", "layers"),
			formatBytes(size), busyboxBinary, applets, time.Since(start).Round(time.Millisecond))
		return exitOK
	}
	return c
}

// checkStatic makes sure that path is a statically linked program, one that runs in an
// image without the machine's libraries.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: not found: install busybox-static (apt-get install busybox-static)", path)
	}
	if err != nil {
		return fmt.Errorf("%s: not a program for this machine: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked and would not run in an image: install busybox-static (apt-get install busybox-static)", path)
		}
	}
	return nil
}

// buildBusyboxImage builds an image of the busybox program at path (internal/busybox), with
// a link for each applet the program lists. It returns
// the image and the number of applets; the caller closes the image's layers.
func buildBusyboxImage(ctx context.Context, path string) (*oci.Image, int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--list").Output()
	if err != nil {
		return nil, 0, fmt.Errorf("%s --list: %w", path, err)
	}
	var applets []string
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" && a != "." && a != ".." && !strings.Contains(a, "/") {
			applets = append(applets, a)
		}
	}
	slices.Sort(applets)
	applets = slices.Compact(applets)
	if !slices.Contains(applets, "sh") {
		return nil, 0, fmt.Errorf("%s --list names no sh: is it busybox?", path)
	}

	img, err := busybox.Image(ctx, path, applets)
	if err != nil {
		return nil, 0, err
	}
	return img, len(applets), nil
}

// closeLayers closes the layers of img, which removes their temporary files.
func closeLayers(img *oci.Image) {
	for _, l := range img.Layers() {
		l.Close()
	}
}
