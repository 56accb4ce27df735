// Package pipeline runs build-and-deliver pipelines as a Go library: a DAG of steps in
// containers on an [edge.Runtime], an OCI image built from the result with package registry,
// pushed, and handed to a deployer (such as the orchestrator) to update a service.
//
// # Pipelines
//
// A [Pipeline] is plain data: steps with a name, an image and shell commands (or args), the
// steps they need (the edges of the DAG), a condition, a timeout, retries, a matrix, a cache,
// services and outputs. Build one in Go, or read one from YAML with [Parse] or [Load]; the
// format reads like a Woodpecker or GitHub Actions file, and takes their spellings (see
// Spellings). [Pipeline.Validate] refuses unknown and duplicate names, cycles, bad
// expressions (with the column) and fields that do not fit, each by its field, such as
// "steps.test.needs[0]: unknown step \"lint\"". [Parse] and [Load] report every problem of a
// file at once, those of its YAML and those of Validate, one a line, each with its line (and
// column, for a YAML syntax error or an expression), as a *[ParseError]:
//
//	invalid pipeline ci.yaml: 2 problems:
//	  ci.yaml:7: steps.test.needs[0]: unknown step "lint"
//	  ci.yaml:9:15: steps.test.if: unknown function "sucess"; did you mean success()?
//
// Both take time linear in the number of steps and needs, however deep the DAG.
//
// Steps pass values on through outputs: a container step appends "key=value" lines to the
// file $DAO_OUTPUT (also named $GITHUB_OUTPUT), and later steps read them as
// ${{ steps.<step>.outputs.<key> }} in their strings and conditions. Without a condition (If),
// a step runs when every step it needs, directly or not, succeeded.
//
// # Expressions
//
// Conditions and "${{ }}" in a step's strings are GitHub Actions' expressions, with GitHub's
// semantics: the literals null, true, false, numbers (JSON's, 0xff, 0o17, Infinity, NaN) and
// 'strings' (a quote in one doubled); the operators ( ) [ ] . ! < <= > >= == != && ||; the
// functions success(), failure(), always(), cancelled(), contains, startsWith, endsWith,
// format, join, toJSON, fromJSON and hashFiles (of workspace files, "**" and "!" patterns
// allowed); the contexts steps.<step>.outputs.<key>, steps.<step>.outcome and .conclusion
// ("success", "failure", "cancelled" or "skipped"; conclusion counts a failure allowed by
// continue_on_error as a success), steps.<step>.status (Dao's Status), matrix.<key>,
// env.<name> (the pipeline's env with the step's own over it, as written) and
// secrets.<name> (a secret given to the run, masked wherever it shows, in toJSON too). As in
// GitHub, comparisons of different types compare numbers (null and ” are 0, true 1),
// strings compare ignoring case, && and || give one of their operands (so
// "matrix.os == 'linux' && 'apt' || 'brew'" picks one), and false, 0, NaN, ” and null are
// false, everything else, the string 'false' too, true. A step reads only steps it needs,
// directly or not. Errors say the column, which Parse turns into the file's line and column;
// a context GitHub has and Dao has not (needs, github, vars...) is refused with what to write.
//
// # Spellings
//
// Dao's keys are the JSON names of Step, in snake_case. A step also takes the spellings that
// GitHub Actions and Woodpecker users write from habit, for the same field, and the error
// messages name the field as the file spells it:
//
//	Dao key             also written                               note
//	commands            run (GitHub)                               run is one script, or a list
//	continue_on_error   continue-on-error (GitHub)
//	timeout             timeout-minutes (GitHub)                   a number of minutes: 10, 0.5
//	working_dir         working-directory (GitHub)
//	env                 environment (Woodpecker)
//	needs               depends_on (Woodpecker)
//	if                  when (Woodpecker)                          status only: [success], [failure]
//	matrix              strategy.matrix (GitHub)                   fail_fast then defaults to true
//	fail_fast           fail-fast, strategy.fail-fast (GitHub)
//	max_parallel        max-parallel, strategy.max-parallel (GitHub)
//
// A field given under two of its spellings is an error naming both. Woodpecker's when
// becomes a condition: "status: [failure]" is failure(), both statuses always(), a list of
// whens holds when one does; its other conditions (branch, event...) are refused. Keys of
// GitHub files Dao has no use for (uses, with, id, runs-on, jobs, on) are refused with what
// to write instead, and a near miss of a key with "did you mean".
//
// # Matrix, shell and artifacts
//
// A matrix fans a step out over every combination of its values, less those matching an
// entry of matrix.exclude, with matrix.include's entries added as GitHub adds them (to every
// combination whose own values they do not change, else as instances of their own).
// fail_fast cancels the other instances once one fails; max_parallel bounds how many run
// at once.
//
// A step's commands run with "/bin/sh -c" and "set -e"; with shell they run as a script file
// as GitHub runs them: "bash" is "bash --noprofile --norc -eo pipefail {0}", "sh" is
// "sh -e {0}", and "python3 {0}" or any command line with {0} runs the script with it.
//
// Every step of a run shares one workspace, mounted at /workspace, so a file a step writes
// is there for the steps after it, as in Woodpecker. Artifacts are GitHub's upload-artifact
// and download-artifact for it: upload {name, paths} keeps the paths as they are when the
// step succeeds, under a name unique in the run (such as "app-${{ matrix.go }}"), and
// download [names] copies them back into the workspace, at their paths, before a step that
// needs the uploader starts, whatever was written there since. WithArtifactDir keeps them
// after the run; the record lists each (StepRecord.Artifact). Steps that run at the same time
// still write the same workspace: give each instance its own paths, or max_parallel: 1.
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
// pipeline is a *dao.ValidationError whose dao.FieldErrors errors.As sees one by one; from
// Parse and Load it is a *[ParseError], which lists each [Problem] with its field, line and
// column, and unwraps to the same *dao.ValidationError. An
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
