package pipeline_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/opendao/dao/pipeline"
)

// TestQuickStepsKeepTheirOutput runs many steps that print a line and exit at once: the
// container is often gone before the shim's logger has copied its output, and each
// step's record must still hold its line.
func TestQuickStepsKeepTheirOutput(t *testing.T) {
	e := newEnv(t)
	const n = 24
	var steps []pipeline.Step
	for i := range n {
		steps = append(steps, e.sh(fmt.Sprintf("s%02d", i), nil, fmt.Sprintf("echo out-%02d", i)))
	}
	rec, err := e.runner().Run(e.ctx, &pipeline.Pipeline{Steps: steps})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		s := step(t, rec, fmt.Sprintf("s%02d", i))
		if want := fmt.Sprintf("out-%02d", i); !strings.Contains(joinLogs(s), want) {
			t.Errorf("step %s lost its output %q; logs:\n%s", s.Name, want, joinLogs(s))
		}
	}
}
