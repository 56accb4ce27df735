package server_test

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/opendao/dao/registry/build"
	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/remote"
	"github.com/opendao/dao/registry/server"
)

// TestDaoClient pushes an index of two images with Dao's own client, with basic auth on,
// and pulls it back: the server and the client agree on the protocol.
func TestDaoClient(t *testing.T) {
	h := newHub(t, server.WithAuthorizer(server.BasicAuth("hub", map[string]string{"ci": "secret"})))
	hs := httptest.NewServer(h.srv)
	t.Cleanup(hs.Close)
	host := strings.TrimPrefix(hs.URL, "http://")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var imgs []*oci.Image
	for i, arch := range []string{"amd64", "arm64"} {
		b, err := build.NewLayerBuilder()
		if err != nil {
			t.Fatal(err)
		}
		b.AddFile("app/data", 0o644, bytes.Repeat([]byte{byte('a' + i)}, 3<<20))
		layer, err := b.Build(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { layer.Close() })
		img, err := oci.NewImage([]*oci.Layer{layer}, ocispec.ImageConfig{Cmd: []string{"/bin/true"}},
			oci.WithPlatform(ocispec.Platform{OS: "linux", Architecture: arch}))
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
	}
	idx, err := oci.NewIndex(imgs)
	if err != nil {
		t.Fatal(err)
	}
	c, err := remote.NewClient(
		remote.WithHosts(map[string]remote.HostConfig{host: {PlainHTTP: true}}),
		remote.WithCredentials(host, remote.Credentials{Username: "ci", Password: "secret"}),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	desc, err := c.Push(ctx, host+"/team/app:1", idx)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != idx.Descriptor().Digest {
		t.Fatalf("pushed %s, want %s", desc.Digest, idx.Descriptor().Digest)
	}
	// A second push mounts nothing new and changes nothing.
	if _, err := c.Push(ctx, host+"/team/copy:1", idx); err != nil {
		t.Fatal(err)
	}
	m, err := c.Manifest(ctx, host+"/team/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if m.Index == nil || len(m.Index.Manifests) != 2 {
		t.Fatalf("pulled %+v", m.Descriptor)
	}
	im, err := c.FetchManifest(ctx, host+"/team/app", m.Index.Manifests[1])
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range im.Image.Layers {
		rc, err := c.FetchBlob(ctx, host+"/team/app", l)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil || n != l.Size {
			t.Fatalf("layer: %d bytes, %v", n, err)
		}
	}
	tags, err := c.Tags(ctx, host+"/team/app")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"1"}, tags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
	repos, err := c.Catalog(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"team/app", "team/copy"}, repos); diff != "" {
		t.Errorf("catalog (-want +got):\n%s", diff)
	}
}
