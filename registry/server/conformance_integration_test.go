package server_test

import (
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/registry/server"
	"github.com/opendao/dao/registry/server/storage"
)

// TestConformance runs the OCI distribution-spec conformance suite, every API and data
// area on, against a server on a loopback port, and requires that nothing fails. The
// sparse data area, which pushes manifests that refer to missing content, runs in a
// second pass against a server made WithSparse, since the default server refuses them.
func TestConformance(t *testing.T) {
	testutil.RequireIntegration(t, "go")
	for _, pass := range []struct {
		name   string
		sparse bool
	}{{"default", false}, {"sparse", true}} {
		t.Run(pass.name, func(t *testing.T) {
			st, err := storage.OpenFS(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			srv, err := server.New(st, server.WithSparse(pass.sparse))
			if err != nil {
				t.Fatal(err)
			}
			hs := httptest.NewServer(srv)
			t.Cleanup(hs.Close)
			u, _ := url.Parse(hs.URL)
			testutil.OCIConformance(t, u.Host, pass.sparse)
		})
	}
}
