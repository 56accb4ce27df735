package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/opendao/dao"
	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/pipeline"
)

func ExampleParse() {
	p, err := pipeline.Parse([]byte(`
name: app
steps:
  version:
    image: busybox
    commands:
      - echo "tag=1.2.$(date +%s)" >> "$DAO_OUTPUT"
  test:
    image: golang:1.26
    needs: [version]
    commands: [go test ./..., go build -o bin/app .]
    matrix:
      arch: [amd64, arm64]
    cache: {key_files: [go.sum], paths: [.cache/go]}
    services:
      db: {image: "postgres:16", ports: [5432]}
  image:
    needs: [test]
    build:
      ref: registry.example.com/app:${{ steps.version.outputs.tag }}
      add: [{src: bin/app, dst: /app}]
      entrypoint: [/app]
  deploy:
    needs: [image]
    deploy: {service: web, image: "${{ steps.image.outputs.image }}"}
  notify:
    needs: [deploy]
    if: failure()
    image: busybox
    commands: [echo "the delivery failed"]
`))
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range p.Steps {
		kind := "container " + s.Image
		switch {
		case s.Build != nil:
			kind = "build " + s.Build.Ref
		case s.Deploy != nil:
			kind = "deploy to " + s.Deploy.Service
		}
		fmt.Printf("%s (needs %v): %s\n", s.Name, s.Needs, kind)
	}
	// Output:
	// version (needs []): container busybox
	// test (needs [version]): container golang:1.26
	// image (needs [test]): build registry.example.com/app:${{ steps.version.outputs.tag }}
	// deploy (needs [image]): deploy to web
	// notify (needs [deploy]): container busybox
}

func ExampleParse_errors() {
	_, err := pipeline.Parse([]byte(`
steps:
  build:
    image: busybox
    needs: [lint]
    timeout: 5 minutes
  test:
    image: busybox
    needs: [build]
    if: steps.build.outputs.ok = 'yes'
    continue_on_eror: true
`))
	var verr *dao.ValidationError
	if errors.As(err, &verr) {
		for _, fe := range verr.Errors {
			fmt.Println(fe)
		}
	}
	// Output:
	// steps.build.needs[0]: unknown step "lint" (line 5)
	// steps.build.timeout: "5 minutes" is not a duration such as 30s or 5m (line 6)
	// steps.test.if: "=" is not an operator; compare with "==" (line 10, column 32)
	// steps.test.continue_on_eror: unknown field; did you mean "continue_on_error"? (line 11)
}

func ExamplePipeline_Validate() {
	p := &pipeline.Pipeline{Steps: []pipeline.Step{
		{Name: "build", Image: "busybox", Needs: []string{"test"}},
		{Name: "test", Image: "busybox", Needs: []string{"build"}},
		{Name: "deploy", Needs: []string{"lint"}, If: "steps.test.outputs.ok == 'yes' &&"},
	}}
	for _, fe := range p.Validate().(*dao.ValidationError).Errors {
		fmt.Println(fe)
	}
	// Output:
	// steps.deploy.needs[0]: unknown step "lint"
	// steps.deploy: must have an image (a container step), a build or a deploy
	// steps.deploy.if: column 34: unexpected end of expression, want a value: a string, a number, true, false, null, a function call or a name such as steps.<step>.outputs.<key>
}

// The examples below need root and a running containerd, so they are compiled but not run;
// the tests of this package run the same calls against a private containerd.

func ExampleRunner() {
	ctx := context.Background()
	rt, err := edge.New("/run/containerd/containerd.sock", edge.WithNamespace("ci"))
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	r, err := pipeline.NewRunner(rt, pipeline.WithParallelism(2), pipeline.WithCacheDir("/var/cache/ci"))
	if err != nil {
		log.Fatal(err)
	}
	p, err := pipeline.Load("pipeline.yaml")
	if err != nil {
		log.Fatal(err)
	}
	rec, err := r.Run(ctx, p,
		pipeline.WithWorkspace("/srv/checkout/app"),
		pipeline.WithSecrets(map[string]string{"TOKEN": os.Getenv("TOKEN")}),
		pipeline.WithLogFunc(func(l pipeline.LogLine) { fmt.Printf("%-10s %s\n", l.Step, l) }))
	if rec != nil {
		b, _ := json.MarshalIndent(rec, "", "  ")
		_ = os.WriteFile("run.json", b, 0o644)
	}
	if err != nil {
		log.Fatal(err)
	}
}

func ExampleDeployerFunc() {
	ctx := context.Background()
	rt, err := edge.New("/run/containerd/containerd.sock")
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	// Any deployment tool can be a Deployer; the orchestrator is one.
	deploy := pipeline.DeployerFunc(func(ctx context.Context, service, image string) error {
		log.Printf("rolling %s over to %s", service, image)
		return nil
	})
	r, err := pipeline.NewRunner(rt, pipeline.WithDeployer(deploy))
	if err != nil {
		log.Fatal(err)
	}
	rec, err := r.Run(ctx, &pipeline.Pipeline{Steps: []pipeline.Step{
		{Name: "deploy", Deploy: &pipeline.Deploy{Service: "web", Image: "registry.example.com/web@sha256:" + strings.Repeat("0", 64)}},
	}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rec.Status)
}

func ExampleRunError() {
	ctx := context.Background()
	rt, err := edge.New("/run/containerd/containerd.sock", edge.WithNamespace("ci"))
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	r, err := pipeline.NewRunner(rt)
	if err != nil {
		log.Fatal(err)
	}
	_, err = r.Run(ctx, &pipeline.Pipeline{Steps: []pipeline.Step{
		{Name: "test", Image: "busybox", Commands: []string{"exit 3"}},
		{Name: "lint", Image: "busybox", Commands: []string{"sleep 60"}, Timeout: dao.Duration(10e9)},
	}})
	var re *pipeline.RunError
	if errors.As(err, &re) { // errors.Is(err, pipeline.ErrFailed) holds too
		for _, s := range re.Steps {
			switch {
			case errors.Is(s, context.DeadlineExceeded):
				fmt.Println(s.Step, "timed out")
			case s.ExitCode != nil:
				fmt.Println(s.Step, "exited with", *s.ExitCode)
			default:
				fmt.Println(s.Step, "failed:", s.Err)
			}
		}
	}
}
