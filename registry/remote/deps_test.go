package remote_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestNoContainerdDependency checks that the registry client, and the packages below it,
// import no containerd and no gRPC: a program that wants only a registry client gets
// neither. Only registry/ctrd (and the facade registry) may.
func TestNoContainerdDependency(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	pkgs := []string{
		"github.com/opendao/dao/registry/remote",
		"github.com/opendao/dao/registry/name",
		"github.com/opendao/dao/registry/oci",
		"github.com/opendao/dao/registry/build",
		"github.com/opendao/dao/registry/layout",
	}
	deps := func(pkg string) []string {
		out, err := exec.Command(goTool, "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		return strings.Fields(string(out))
	}
	// The check sees containerd where it is: in the containerd side.
	if !slices.Contains(deps("github.com/opendao/dao/registry/ctrd"), "github.com/containerd/containerd/v2/client") {
		t.Fatal("go list -deps of registry/ctrd does not list containerd's client: the check below cannot be trusted")
	}
	for _, pkg := range pkgs {
		for _, d := range deps(pkg) {
			if strings.HasPrefix(d, "github.com/containerd/containerd") || strings.HasPrefix(d, "google.golang.org/grpc") {
				t.Errorf("%s depends on %s", pkg, d)
			}
		}
	}
}
