package testutil

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/internal/busybox"
	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/ctrd"
	"github.com/opendao/dao/registry/oci"
)

// Image names tests use.
const (
	BusyboxImageName = "dao.test/busybox:latest"
	TestAppImageName = "dao.test/testapp:latest"
)

// busyboxApplets are the links a busybox userland needs for tests and health checks.
var busyboxApplets = []string{
	"sh", "echo", "cat", "ls", "sleep", "true", "false", "id", "env", "touch", "grep", "pwd",
	"wget", "mkdir", "rm", "head", "tail", "seq", "yes", "dd", "kill", "ps", "wc", "date",
	"hostname", "nc", "printf", "test", "[", "sed", "awk", "tr", "cut", "sort", "uniq", "du",
}

var (
	busyboxOnce  sync.Once
	busyboxImage *oci.Image
	busyboxErr   error

	testAppOnce  sync.Once
	testAppImage *oci.Image
	testAppErr   error
)

// BuildBusyboxImage builds (once per process) an image of /usr/bin/busybox from
// busybox-static, at /bin/busybox with links for the usual applets, and /etc/passwd.
func BuildBusyboxImage(t testing.TB) *oci.Image {
	t.Helper()
	RequireIntegration(t)
	if _, err := os.Stat("/usr/bin/busybox"); err != nil {
		missing(t, "busybox image needs /usr/bin/busybox (Debian package busybox-static)")
	}
	img, err := Busybox()
	if err != nil {
		t.Fatalf("build busybox image: %v", err)
	}
	return img
}

// Busybox is BuildBusyboxImage for programs: benchmarks and examples.
func Busybox() (*oci.Image, error) {
	busyboxOnce.Do(func() {
		busyboxImage, busyboxErr = buildBusybox()
	})
	return busyboxImage, busyboxErr
}

func buildBusybox() (*oci.Image, error) {
	return busybox.Image(context.Background(), busybox.Path, busyboxApplets)
}

// BuildTestAppImage builds (once per process) an image holding only /testapp, the program of
// internal/testutil/testapp compiled with CGO_ENABLED=0, as its entrypoint.
func BuildTestAppImage(t testing.TB) *oci.Image {
	t.Helper()
	RequireIntegration(t, "go")
	img, err := TestApp()
	if err != nil {
		t.Fatalf("build testapp image: %v", err)
	}
	return img
}

// TestApp is BuildTestAppImage for programs: benchmarks and examples.
func TestApp() (*oci.Image, error) {
	testAppOnce.Do(func() {
		testAppImage, testAppErr = buildTestApp()
	})
	return testAppImage, testAppErr
}

func buildTestApp() (*oci.Image, error) {
	bin, err := BuildTestApp()
	if err != nil {
		return nil, err
	}
	lb, err := build.NewLayerBuilder()
	if err != nil {
		return nil, err
	}
	if err := lb.AddHostFile("testapp", bin); err != nil {
		return nil, err
	}
	if err := lb.AddDir("tmp", 0o777|os.ModeSticky); err != nil {
		return nil, err
	}
	layer, err := lb.Build(context.Background())
	if err != nil {
		return nil, err
	}
	return oci.NewImage([]*oci.Layer{layer}, ocispec.ImageConfig{
		Entrypoint: []string{"/testapp"},
	})
}

var (
	testAppBinOnce sync.Once
	testAppBin     string
	testAppBinErr  error
)

// BuildTestApp compiles the test program (once per process) and returns the binary's path.
// The binary is kept in a directory named by a hash of the program's source and the Go
// version (it uses only the standard library), under the system's temporary directory, so
// that test processes share it instead of each leaving a copy behind.
func BuildTestApp() (string, error) {
	testAppBinOnce.Do(func() {
		testAppBin, testAppBinErr = compileTestApp()
	})
	return testAppBin, testAppBinErr
}

func compileTestApp() (string, error) {
	src := filepath.Join(moduleRoot(), "internal", "testutil", "testapp", "main.go")
	code, err := os.ReadFile(src)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s %s\n", runtime.Version(), runtime.GOARCH)
	h.Write(code)
	dir := filepath.Join(os.TempDir(), "dao-testapp", hex.EncodeToString(h.Sum(nil))[:16])
	out := filepath.Join(dir, "testapp")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// Built under a name of its own, then renamed: a process that runs at the same time
	// never sees half a binary.
	tmp, err := os.CreateTemp(dir, "testapp-*.tmp")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", tmp.Name(), "github.com/opendao/dao/internal/testutil/testapp")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	cmd.Dir = moduleRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", &buildError{err: err, out: string(b)}
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", err
	}
	return out, nil
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return "go build testapp: " + e.err.Error() + "\n" + e.out }

// moduleRoot finds the directory of go.mod from this source file.
func moduleRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "."
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// BusyboxImage builds the busybox image and imports it into c, unpacked, under
// BusyboxImageName, which it returns.
func BusyboxImage(t testing.TB, c *Containerd) string {
	t.Helper()
	c.importImage(BusyboxImageName, BuildBusyboxImage(t))
	return BusyboxImageName
}

// TestAppImage builds the test program's image and imports it into c, unpacked, under
// TestAppImageName, which it returns.
func TestAppImage(t testing.TB, c *Containerd) string {
	t.Helper()
	c.importImage(TestAppImageName, BuildTestAppImage(t))
	return TestAppImageName
}

func (c *Containerd) importImage(name string, img *oci.Image) {
	c.t.Helper()
	if _, err := ctrd.Import(c.Context(context.Background()), c.Client, name, img, ctrd.WithUnpack("overlayfs")); err != nil {
		c.t.Fatalf("import %s: %v", name, err)
	}
}
