package hub

import (
	"context"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/registry/server"
)

// TestConformance runs the OCI conformance suite, every area on, through the hub with
// token auth: as a maintainer of the project "conformance", whose client follows the
// Bearer challenges to the token endpoint. Nothing may fail. The sparse area runs in a
// second pass against a hub whose server is made WithSparse.
func TestConformance(t *testing.T) {
	testutil.RequireIntegration(t, "go")
	for _, pass := range []struct {
		name   string
		sparse bool
	}{{"default", false}, {"sparse", true}} {
		t.Run(pass.name, func(t *testing.T) {
			th := newTestHub(t, func(c *Config) { c.ServerOptions = []server.Option{server.WithSparse(pass.sparse)} })
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			if err := th.h.CreateUser(ctx, User{Name: "conf"}, password); err != nil {
				t.Fatal(err)
			}
			if err := th.h.CreateProject(ctx, Project{Name: "conformance", Members: map[string]Role{"conf": RoleMaintainer}}); err != nil {
				t.Fatal(err)
			}
			rec := &recorder{}
			hs := httptest.NewServer(rec.wrap(th.h.Handler()))
			t.Cleanup(hs.Close)
			u, _ := url.Parse(hs.URL)
			r := testutil.OCIConformance(t, u.Host, pass.sparse, "OCI_USERNAME=conf", "OCI_PASSWORD="+password)
			rec.mu.Lock()
			t.Logf("conformance through the hub (%s): %d tests; %d token requests, %d requests with a token, %d with basic auth",
				pass.name, r.Tests, rec.tokens, rec.bearerOnV2, rec.basicOnV2)
			if rec.tokens == 0 {
				t.Error("the suite fetched no token")
			}
			rec.mu.Unlock()
		})
	}
}
