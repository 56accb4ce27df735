package pipeline_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opendao/dao/edge"
	"github.com/opendao/dao/pipeline"
)

// TestLargeStepLosesNoLogLine runs a step that writes, as fast as it can, far more than the
// Runtime's log rotation size: every line reaches the live log function, once and in order,
// even though the follower falls behind the container and the log is rotated under it.
func TestLargeStepLosesNoLogLine(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines int
		opts  []edge.Option
	}{
		// About 23 MB through the default 10 MiB rotation, checked often enough to rotate
		// while the step runs.
		{"default size", 3_000_000, []edge.Option{edge.WithLogCheckInterval(10 * time.Millisecond)}},
		// About 7 MB, rotated at 64 KiB every 10ms: a hundred rotations while the step runs.
		{"small rotation", 1_000_000, []edge.Option{edge.WithLogMaxSize(64 << 10), edge.WithLogCheckInterval(10 * time.Millisecond)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opts...)
			var (
				mu      sync.Mutex
				next    = 1
				bad     int
				first   string
				rotated bool
			)
			p := &pipeline.Pipeline{Steps: []pipeline.Step{e.sh("loud", nil, "seq 1 "+strconv.Itoa(tc.lines))}}
			begin := time.Now()
			rec, err := e.runner().Run(e.ctx, p, pipeline.WithLogFunc(func(l pipeline.LogLine) {
				if l.Runner {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if l.Text != strconv.Itoa(next) {
					if bad == 0 {
						first = "line " + strconv.Itoa(next) + ": got " + strconv.Quote(l.Text)
					}
					bad++
					if n, err := strconv.Atoi(l.Text); err == nil {
						next = n
					}
				}
				if next == tc.lines*3/4 {
					rotated = logRotated(e.rt.LogDir())
				}
				next++
			}))
			t.Logf("%d lines in %s", tc.lines, time.Since(begin))
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			wantStatus(t, rec, "loud", pipeline.StatusSuccess)
			mu.Lock()
			defer mu.Unlock()
			if bad > 0 || next != tc.lines+1 {
				t.Errorf("%d lines out of sequence (first: %s); last line read %d, want %d", bad, first, next-1, tc.lines)
			}
			if !rotated {
				t.Errorf("the log was not rotated while the step ran: the test tests nothing")
			}
		})
	}
}

// logRotated reports whether a log in dir was rotated.
func logRotated(dir string) bool {
	starts, _ := filepath.Glob(filepath.Join(dir, "*.log.start"))
	for _, s := range starts {
		if b, err := os.ReadFile(s); err == nil && strings.TrimSpace(string(b)) != "0" {
			return true
		}
	}
	return false
}
