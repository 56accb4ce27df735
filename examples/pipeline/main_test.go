package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendao/dao/internal/testutil"
	"github.com/opendao/dao/pipeline"
)

// TestPipeline runs the example twice over, as `go run ./examples/pipeline` does, against a
// private containerd and a private registry, and checks what it prints.
func TestPipeline(t *testing.T) {
	testutil.RequireIntegration(t, "containerd", "runc", "go", "docker-registry", "busybox", "iptables", "ip")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, &out, config{runs: 2})
	got := out.String()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, got)
	}
	for _, want := range []string{
		"registry at 127.0.0.1:",
		"workspace ",
		`run 1 of pipeline "webapp": version 1.0.1`,
		"| releasing webapp 1.0.1 to 127.0.0.1:",
		"| --- PASS: TestAnswersWithItsVersionAndHost",
		"* cache: saved",
		"service web does not exist yet: creating it with 2 replicas",
		"2 replicas running and healthy after",
		"run run1: success in",
		", version 1.0.1",
		`run 2 of pipeline "webapp": version 1.0.2`,
		"* cache hit",
		"rolling service web over to the new image",
		"orchestrator: updater: update web: starting new tasks for slot",
		"update completed after",
		"run run2: success in",
		", version 1.0.2",
		"service and containers removed",
		"pipeline example finished in",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// The summary of the second run: the tests were a cache hit, the notification skipped.
	for _, want := range [][]string{
		{"test", "success", "hit", "cache hit: work skipped"},
		{"image", "success", "-", "pushed 127.0.0.1:"},
		{"deploy", "success"},
		{"notify", "skipped"},
	} {
		if !hasRow(got[strings.Index(got, "run run2:"):], want) {
			t.Errorf("the summary of run 2 lacks a row %q", want)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("output:\n%s", got)
	}
}

// hasRow reports whether a line of out has the fields of want, in order, from its first.
func hasRow(out string, want []string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != want[0] {
			continue
		}
		rest := strings.Join(f, " ")
		ok := true
		for _, w := range want {
			i := strings.Index(rest, w)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(w):]
		}
		if ok {
			return true
		}
	}
	return false
}

// TestPipelineGitHubSpellingsLoads: pipeline-gha.yaml, the example written with GitHub
// Actions' spellings, is the same pipeline as pipeline.yaml but for how its scripts run.
func TestPipelineGitHubSpellingsLoads(t *testing.T) {
	ours, err := pipeline.Load("pipeline.yaml")
	if err != nil {
		t.Fatalf("Load(pipeline.yaml): %v", err)
	}
	theirs, err := pipeline.Load("pipeline-gha.yaml")
	if err != nil {
		t.Fatalf("Load(pipeline-gha.yaml): %v", err)
	}
	// GitHub's spelling: one script for run, a script file for shell: sh, $GITHUB_OUTPUT,
	// conditions in ${{ }}.
	for i := range theirs.Steps {
		s := &theirs.Steps[i]
		if len(s.Commands) == 1 {
			s.Commands = strings.Split(strings.TrimSuffix(strings.ReplaceAll(s.Commands[0], "GITHUB_OUTPUT", "DAO_OUTPUT"), "\n"), "\n")
		}
		s.Shell = ""
		s.If = strings.TrimSuffix(strings.TrimPrefix(s.If, "${{ "), " }}")
	}
	if diff := cmp.Diff(ours, theirs); diff != "" {
		t.Errorf("pipeline.yaml and pipeline-gha.yaml differ (-ours +theirs):\n%s", diff)
	}
}

// TestPipelineGitHubSpellingsRuns runs pipeline-gha.yaml once, as
// `go run ./examples/pipeline -f pipeline-gha.yaml` does.
func TestPipelineGitHubSpellingsRuns(t *testing.T) {
	testutil.RequireIntegration(t, "containerd", "runc", "go", "docker-registry", "busybox", "iptables", "ip")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, &out, config{runs: 1, file: "pipeline-gha.yaml"})
	got := out.String()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, got)
	}
	for _, want := range []string{
		`run 1 of pipeline "webapp": version 1.0.1`,
		"| releasing webapp 1.0.1 to 127.0.0.1:",
		"| --- PASS: TestAnswersWithItsVersionAndHost",
		"service web does not exist yet: creating it with 2 replicas",
		"run run1: success in",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	for _, want := range [][]string{{"test", "success"}, {"image", "success"}, {"deploy", "success"}, {"notify", "skipped"}} {
		if !hasRow(got[strings.Index(got, "run run1:"):], want) {
			t.Errorf("the summary lacks a row %q", want)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("output:\n%s", got)
	}
}
