package server_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkManifestGET measures the handler alone on a manifest GET by tag.
func BenchmarkManifestGET(b *testing.B) {
	h := newHub(b)
	h.pushImage("team/app", "1", []byte("layer"))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("GET", "http://hub.test/v2/team/app/manifests/1", nil)
			rec := httptest.NewRecorder()
			h.srv.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatal(rec.Code)
			}
		}
	})
}
