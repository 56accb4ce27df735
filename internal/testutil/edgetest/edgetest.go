package edgetest

import (
	"path/filepath"
	"testing"

	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/internal/testutil"
)

// NewRuntime opens a Runtime over c, in testutil.Namespace, with its container logs under
// c's directory, and closes it when the test ends (before c is stopped). opts come after
// those defaults, so they may change them.
func NewRuntime(t testing.TB, c *testutil.Containerd, opts ...edge.Option) *edge.Runtime {
	t.Helper()
	opts = append([]edge.Option{
		edge.WithNamespace(testutil.Namespace),
		edge.WithLogDir(filepath.Join(c.Dir, "logs")),
	}, opts...)
	rt, err := edge.New(c.Address, opts...)
	if err != nil {
		t.Fatalf("edge.New: %v", err)
	}
	t.Cleanup(func() {
		if err := rt.Close(); err != nil {
			t.Errorf("close the Runtime: %v", err)
		}
	})
	return rt
}
