package ctrd_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/ctrd"
	"github.com/opendao/dao/registry/remote"
)

// TestPullErrorsAreClassified pulls a tag a real registry lacks, directly and through two
// mirrors that fail differently: the error is of containerd's not-found class, and
// errors.Is finds each mirror's error beside the registry's.
func TestPullErrorsAreClassified(t *testing.T) {
	e := newPullEnv(t)
	e.Push(t, e.Reg.Ref("app:1"), randomLayersImage(t, build.Gzip, 1<<10))
	_, err := ctrd.Pull(e.Ctx, e.Ctrd.Client, e.Client, e.Reg.Ref("app:missing"))
	if !errdefs.IsNotFound(err) || !errors.Is(err, remote.ErrManifestUnknown) {
		t.Errorf("Pull of a missing tag: %v, want errdefs.IsNotFound and remote.ErrManifestUnknown", err)
	}

	answer := func(status int, code string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			w.Write([]byte(`{"errors":[{"code":"` + code + `"}]}`))
		}))
		t.Cleanup(s.Close)
		return s.URL
	}
	c := newClient(t, nil, remote.WithHosts(map[string]remote.HostConfig{e.Reg.Addr: {
		PlainHTTP: true,
		Mirrors:   []remote.Mirror{{URL: answer(http.StatusForbidden, "DENIED")}, {URL: answer(http.StatusTooManyRequests, "TOOMANYREQUESTS")}},
	}}))
	_, err = ctrd.Pull(e.Ctx, e.Ctrd.Client, c, e.Reg.Ref("app:missing"))
	for _, want := range []error{remote.ErrDenied, remote.ErrTooManyRequests, remote.ErrManifestUnknown} {
		if !errors.Is(err, want) {
			t.Errorf("Pull through failing mirrors: errors.Is(%v, %v) is false", err, want)
		}
	}
	if up := remote.Upstream(err); !errors.Is(up, remote.ErrManifestUnknown) || errors.Is(up, remote.ErrDenied) {
		t.Errorf("Upstream: %v, want the registry's ErrManifestUnknown alone", up)
	}
	if _, err := ctrd.Pull(e.Ctx, e.Ctrd.Client, c, e.Reg.Ref("app:1")); err != nil {
		t.Errorf("Pull through failing mirrors of a tag the registry has: %v", err)
	}
}
