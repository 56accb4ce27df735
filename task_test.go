package dao_test

import (
	"errors"
	"testing"

	"github.com/opendao/dao"
)

// allStates are the defined task states, in order.
var allStates = []dao.TaskState{
	dao.TaskPending, dao.TaskAssigned, dao.TaskPreparing, dao.TaskStarting, dao.TaskRunning,
	dao.TaskComplete, dao.TaskFailed, dao.TaskShutdown, dao.TaskRejected, dao.TaskOrphaned,
}

func TestTaskStateCanTransition(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		from, to dao.TaskState
		want     bool
	}{
		// Forward, one step or many.
		{dao.TaskPending, dao.TaskAssigned, true},
		{dao.TaskAssigned, dao.TaskPreparing, true},
		{dao.TaskPreparing, dao.TaskStarting, true},
		{dao.TaskStarting, dao.TaskRunning, true},
		{dao.TaskRunning, dao.TaskComplete, true},
		{dao.TaskRunning, dao.TaskFailed, true},
		{dao.TaskRunning, dao.TaskShutdown, true},
		{dao.TaskPending, dao.TaskRunning, true},
		{dao.TaskPending, dao.TaskRejected, true},
		{dao.TaskAssigned, dao.TaskRejected, true},
		{dao.TaskStarting, dao.TaskOrphaned, true},
		{dao.TaskPending, dao.TaskOrphaned, true},
		// Staying is a status update.
		{dao.TaskPending, dao.TaskPending, true},
		{dao.TaskRunning, dao.TaskRunning, true},
		// Never backward.
		{dao.TaskAssigned, dao.TaskPending, false},
		{dao.TaskRunning, dao.TaskStarting, false},
		{dao.TaskRunning, dao.TaskPending, false},
		{dao.TaskStarting, dao.TaskPreparing, false},
		// Terminal states stay.
		{dao.TaskComplete, dao.TaskComplete, true},
		{dao.TaskFailed, dao.TaskFailed, true},
		{dao.TaskShutdown, dao.TaskShutdown, true},
		{dao.TaskRejected, dao.TaskRejected, true},
		{dao.TaskOrphaned, dao.TaskOrphaned, true},
		{dao.TaskComplete, dao.TaskFailed, false},
		{dao.TaskFailed, dao.TaskShutdown, false},
		{dao.TaskShutdown, dao.TaskRejected, false},
		{dao.TaskRejected, dao.TaskOrphaned, false},
		{dao.TaskFailed, dao.TaskRunning, false},
		{dao.TaskComplete, dao.TaskPending, false},
		{dao.TaskOrphaned, dao.TaskRunning, false},
		// Undefined states go nowhere and nothing goes to them.
		{-1, dao.TaskPending, false},
		{dao.TaskOrphaned + 1, dao.TaskOrphaned + 1, false},
		{dao.TaskPending, dao.TaskOrphaned + 1, false},
		{dao.TaskRunning, 99, false},
		{-1, -1, false},
	} {
		if got := tc.from.CanTransition(tc.to); got != tc.want {
			t.Errorf("%v.CanTransition(%v) = %t, want %t", tc.from, tc.to, got, tc.want)
		}
	}
}

// TestTaskStateCanTransitionAllPairs checks every pair of defined states against the rule:
// forward or stay from a live state, stay from a terminal one.
func TestTaskStateCanTransitionAllPairs(t *testing.T) {
	t.Parallel()
	for _, from := range allStates {
		for _, to := range allStates {
			want := to >= from
			if from.Terminal() {
				want = to == from
			}
			if got := from.CanTransition(to); got != want {
				t.Errorf("%v.CanTransition(%v) = %t, want %t", from, to, got, want)
			}
		}
	}
}

func TestTaskStateTerminal(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s    dao.TaskState
		want bool
	}{
		{dao.TaskPending, false},
		{dao.TaskAssigned, false},
		{dao.TaskPreparing, false},
		{dao.TaskStarting, false},
		{dao.TaskRunning, false},
		{dao.TaskComplete, true},
		{dao.TaskFailed, true},
		{dao.TaskShutdown, true},
		{dao.TaskRejected, true},
		{dao.TaskOrphaned, true},
		{-1, false},
		{dao.TaskOrphaned + 1, false},
	} {
		if got := tc.s.Terminal(); got != tc.want {
			t.Errorf("%v.Terminal() = %t, want %t", tc.s, got, tc.want)
		}
	}
}

func TestTaskStateValid(t *testing.T) {
	t.Parallel()
	for _, s := range allStates {
		if !s.Valid() {
			t.Errorf("%v.Valid() = false, want true", s)
		}
	}
	for _, s := range []dao.TaskState{-1, dao.TaskOrphaned + 1, 1000} {
		if s.Valid() {
			t.Errorf("TaskState(%d).Valid() = true, want false", int(s))
		}
	}
}

func TestTaskStateString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s    dao.TaskState
		want string
	}{
		{dao.TaskPending, "pending"},
		{dao.TaskAssigned, "assigned"},
		{dao.TaskPreparing, "preparing"},
		{dao.TaskStarting, "starting"},
		{dao.TaskRunning, "running"},
		{dao.TaskComplete, "complete"},
		{dao.TaskFailed, "failed"},
		{dao.TaskShutdown, "shutdown"},
		{dao.TaskRejected, "rejected"},
		{dao.TaskOrphaned, "orphaned"},
		{-1, "TaskState(-1)"},
		{dao.TaskOrphaned + 1, "TaskState(10)"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("TaskState(%d).String() = %q, want %q", int(tc.s), got, tc.want)
		}
	}
}

func TestParseTaskState(t *testing.T) {
	t.Parallel()
	for _, s := range allStates {
		got, err := dao.ParseTaskState(s.String())
		if err != nil {
			t.Errorf("ParseTaskState(%q): %v", s.String(), err)
			continue
		}
		if got != s {
			t.Errorf("ParseTaskState(%q) = %v, want %v", s.String(), got, s)
		}
	}
	for _, name := range []string{"", "Running", "RUNNING", " running", "running ", "done", "TaskState(4)", "4"} {
		got, err := dao.ParseTaskState(name)
		if err == nil {
			t.Errorf("ParseTaskState(%q) = %v, nil; want an error", name, got)
			continue
		}
		if !errors.Is(err, dao.ErrInvalid) {
			t.Errorf("ParseTaskState(%q) = %v, want an error matching dao.ErrInvalid", name, err)
		}
	}
}
