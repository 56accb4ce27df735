package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/opendao/dao"
	"github.com/opendao/dao/pipeline"
)

// TestRunErrorListsEveryFailedStep: a run with several failed steps returns a *RunError
// that errors.Is matches to ErrFailed and to the error of each failed step (a Deployer's
// error, a step's timeout), errors.As gives a *StepError naming each, a step allowed to fail
// is not among them, and no secret shows in the error's text.
func TestRunErrorListsEveryFailedStep(t *testing.T) {
	e := newEnv(t)
	errBoom := errors.New("boom")
	deployer := pipeline.DeployerFunc(func(ctx context.Context, service, image string) error {
		return fmt.Errorf("token s3cret refused: %w", errBoom)
	})
	slow := e.sh("slow", nil, "sleep 30")
	slow.Timeout = dao.Duration(500 * 1e6)
	allowed := e.sh("allowed", nil, "exit 4")
	allowed.ContinueOnError = true
	p := &pipeline.Pipeline{Name: "fails", Steps: []pipeline.Step{
		e.sh("exit", nil, "exit 3"),
		slow,
		allowed,
		{Name: "deploy", Deploy: &pipeline.Deploy{Service: "web", Image: e.busybox}},
		e.sh("after", []string{"exit"}, "true"),
	}}
	rec, err := e.runner(pipeline.WithDeployer(deployer)).Run(e.ctx, p,
		pipeline.WithSecrets(map[string]string{"TOKEN": "s3cret"}))
	if rec == nil || err == nil {
		t.Fatalf("Run = %v, %v; want a record and an error", rec, err)
	}
	if !errors.Is(err, pipeline.ErrFailed) || !errdefs.IsAborted(err) {
		t.Errorf("Run error %v: not ErrFailed of class errdefs.ErrAborted", err)
	}
	if !errors.Is(err, errBoom) {
		t.Errorf("errors.Is(err, the Deployer's error) = false: %v", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(err, context.DeadlineExceeded) = false for the step that timed out: %v", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("the secret shows in the run's error: %v", err)
	}
	var re *pipeline.RunError
	if !errors.As(err, &re) {
		t.Fatalf("errors.As(err, *RunError) = false: %T", err)
	}
	if re.RunID != rec.RunID {
		t.Errorf("RunError.RunID %q, record's %q", re.RunID, rec.RunID)
	}
	got := map[string]*pipeline.StepError{}
	for _, se := range re.Steps {
		got[se.Step] = se
	}
	if len(got) != 3 || got["exit"] == nil || got["slow"] == nil || got["deploy"] == nil {
		t.Fatalf("failed steps %v, want exit, slow and deploy", err)
	}
	if se := got["exit"]; se.Status != pipeline.StatusFailure || se.ExitCode == nil || *se.ExitCode != 3 || se.Err != nil {
		t.Errorf("exit: %+v, want a failure with exit code 3 and no error", se)
	}
	if se := got["slow"]; se.Status != pipeline.StatusTimedOut || !errors.Is(se, context.DeadlineExceeded) {
		t.Errorf("slow: %+v, want timed out, DeadlineExceeded", se)
	}
	if se := got["deploy"]; se.Status != pipeline.StatusFailure || !errors.Is(se, errBoom) || strings.Contains(se.Err.Error(), "s3cret") {
		t.Errorf("deploy: %+v (%v), want a failure wrapping the Deployer's error, secret masked", se, se.Err)
	}
	var se *pipeline.StepError
	if !errors.As(err, &se) || se.Step != re.Steps[0].Step {
		t.Errorf("errors.As(err, *StepError) = %v, want the first failed step", se)
	}
	want := "pipeline: run failed: "
	for i, s := range re.Steps {
		if i > 0 {
			want += "; "
		}
		want += s.Step + " (" + step(t, rec, s.Step).Reason + ")"
	}
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	e.noContainersLeft()
}
