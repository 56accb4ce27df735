package remote_test

import (
	"context"
	"net"
	"testing"

	"github.com/opendao/dao/registry/oci"
	"github.com/opendao/dao/registry/remote"
)

func TestMirrorsFallBackToUpstream(t *testing.T) {
	up, mirror := startRegistry(t), startRegistry(t)
	ctx := context.Background()
	direct := newClient(t, []string{up.Addr, mirror.Addr})
	upImg, mirrorImg := randomImage(t, 100<<10, "amd64"), randomImage(t, 100<<10, "amd64")
	if _, err := direct.Push(ctx, up.Ref("app:1"), upImg); err != nil {
		t.Fatal(err)
	}
	// A port that nothing listens on: a mirror that is down.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String()
	l.Close()

	for _, tc := range []struct {
		name    string
		mirrors []remote.Mirror
		// onMirror pushes the mirror's own image to it first.
		onMirror bool
		want     *oci.Image
	}{
		{"mirror lacks the image", []remote.Mirror{{URL: "http://" + mirror.Addr}}, false, upImg},
		{"mirror down", []remote.Mirror{{URL: down}, {URL: "http://" + mirror.Addr}}, false, upImg},
		{"mirror has the tag", []remote.Mirror{{URL: "http://" + mirror.Addr}}, true, mirrorImg},
		{"mirror may not resolve tags", []remote.Mirror{{URL: "http://" + mirror.Addr, Capabilities: remote.CapPull}}, true, upImg},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.onMirror {
				if _, err := direct.Push(ctx, mirror.Ref("app:1"), mirrorImg); err != nil {
					t.Fatal(err)
				}
			}
			c := newClient(t, nil, remote.WithHosts(map[string]remote.HostConfig{
				up.Addr: {PlainHTTP: true, Mirrors: tc.mirrors},
			}))
			desc, err := c.Resolve(ctx, up.Ref("app:1"))
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if desc.Digest != tc.want.Descriptor().Digest {
				t.Errorf("Resolve: got %s, want %s", desc.Digest, tc.want.Descriptor().Digest)
			}
			got, err := fetchAll(ctx, c, up.Ref("app"), tc.want.Layers()[0].Descriptor())
			if err != nil || string(got) != string(layerBytes(t, tc.want)) {
				t.Errorf("FetchBlob: %v", err)
			}
		})
	}
}
