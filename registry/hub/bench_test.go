package hub

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// benchGet serves GET path as a to the hub's handler directly, b.N times, in parallel.
func benchGet(b *testing.B, h http.Handler, path string, a auth, want int) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("GET", "http://hub.test"+path, nil)
			a.set(req)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != want {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
		}
	})
}

// BenchmarkManifestGet measures a manifest GET of a private project through the hub:
// with a token (ES256 verified on each request), with basic auth (bcrypt once, then
// cached), and anonymously of a public project.
func BenchmarkManifestGet(b *testing.B) {
	th := newTestHub(b)
	th.fill()
	h := th.h.Handler()
	tok := bearer(th.token(basic("alice", password), "repository:team-a/app:pull"))
	b.Run("token", func(b *testing.B) { benchGet(b, h, "/v2/team-a/app/manifests/1", tok, 200) })
	b.Run("basic", func(b *testing.B) { benchGet(b, h, "/v2/team-a/app/manifests/1", basic("alice", password), 200) })
	b.Run("anonymous-public", func(b *testing.B) { benchGet(b, h, "/v2/library/app/manifests/1", "", 200) })
}

// BenchmarkToken measures the token endpoint: a grant for a user (bcrypt cached after the
// first) and for an anonymous caller.
func BenchmarkToken(b *testing.B) {
	th := newTestHub(b)
	h := th.h.Handler()
	q := "/token?" + url.Values{"service": {"dao-hub"}, "scope": {"repository:team-a/app:pull,push"}}.Encode()
	b.Run("user", func(b *testing.B) { benchGet(b, h, q, basic("alice", password), 200) })
	b.Run("anonymous", func(b *testing.B) { benchGet(b, h, q, "", 200) })
}
