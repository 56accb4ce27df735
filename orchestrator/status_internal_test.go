package orchestrator

import (
	"fmt"
	"testing"
)

// A status transaction takes the reports of at most limit tasks, however many reports
// each task has queued, so that a task's preparing, starting and running make one write.
func TestStatusPrefix(t *testing.T) {
	report := func(id string) statusReport { return statusReport{nodeID: "n1", u: TaskUpdate{TaskID: id}} }
	var q []statusReport
	for i := range 10 {
		for range 3 {
			q = append(q, report(fmt.Sprintf("t%d", i)))
		}
	}
	if n := statusPrefix(q, 100); n != len(q) {
		t.Errorf("fewer reports than the limit: took %d of %d", n, len(q))
	}
	if n := statusPrefix(q, 4); n != 12 {
		t.Errorf("limit 4 tasks, 3 reports each: took %d reports, want 12", n)
	}
	// Interleaved: t0 t1 t0 t1 t2 ... the prefix stops before the first report of a fifth task.
	q = []statusReport{report("a"), report("b"), report("a"), report("c"), report("b"), report("d"), report("e"), report("a")}
	if n := statusPrefix(q, 4); n != 6 {
		t.Errorf("interleaved: took %d reports, want 6", n)
	}
	if n := statusPrefix(q, 1); n != 1 {
		t.Errorf("limit 1: took %d reports, want 1", n)
	}
}
