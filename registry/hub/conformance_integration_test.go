package hub

import (
	"context"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/registry/server"
	"github.com/opendao/dao/registry/server/gc"
)

// TestConformance runs the OCI conformance suite, every area on, through the hub with
// token auth: as a maintainer of the project "conformance", whose client follows the
// Bearer challenges to the token endpoint. Nothing may fail. The sparse area runs in a
// second pass against a hub whose server is made WithSparse. Both run with a garbage
// collection every 50 ms (the default grace, so it deletes nothing the suite pushes; its
// fence is entered by each manifest put) and an events hook.
func TestConformance(t *testing.T) {
	testutil.RequireIntegration(t, "go")
	for _, pass := range []struct {
		name   string
		sparse bool
	}{{"default", false}, {"sparse", true}} {
		t.Run(pass.name, func(t *testing.T) {
			var events atomic.Int64
			th := newTestHub(t, func(c *Config) {
				c.ServerOptions = []server.Option{server.WithSparse(pass.sparse)}
				c.GC = GCConfig{Interval: 50 * time.Millisecond, Report: func(_ gc.Report, err error) {
					if err != nil {
						t.Errorf("a collection failed: %v", err)
					}
				}}
				c.Events = func(Event) { events.Add(1) }
			})
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
			if events.Load() == 0 {
				t.Error("no events")
			}
			rec.mu.Unlock()
		})
	}
}
