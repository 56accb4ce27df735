package pipeline_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opendao/dao"
	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/pipeline"
	"github.com/opendao/dao/registry"
	"github.com/opendao/dao/registry/ctrd"
	"github.com/opendao/dao/registry/layout"
	"github.com/opendao/dao/registry/remote"
)

// TestImagePushedToARegistryIsPulledBackAndRun builds an image in a pipeline, pushes it to a
// real registry (docker-registry) with the registry client, and deploys it with a deployer
// that pulls it back from the registry, imports it into containerd and runs it.
func TestImagePushedToARegistryIsPulledBackAndRun(t *testing.T) {
	reg := testutil.StartRegistry(t)
	e := newEnv(t)
	c, err := registry.NewClient(remote.WithHosts(map[string]remote.HostConfig{reg.Addr: {PlainHTTP: true}}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	bin, err := testutil.BuildTestApp()
	if err != nil {
		t.Fatalf("build testapp: %v", err)
	}
	ws := t.TempDir()
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, "app"), b, 0o755); err != nil {
		t.Fatal(err)
	}

	var (
		mu     sync.Mutex
		output string
	)
	// The deployer stands in for the orchestrator: a node pulls what it is told to run (here
	// into an OCI layout, then into containerd).
	deployer := pipeline.DeployerFunc(func(ctx context.Context, service, image string) error {
		dir := filepath.Join(t.TempDir(), "pulled")
		if _, err := c.PullLayout(ctx, image, dir); err != nil {
			return fmt.Errorf("pull back %s: %w", image, err)
		}
		layout, err := layout.Read(ctx, dir)
		if err != nil {
			return err
		}
		if len(layout.Entries) != 1 {
			return fmt.Errorf("pulled layout holds %d images, want 1", len(layout.Entries))
		}
		if _, err := ctrd.Import(e.ctrd.Context(ctx), e.ctrd.Client, image, layout.Entries[0].Artifact, ctrd.WithUnpack("overlayfs")); err != nil {
			return err
		}
		id := "deployed-" + service
		if _, err := e.rt.Run(ctx, id, dao.ContainerSpec{Image: image}); err != nil {
			return err
		}
		st, err := e.rt.Wait(ctx, id)
		if err != nil {
			return err
		}
		rc, err := e.rt.Logs(ctx, id, edge.LogOptions{})
		if err != nil {
			return err
		}
		out, _ := io.ReadAll(rc)
		rc.Close()
		mu.Lock()
		output = fmt.Sprintf("%s: %s", st.Reason(), out)
		mu.Unlock()
		return e.rt.Remove(ctx, id)
	})

	p := &pipeline.Pipeline{Steps: []pipeline.Step{
		e.sh("version", nil, `echo "tag=2.0.1" >> "$DAO_OUTPUT"`),
		{Name: "image", Needs: []string{"version"}, Build: &pipeline.Build{
			Ref:        reg.Ref("app:${{ steps.version.outputs.tag }}"),
			Add:        []pipeline.BuildFile{{Src: "app", Dst: "/app"}},
			Entrypoint: []string{"/app"},
			Cmd:        []string{"-say", "hello from the registry", "-exit", "0"},
		}},
		{Name: "deploy", Needs: []string{"image"}, Deploy: &pipeline.Deploy{Service: "web", Image: "${{ steps.image.outputs.image }}"}},
	}}
	rec, err := e.runner(pipeline.WithPusher(c), pipeline.WithDeployer(deployer)).Run(e.ctx, p, pipeline.WithWorkspace(ws))
	if err != nil {
		t.Fatalf("Run: %v\n%s\n%s", err, joinLogs(rec.Step("image")), rec.Step("deploy").Reason)
	}
	img := step(t, rec, "image")
	if want := reg.Ref("app@" + img.Outputs["digest"]); img.Outputs["image"] != want || img.Outputs["ref"] != reg.Ref("app:2.0.1") {
		t.Errorf("image outputs %v, want image %s", img.Outputs, want)
	}
	// The registry has the tag, pointing at the digest the step reported.
	desc, err := c.Resolve(e.ctx, img.Outputs["ref"])
	if err != nil || desc.Digest.String() != img.Outputs["digest"] {
		t.Errorf("registry resolves %s to %v, %v; want %s", img.Outputs["ref"], desc.Digest, err, img.Outputs["digest"])
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.HasPrefix(output, "exited with code 0: hello from the registry") {
		t.Errorf("the pulled-back image printed %q", output)
	}
	e.noContainersLeft()
}
