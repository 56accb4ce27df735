package server_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestNoContainerdDependency checks that the server and its store import no containerd
// and no gRPC: a product that embeds a registry gets neither.
func TestNoContainerdDependency(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	for _, pkg := range []string{"github.com/opendao/dao/registry/server", "github.com/opendao/dao/registry/server/storage"} {
		out, err := exec.Command(goTool, "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, d := range strings.Fields(string(out)) {
			if strings.HasPrefix(d, "github.com/containerd/containerd") || strings.HasPrefix(d, "google.golang.org/grpc") {
				t.Errorf("%s depends on %s", pkg, d)
			}
		}
	}
}
