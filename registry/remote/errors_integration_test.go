package remote_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/opendao/dao/registry/remote"
)

// TestMissingManifestIsNotFound asks a real registry for a tag it does not have: the error
// is the client's ErrManifestUnknown and of containerd's not-found class.
func TestMissingManifestIsNotFound(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t)
	c := newClient(t, []string{reg.Addr})
	ctx := context.Background()
	if _, err := c.Push(ctx, reg.Ref("app:1"), randomImage(t, 1<<10, "amd64")); err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"Manifest": func() error { _, err := c.Manifest(ctx, reg.Ref("app:missing")); return err },
		"Resolve":  func() error { _, err := c.Resolve(ctx, reg.Ref("app:missing")); return err },
		"Copy":     func() error { _, err := c.Copy(ctx, reg.Ref("app:missing"), reg.Ref("app:2")); return err },
	} {
		err := call()
		if !errdefs.IsNotFound(err) || !errors.Is(err, remote.ErrManifestUnknown) {
			t.Errorf("%s of a missing tag: %v, want errdefs.IsNotFound and remote.ErrManifestUnknown", name, err)
		}
	}
}

// answering returns a server that answers every request with status and the error code.
func answering(t *testing.T, status int, code string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(`{"errors":[{"code":"` + code + `","message":"from the test"}]}`))
	}))
	t.Cleanup(s.Close)
	return s
}

// TestMirrorErrorsAreKept has two mirrors fail with different errors before the registry:
// when the registry answers, the call succeeds; when it fails too, errors.Is and errors.As
// find every endpoint's error, and remote.Upstream the registry's alone.
func TestMirrorErrorsAreKept(t *testing.T) {
	t.Parallel()
	denied := answering(t, http.StatusForbidden, "DENIED")
	unknown := answering(t, http.StatusNotFound, "NAME_UNKNOWN")
	mirrors := []remote.Mirror{{URL: denied.URL}, {URL: unknown.URL}}
	ctx := context.Background()

	t.Run("registry answers", func(t *testing.T) {
		t.Parallel()
		reg := startRegistry(t)
		img := randomImage(t, 1<<10, "amd64")
		if _, err := newClient(t, []string{reg.Addr}).Push(ctx, reg.Ref("app:1"), img); err != nil {
			t.Fatal(err)
		}
		c := newClient(t, nil, remote.WithHosts(map[string]remote.HostConfig{reg.Addr: {PlainHTTP: true, Mirrors: mirrors}}))
		desc, err := c.Resolve(ctx, reg.Ref("app:1"))
		if err != nil || desc.Digest != img.Descriptor().Digest {
			t.Fatalf("Resolve through failing mirrors: %v, %s; want %s", err, desc.Digest, img.Descriptor().Digest)
		}
		if _, err := fetchAll(ctx, c, reg.Ref("app"), img.Layers()[0].Descriptor()); err != nil {
			t.Errorf("FetchBlob through failing mirrors: %v", err)
		}
	})

	t.Run("all fail", func(t *testing.T) {
		t.Parallel()
		up := answering(t, http.StatusMethodNotAllowed, "UNSUPPORTED")
		host := strings.TrimPrefix(up.URL, "http://")
		c := newClient(t, nil, remote.WithHosts(map[string]remote.HostConfig{host: {PlainHTTP: true, Mirrors: mirrors}}))
		_, err := c.Manifest(ctx, host+"/app:1")
		if err == nil {
			t.Fatal("Manifest succeeded against failing endpoints")
		}
		for _, want := range []error{remote.ErrDenied, remote.ErrNameUnknown, remote.ErrUnsupported} {
			if !errors.Is(err, want) {
				t.Errorf("errors.Is(%v, %v) is false", err, want)
			}
		}
		if !errdefs.IsPermissionDenied(err) || !errdefs.IsNotFound(err) || !errdefs.IsNotImplemented(err) {
			t.Errorf("%v: the error classes of every endpoint should match", err)
		}
		var re *remote.ResponseError
		if !errors.As(err, &re) || re.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("errors.As *ResponseError: %+v, want the registry's 405", re)
		}
		var fe *remote.FallbackError
		if !errors.As(err, &fe) || len(fe.Mirrors) != 2 {
			t.Fatalf("errors.As *FallbackError: %+v, want two mirrors' errors", fe)
		}
		if !errors.Is(fe.Mirrors[0], remote.ErrDenied) || !errors.Is(fe.Mirrors[1], remote.ErrNameUnknown) {
			t.Errorf("mirrors' errors, in order: %v", fe.Mirrors)
		}
		up2 := remote.Upstream(err)
		if !errors.Is(up2, remote.ErrUnsupported) || errors.Is(up2, remote.ErrDenied) || errors.Is(up2, remote.ErrNameUnknown) {
			t.Errorf("Upstream: %v, want the registry's error alone", up2)
		}
		for _, s := range []string{denied.URL, unknown.URL, up.URL} {
			if !strings.Contains(err.Error(), strings.TrimPrefix(s, "http://")) {
				t.Errorf("%q does not name %s", err, s)
			}
		}
	})
}
