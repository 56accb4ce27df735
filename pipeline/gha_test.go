package pipeline_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opendao/dao/pipeline"
)

// TestGitHubActionsHabitsRun runs a pipeline written with GitHub Actions' spellings and
// expressions: run scripts, shell, $GITHUB_OUTPUT, a matrix with include and exclude,
// artifacts uploaded per instance and downloaded by name (as each instance left its files,
// whatever the other wrote to the same paths later), continue-on-error read through
// steps.X.outcome and conclusion, fromJSON, contains, format, hashFiles and toJSON(secrets),
// which stays masked.
func TestGitHubActionsHabitsRun(t *testing.T) {
	e := newEnv(t)
	p, err := pipeline.Parse([]byte(`
env:
  TARGET: prod
steps:
  build:
    image: ` + e.busybox + `
    strategy:
      # One at a time: the instances write the same path of the shared workspace.
      max-parallel: 1
      matrix:
        v: ["1", "2", "3"]
        exclude: [{v: "3"}]
        include: [{v: "2", extra: "yes"}]
    shell: sh
    run: |
      mkdir -p out
      echo "v=$MATRIX_V extra=${{ matrix.extra }}" > out/app.txt
      echo 'list=["a","b"]' >> "$GITHUB_OUTPUT"
    upload: {name: "app-${{ matrix.v }}", paths: [out]}
  flaky:
    image: ` + e.busybox + `
    run: exit 3
    continue-on-error: true
  check:
    depends_on: [build, flaky]
    if: ${{ steps.flaky.outcome == 'failure' && steps.flaky.conclusion == 'success' }}
    image: ` + e.busybox + `
    download: [app-1]
    timeout-minutes: 1
    working-directory: out
    environment:
      HAS_B: ${{ contains(fromJSON(steps.build.outputs.list), 'B') }}
      WHERE: ${{ format('{0}-{1}', env.TARGET, steps.build.outcome) }}
      HASH: ${{ hashFiles('out/**') }}
      ALL: ${{ toJSON(secrets) }}
    run: |
      test "$(cat app.txt)" = "v=1 extra="
      echo "has_b=$HAS_B where=$WHERE hash=${#HASH}"
      echo "secrets: $ALL"
      echo 'token: ${{ secrets.TOKEN }}'
  skipped:
    needs: [check]
    if: steps.check.outcome != 'success'
    image: ` + e.busybox + `
    run: echo never
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	keep := t.TempDir()
	rec, err := e.runner().Run(e.ctx, p,
		pipeline.WithSecrets(map[string]string{"TOKEN": `to"ken\1`, "OTHER": "hunter2"}),
		pipeline.WithArtifactDir(keep))
	if err != nil {
		for _, s := range rec.Steps {
			t.Logf("%s:\n%s", s.Name, joinLogs(&s))
		}
		t.Fatalf("Run: %v", err)
	}
	for _, name := range []string{"build (v=1)", "build (extra=yes, v=2)"} {
		s := wantStatus(t, rec, name, pipeline.StatusSuccess)
		if s.Artifact == nil || s.Artifact.Files != 1 || s.Artifact.Dir == "" {
			t.Errorf("%s: artifact %+v, want one file kept", name, s.Artifact)
		}
	}
	if rec.Step("build (v=3)") != nil {
		t.Error("the excluded instance v=3 ran")
	}
	if b, err := os.ReadFile(filepath.Join(keep, "app-2", "out", "app.txt")); err != nil || string(b) != "v=2 extra=yes\n" {
		t.Errorf("kept artifact app-2: %q, %v", b, err)
	}
	if f := wantStatus(t, rec, "flaky", pipeline.StatusFailure); !f.ContinueOnError {
		t.Error("flaky: ContinueOnError not set")
	}
	c := wantStatus(t, rec, "check", pipeline.StatusSuccess)
	logs := joinLogs(c)
	for _, want := range []string{"has_b=true where=prod-success hash=64", "secrets: {", `"OTHER": "***"`, `"TOKEN": "***"`, "token: ***", "artifact app-1: downloaded out"} {
		if !strings.Contains(logs, want) {
			t.Errorf("check logs lack %q:\n%s", want, logs)
		}
	}
	for _, secret := range []string{"hunter2", `to"ken`, `to\"ken`} {
		if strings.Contains(logs, secret) {
			t.Errorf("check logs show the secret %q:\n%s", secret, logs)
		}
	}
	wantStatus(t, rec, "skipped", pipeline.StatusSkipped)
	e.noContainersLeft()
}

// TestFailFastCancelsTheOtherInstances: with fail-fast, the first failed instance of a
// matrix cancels the others; the run failed (it was not cancelled).
func TestFailFastCancelsTheOtherInstances(t *testing.T) {
	e := newEnv(t)
	p, err := pipeline.Parse([]byte(`
steps:
  test:
    image: ` + e.busybox + `
    strategy:
      matrix: {n: ["1", "2", "3"]}
    run: |
      if [ "$MATRIX_N" = 1 ]; then sleep 1; exit 1; fi
      sleep 60
  after:
    needs: [test]
    if: always()
    image: ` + e.busybox + `
    run: echo "test was ${{ steps.test.outcome }}"
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	start := time.Now()
	rec, err := e.runner().Run(e.ctx, p)
	var re *pipeline.RunError
	if !errors.As(err, &re) || !errors.Is(err, pipeline.ErrFailed) || len(re.Steps) != 1 || re.Steps[0].Step != "test (n=1)" {
		t.Fatalf("Run error %v, want a *RunError for test (n=1) only", err)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("the run took %s: the other instances were not cancelled", took)
	}
	if rec.Status != pipeline.StatusFailure {
		t.Errorf("run status %s, want failure", rec.Status)
	}
	for _, name := range []string{"test (n=2)", "test (n=3)"} {
		s := wantStatus(t, rec, name, pipeline.StatusCancelled)
		if s.Reason != "cancelled by fail_fast: instance test (n=1) failed" {
			t.Errorf("%s: reason %q", name, s.Reason)
		}
	}
	if a := wantStatus(t, rec, "after", pipeline.StatusSuccess); !strings.Contains(joinLogs(a), "test was cancelled") {
		t.Errorf("after logs:\n%s", joinLogs(a))
	}
	e.noContainersLeft()
}

// TestMaxParallelBoundsInstances: no two instances of a max-parallel 1 matrix overlap, and a
// step's shell decides how its script runs.
func TestMaxParallelBoundsInstances(t *testing.T) {
	e := newEnv(t)
	p, err := pipeline.Parse([]byte(`
steps:
  test:
    image: ` + e.busybox + `
    matrix: {n: ["1", "2", "3"]}
    max-parallel: 1
    shell: sh -eu {0}
    run: |
      mkdir /workspace/lock
      sleep 0.3
      rmdir /workspace/lock
  unset:
    image: ` + e.busybox + `
    shell: sh -eu {0}
    run: echo "$NOT_SET"
  bash:
    image: ` + e.busybox + `
    shell: bash
    run: echo hi
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	rec, err := e.runner(pipeline.WithParallelism(4)).Run(e.ctx, p)
	if !errors.Is(err, pipeline.ErrFailed) {
		t.Fatalf("Run error %v, want ErrFailed (unset and bash fail)", err)
	}
	for _, n := range []string{"1", "2", "3"} {
		wantStatus(t, rec, "test (n="+n+")", pipeline.StatusSuccess)
	}
	// sh -u refuses an unset variable; the image has no bash.
	if u := wantStatus(t, rec, "unset", pipeline.StatusFailure); !strings.Contains(joinLogs(u), "NOT_SET") {
		t.Errorf("unset logs:\n%s", joinLogs(u))
	}
	if b := wantStatus(t, rec, "bash", pipeline.StatusFailure); !strings.Contains(joinLogs(b), "bash") || b.ExitCode == nil || *b.ExitCode != 127 {
		t.Errorf("bash: exit %v, logs:\n%s", b.ExitCode, joinLogs(b))
	}
	e.noContainersLeft()
}
