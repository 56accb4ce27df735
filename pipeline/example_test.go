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

// A file written with GitHub Actions' and Woodpecker's spellings reads as Dao's keys.
func ExampleParse_gitHubActions() {
	p, err := pipeline.Parse([]byte(`
steps:
  build:
    image: busybox
    strategy:
      matrix:
        go: ["1.25", "1.26"]
        include: [{go: "1.26", latest: "true"}]
    shell: bash
    run: |
      go build ./...
      echo "sum=${{ hashFiles('**/go.sum') }}" >> "$GITHUB_OUTPUT"
    timeout-minutes: 10
    continue-on-error: ${{ false }}
  test:
    depends_on: [build]
    image: busybox
    working-directory: src
    environment: {MODE: ci}
    run: go test ./...
    if: ${{ success() && startsWith(steps.build.outputs.sum, 'a') }}
`))
	if err != nil {
		// continue-on-error takes true or false, not an expression.
		fmt.Println(err)
	}
	p, err = pipeline.Parse([]byte(`
steps:
  build:
    image: busybox
    strategy:
      matrix:
        go: ["1.25", "1.26"]
        include: [{go: "1.26", latest: "true"}]
    shell: bash
    run: |
      go build ./...
    timeout-minutes: 10
  test:
    depends_on: [build]
    image: busybox
    working-directory: src
    environment: {MODE: ci}
    run: go test ./...
    when: {status: [success, failure]}
`))
	if err != nil {
		log.Fatal(err)
	}
	b, t := p.Steps[0], p.Steps[1]
	fmt.Printf("build: matrix %v include %v, fail_fast %t, shell %s, timeout %s, commands %q\n",
		b.Matrix, b.MatrixInclude, b.FailFast, b.Shell, b.Timeout, b.Commands)
	fmt.Printf("test: needs %v, working_dir %s, env %v, if %s\n", t.Needs, t.WorkingDir, t.Env, t.If)
	// Output:
	// invalid pipeline: line 14: steps.build.continue-on-error: must be true or false; an expression is not evaluated here
	// build: matrix map[go:[1.25 1.26]] include [map[go:1.26 latest:true]], fail_fast true, shell bash, timeout 10m0s, commands ["go build ./...\n"]
	// test: needs [build], working_dir src, env map[MODE:ci], if always()
}

// Parse and Load list every problem of a file one a line; errors.As gives each with its
// field, line and column.
func ExampleParseError() {
	_, err := pipeline.Parse([]byte(`
steps:
  build:
    image: busybox
    run: make
    commands: [make test]
  test:
    image: busybox
    needs: [biuld]
    if: startswith(steps.build.outputs.v, '1')
`))
	fmt.Println(err)
	var pe *pipeline.ParseError
	if errors.As(err, &pe) {
		for _, p := range pe.Problems {
			fmt.Printf("%s at %d:%d\n", p.Field, p.Line, p.Column)
		}
	}
	// Output:
	// invalid pipeline: 3 problems:
	//   line 6: steps.build.commands: is "commands" again: give only one of "run" and "commands"
	//   line 9: steps.test.needs[0]: unknown step "biuld"
	//   line 10, column 9: steps.test.if: unknown function "startswith"; did you mean startsWith()?
	// steps.build.commands at 6:0
	// steps.test.needs[0] at 9:0
	// steps.test.if at 10:9
}

// A step uploads an artifact; a step that needs it downloads it by name, and the run keeps it
// in the directory of WithArtifactDir.
func ExampleWithArtifactDir() {
	ctx := context.Background()
	var rt *edge.Runtime // a Runtime with the busybox image
	r, err := pipeline.NewRunner(rt)
	if err != nil {
		log.Fatal(err)
	}
	p, err := pipeline.Parse([]byte(`
steps:
  build:
    image: busybox
    matrix: {arch: [amd64, arm64]}
    run: mkdir -p dist/$MATRIX_ARCH && echo app > dist/$MATRIX_ARCH/app
    upload: {name: "app-${{ matrix.arch }}", paths: ["dist/${{ matrix.arch }}"]}
  package:
    needs: [build]
    image: busybox
    download: [app-amd64]
    run: ls dist/amd64
`))
	if err != nil {
		log.Fatal(err)
	}
	rec, err := r.Run(ctx, p, pipeline.WithArtifactDir("/var/lib/ci/artifacts"))
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range rec.Steps {
		if a := s.Artifact; a != nil {
			fmt.Printf("%s: %s, %d files in %s\n", s.Name, a.Name, a.Files, a.Dir)
		}
	}
}
