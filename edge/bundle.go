package edge

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"golang.org/x/sys/unix"
)

// containerd 1.6 makes a task's bundle directory (STATE/io.containerd.runtime.v2.task/NS/ID)
// before it starts the task's shim. When containerd dies in between, the directory stays
// with no shim behind it; the next containerd fails to clean it up, and every new task of
// the container fails with "failed to start shim: mkdir BUNDLE: file exists", after each
// further restart too (moby/moby#50040 is the same). The Runtime runs on containerd's host,
// so it can remove such a bundle itself.

var staleBundleRE = regexp.MustCompile(`failed to start shim: mkdir (/\S*/io\.containerd\.runtime\.v2\.task/([^/\s]+)/([^/\s:]+)): file exists`)

// staleBundle returns the bundle directory that err says is in the way of a new task of
// container id in namespace ns, or "".
func staleBundle(err error, ns, id string) string {
	if err == nil {
		return ""
	}
	m := staleBundleRE.FindStringSubmatch(err.Error())
	if m == nil || m[2] != ns || m[3] != id {
		return ""
	}
	return filepath.Clean(m[1])
}

// removeStaleBundle removes a task bundle that no shim uses: a shim runs in its bundle
// directory, so one whose working directory is the bundle means it is not stale after all.
func removeStaleBundle(bundle string) error {
	cwds, _ := filepath.Glob("/proc/[0-9]*/cwd")
	for _, c := range cwds {
		if dir, err := os.Readlink(c); err == nil && dir == bundle {
			return fmt.Errorf("process %s runs in it", filepath.Base(filepath.Dir(c)))
		}
	}
	rootfs := filepath.Join(bundle, "rootfs")
	for {
		// Unmount everything stacked on it; EINVAL means nothing (more) is mounted there.
		if err := unix.Unmount(rootfs, unix.MNT_DETACH); err != nil {
			if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("unmount %s: %w", rootfs, err)
			}
			break
		}
	}
	return os.RemoveAll(bundle)
}
