package hub

import (
	"bytes"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/opendao/dao/registry/server"
	"github.com/opendao/dao/registry/server/storage"
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

// BenchmarkBlobPush measures monolithic pushes of distinct 1 MiB blobs through the hub
// (token auth, quota admission, usage kept in hub.db) and through a bare registry server
// on the same kind of store, to show the hub's cost.
func BenchmarkBlobPush(b *testing.B) {
	data := make([]byte, 1<<20)
	run := func(b *testing.B, h http.Handler, a auth, repo string) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		var n atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			buf := make([]byte, len(data))
			for pb.Next() {
				binary.LittleEndian.PutUint64(buf, uint64(n.Add(1)))
				req := httptest.NewRequest("POST", "http://hub.test/v2/"+repo+"/blobs/uploads/?digest="+digest.FromBytes(buf).String(), bytes.NewReader(buf))
				a.set(req)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusCreated {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
	b.Run("hub", func(b *testing.B) {
		th := newTestHub(b)
		if err := th.h.SetQuota(b.Context(), "team-a", 1<<50); err != nil {
			b.Fatal(err)
		}
		tok := bearer(th.token(basic("alice", password), "repository:team-a/app:pull,push"))
		run(b, th.h.Handler(), tok, "team-a/app")
	})
	b.Run("server", func(b *testing.B) {
		st, err := storage.OpenFS(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		srv, err := server.New(st)
		if err != nil {
			b.Fatal(err)
		}
		run(b, srv, "", "team-a/app")
	})
}
