package pipeline_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/opendao/dao"
	"github.com/opendao/dao/pipeline"
)

// TestRunLeavesNothingRunning runs a small pipeline many times, to success and to
// cancellation, and checks that no goroutine of a run (its steps, log followers, service
// waits, timers' goroutines) and no container outlives Run. The Runtime's and the
// containerd client's own goroutines, started by a first run, are not the run's.
func TestRunLeavesNothingRunning(t *testing.T) {
	e := newEnv(t)
	r := e.runner(pipeline.WithStopGrace(100 * time.Millisecond))
	timeout := e.sh("timeout", nil, "sleep 30")
	timeout.Timeout = dao.Duration(300 * time.Millisecond)
	timeout.ContinueOnError = true
	services := e.sh("services", nil, "true")
	services.Services = []pipeline.Service{{Name: "db", Image: e.busybox, Commands: []string{"sleep 30"}}}
	services.ContinueOnError = true // the Runtime has no network: ErrNoNetwork, after its start
	p := &pipeline.Pipeline{Name: "small", Steps: []pipeline.Step{
		e.sh("out", nil, `echo "x=1" >> "$DAO_OUTPUT"`, "seq 1 200"),
		e.sh("in", []string{"out"}, `test "${{ steps.out.outputs.x }}" = 1`),
		timeout,
		services,
	}}
	slow := &pipeline.Pipeline{Name: "cancelled", Steps: []pipeline.Step{e.sh("slow", nil, "echo started", "sleep 30")}}
	run := func() {
		t.Helper()
		rec, err := r.Run(e.ctx, p)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		wantStatus(t, rec, "in", pipeline.StatusSuccess)
		wantStatus(t, rec, "timeout", pipeline.StatusTimedOut)
		wantStatus(t, rec, "services", pipeline.StatusFailure)

		ctx, cancel := context.WithCancel(e.ctx)
		defer cancel()
		rec, err = r.Run(ctx, slow, pipeline.WithLogFunc(func(l pipeline.LogLine) {
			if l.Text == "started" {
				cancel()
			}
		}))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run cancelled = %v, want context.Canceled", err)
		}
		wantStatus(t, rec, "slow", pipeline.StatusCancelled)
	}
	run() // the Runtime and the containerd client start their own goroutines
	ignore := goleak.IgnoreCurrent()
	for range 5 {
		run()
	}
	goleak.VerifyNone(t, ignore)
	e.noContainersLeft()
}
