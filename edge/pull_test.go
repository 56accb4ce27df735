package edge_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/registry"
	"github.com/opendao/dao/registry/remote"
)

// TestPullerFetchesMissingImages runs containers of an image only a registry has: the
// Runtime pulls it once, for several containers created at once.
func TestPullerFetchesMissingImages(t *testing.T) {
	t.Parallel()
	reg := testutil.StartRegistry(t)
	c, err := registry.NewClient(remote.WithHosts(map[string]remote.HostConfig{reg.Addr: {PlainHTTP: true}}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e := newEnv(t)
	ref := reg.Ref("edge/busybox:1")
	if _, err := c.Push(e.ctx, ref, testutil.BuildBusyboxImage(t)); err != nil {
		t.Fatalf("push: %v", err)
	}
	rt := e.runtime(edge.WithPuller(c))

	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = rt.Run(e.ctx, fmt.Sprintf("pulled-%d", i), dao.ContainerSpec{Image: ref, Command: []string{"echo", "pulled"}})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Run pulled-%d: %v", i, err)
		}
		id := fmt.Sprintf("pulled-%d", i)
		ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
		st, err := rt.Wait(ctx, id)
		cancel()
		if err != nil || st.ExitCode != 0 {
			t.Errorf("Wait(%s) = %+v, %v; want exit 0", id, st, err)
		}
	}
	// containerd itself has the image now, unpacked.
	img, err := e.ctrd.Client.GetImage(e.ctrd.Context(e.ctx), ref)
	if err != nil {
		t.Fatalf("containerd has no image %s: %v", ref, err)
	}
	if ok, err := img.IsUnpacked(e.ctrd.Context(e.ctx), "overlayfs"); !ok || err != nil {
		t.Errorf("IsUnpacked = %v, %v", ok, err)
	}

	// An image the registry does not have is ErrImageNotFound, as without a puller.
	err = rt.Create(e.ctx, "absent", dao.ContainerSpec{Image: reg.Ref("edge/absent:1")})
	if !errors.Is(err, edge.ErrImageNotFound) || !strings.Contains(err.Error(), "edge/absent:1") {
		t.Errorf("Create of an image no one has: err = %v, want ErrImageNotFound naming it", err)
	}
}
