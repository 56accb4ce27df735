package pipeline_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/pipeline"
)

// TestContainerdCrashMidStep kills containerd with SIGKILL while a step runs and starts it
// again: the step's container lives on under its shim, so the step finishes as it would
// have, with all of its log and its exit code, its dependent runs, and nothing is left
// behind. In the second case the step ends while containerd is down, so its exit can only
// be found once containerd is back.
func TestContainerdCrashMidStep(t *testing.T) {
	for _, tc := range []struct {
		name       string
		sleep      string
		downFor    time.Duration
		wantStatus pipeline.Status
	}{
		{"step outlives the outage", "sleep 2", 0, pipeline.StatusSuccess},
		{"step exits during the outage", "sleep 0.5; exit 3", 2 * time.Second, pipeline.StatusFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			next := e.sh("next", []string{"work"}, "echo next ran")
			next.If = "always()"
			p := &pipeline.Pipeline{Name: "crash", Steps: []pipeline.Step{
				e.sh("work", nil, "echo begin", tc.sleep, "echo done"),
				next,
			}}
			// containerd goes away once the step's container runs, and comes back.
			crashed := make(chan error, 1)
			go func() {
				crashed <- func() error {
					for deadline := time.Now().Add(30 * time.Second); !e.stepRunning("work"); {
						if time.Now().After(deadline) {
							return errors.New("the step's container never ran")
						}
						time.Sleep(10 * time.Millisecond)
					}
					e.ctrd.Containerd.Kill()
					time.Sleep(tc.downFor)
					return e.ctrd.Containerd.Start()
				}()
			}()
			begin := time.Now()
			rec, err := e.runner().Run(e.ctx, p)
			t.Logf("run took %s: %v", time.Since(begin), err)
			if err := <-crashed; err != nil {
				t.Fatalf("crash: %v", err)
			}
			if rec == nil {
				t.Fatalf("Run: %v", err)
			}
			s := wantStatus(t, rec, "work", tc.wantStatus)
			logs := joinLogs(s)
			if !strings.Contains(logs, "begin") {
				t.Errorf("work's log lost lines across the crash:\n%s", logs)
			}
			if tc.wantStatus == pipeline.StatusSuccess && !strings.Contains(logs, "done") {
				t.Errorf("work's log lost lines across the crash:\n%s", logs)
			}
			if tc.wantStatus == pipeline.StatusFailure && (s.ExitCode == nil || *s.ExitCode != 3) {
				t.Errorf("work's exit code %v, want 3 (%s)", s.ExitCode, s.Reason)
			}
			wantStatus(t, rec, "next", pipeline.StatusSuccess)
			e.noContainersLeft()
		})
	}
}

// stepRunning reports whether a container of the step runs, as the runtime lists them.
func (e *env) stepRunning(step string) bool {
	cs, err := e.rt.List(e.ctx)
	if err != nil {
		return false
	}
	for _, c := range cs {
		if strings.Contains(c.ID, "-"+step+".") && c.State == edge.StateRunning {
			return true
		}
	}
	return false
}
