// Package pipeline runs build-and-deliver pipelines as a Go library: a DAG of steps in
// containers on an [edge.Runtime], an OCI image built from the result with package registry,
// pushed, and handed to a deployer (such as the orchestrator) to update a service.
//
// # Pipelines
//
// A [Pipeline] is plain data: steps with a name, an image and shell commands (or args), the
// steps they need (the edges of the DAG), a condition, a timeout, retries, a matrix, a cache,
// services and outputs. Build one in Go, or read one from YAML with [Parse] or [Load]; the
// format reads like a Woodpecker or GitHub Actions file. [Pipeline.Validate] refuses unknown
// and duplicate names, cycles, bad expressions (with the column) and fields that do not fit,
// each by its field, such as "steps.test.needs[0]: unknown step \"lint\"". [Parse] reports
// every problem of a file at once, those of its YAML and those of Validate, each with its line
// (and column, for a YAML syntax error or an expression), such as
// "steps.test.needs[0]: unknown step \"lint\" (line 7)". Both take time linear in the number
// of steps and needs, however deep the DAG.
//
// Steps pass values on through outputs: a container step appends "key=value" lines to the
// file $DAO_OUTPUT, and later steps read them as ${{ steps.<step>.outputs.<key> }} in their
// strings and conditions. A condition (If) is a small expression language: strings,
// "==", "!=", "&&", "||", "!", and success(), failure(), always(), cancelled(). Without one, a
// step runs when every step it needs, directly or not, succeeded.
//
// # Running
//
// A [Runner] runs pipelines on a Runtime. Each step starts once the steps it needs have
// finished, up to a parallelism limit, in a container with the run's workspace mounted at
// /workspace (its working directory), secrets in its environment and masked wherever they
// could show, its services started beforehand on the Runtime's network, and its cache restored
// (and its work skipped, when it says so). Each attempt is a new container, removed after it.
// Run returns a [Record]: every step's status, exit code, times, attempts, outputs, cache hit,
// the reason it was skipped or failed, and its log lines, each with its time. A log function
// sees the same lines live: every line a container writes, once and in order, however much it
// writes (a line longer than [MaxLineBytes] comes in parts marked Cut). Cancelling the context
// stops every running container and removes it.
//
// Build steps ([Build]) make an OCI image from workspace paths and push it with a [Pusher]:
// a *registry.Client pushes it to an OCI registry ([WithPusher]); by default it is imported
// into containerd itself ([ContainerdPusher]), where later steps can run it. Deploy steps
// ([Deploy]) hand the pushed image, pinned to its digest, to a [Deployer] (the orchestrator,
// or a function).
//
// The smallest complete use, in Go (rt is an *edge.Runtime, with the busybox image in its
// containerd):
//
//	r, err := pipeline.NewRunner(rt)
//	if err != nil {
//		return err
//	}
//	rec, err := r.Run(ctx, &pipeline.Pipeline{Steps: []pipeline.Step{
//		{Name: "hello", Image: "busybox", Commands: []string{"echo hello"}},
//		{Name: "bye", Image: "busybox", Needs: []string{"hello"}, Commands: []string{"echo bye"}},
//	}})
//	if err != nil {
//		return err // a *pipeline.RunError (errors.Is(err, pipeline.ErrFailed)) when a step failed
//	}
//	fmt.Println(rec.Step("bye").Status) // success
//
// and the same pipeline in YAML, for [Parse]:
//
//	steps:
//	  hello:
//	    image: busybox
//	    commands: [echo hello]
//	  bye:
//	    image: busybox
//	    needs: [hello]
//	    commands: [echo bye]
//
// A fuller file, with every kind of step:
//
//	name: app
//	steps:
//	  version:
//	    image: busybox
//	    commands:
//	      - echo "tag=1.2.$(date +%s)" >> "$DAO_OUTPUT"
//	  test:
//	    image: golang:1.26
//	    needs: [version]
//	    commands: [go test ./..., go build -o bin/app .]
//	    env: {CGO_ENABLED: "0", GOCACHE: /workspace/.cache/go}
//	    cache: {key_files: [go.sum], paths: [.cache/go]}
//	    services:
//	      db: {image: postgres:16, ports: [5432], secrets: [POSTGRES_PASSWORD]}
//	    timeout: 10m
//	    retries: 1
//	  image:
//	    needs: [test]
//	    build:
//	      ref: registry.example.com/app:${{ steps.version.outputs.tag }}
//	      add: [{src: bin/app, dst: /app}]
//	      entrypoint: [/app]
//	  deploy:
//	    needs: [image]
//	    deploy: {service: web, image: "${{ steps.image.outputs.image }}"}
//	  notify:
//	    needs: [deploy]
//	    if: failure()
//	    image: busybox
//	    commands: [echo "the delivery failed"]
//
// # Errors
//
// Every error the package returns can be inspected with errors.Is and errors.As, and its
// sentinels are of containerd's error classes (github.com/containerd/errdefs). An invalid
// pipeline is a *dao.ValidationError whose dao.FieldErrors errors.As sees one by one. An
// option given a bad value is an error naming it that wraps [ErrInvalidOption] (of class
// dao.ErrInvalid). A run with failed steps returns a *[RunError] ([ErrFailed], of class
// errdefs.ErrAborted) listing a *[StepError] per failed step, each wrapping what failed it:
// context.DeadlineExceeded for a timeout, [ErrServiceNotReady] (errdefs.ErrUnavailable) or
// [ErrNoNetwork] (errdefs.ErrFailedPrecondition) for its services, a Pusher's or
// Deployer's error. A cancelled run's error wraps the context's.
//
// Run starts goroutines (one per step, one log follower per running container) and
// containers (steps' and services'); it returns only once all of them have ended and every
// container it made is removed, so nothing of a run outlives Run.
package pipeline
