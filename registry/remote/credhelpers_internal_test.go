package remote

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/docker/docker-credential-helpers/credentials"
)

// TestCredentialHelperAnswers checks how a helper's answer is read: "<token>" is an
// identity token, Docker Hub is asked for as docker login stored it, and concurrent
// requests for a host run the helper once.
func TestCredentialHelperAnswers(t *testing.T) {
	var runs atomic.Int32
	var mu sync.Mutex
	asked := map[string]bool{}
	h := &credHelpers{config: "config.json", store: "test", byHost: map[string]string{}, cache: map[string]*helperAnswer{},
		run: func(_ context.Context, helper, serverURL string) (*credentials.Credentials, error) {
			runs.Add(1)
			mu.Lock()
			asked[helper+" "+serverURL] = true
			mu.Unlock()
			return &credentials.Credentials{Username: "<token>", Secret: "refresh"}, nil
		}}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			cr, found, err := h.get(context.Background(), "registry-1.docker.io")
			if err != nil || !found || cr != (Credentials{IdentityToken: "refresh"}) {
				t.Errorf("get = %+v, %v, %v; want the identity token", cr, found, err)
			}
		})
	}
	wg.Wait()
	if n := runs.Load(); n != 1 {
		t.Errorf("the helper ran %d times, want once", n)
	}
	if !asked["docker-credential-test https://index.docker.io/v1/"] {
		t.Errorf("the helper was asked %v, want Docker Hub as https://index.docker.io/v1/", asked)
	}
}
