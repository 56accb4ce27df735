package dao_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendao/dao"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// roundTrip marshals in, unmarshals the result into a new T and fails t unless both are equal
// and marshalling again gives the same bytes. It returns the value read back.
func roundTrip[T any](t *testing.T, in T) T {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("Unmarshal(%s): %v", b, err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("after a JSON round trip through %s (-want +got):\n%s", b, diff)
	}
	b2, err := json.Marshal(out)
	if err != nil {
		t.Fatalf("Marshal again: %v", err)
	}
	if !bytes.Equal(b, b2) {
		t.Errorf("Marshal after the round trip:\ngot  %s\nwant %s", b2, b)
	}
	return out
}

func checkUTC(t *testing.T, name string, tm time.Time) {
	t.Helper()
	if tm.Location() != time.UTC {
		t.Errorf("%s is in %v after the round trip, want UTC", name, tm.Location())
	}
}

func TestJSONRoundTrip(t *testing.T) {
	t.Parallel()
	t.Run("ServiceSpec", func(t *testing.T) {
		roundTrip(t, fullService())
	})
	t.Run("Node", func(t *testing.T) {
		got := roundTrip(t, fullNode())
		checkUTC(t, "status.lastSeen", got.Status.LastSeen)
	})
	t.Run("Task", func(t *testing.T) {
		got := roundTrip(t, fullTask())
		checkUTC(t, "createdAt", got.CreatedAt)
		checkUTC(t, "status.startedAt", got.Status.StartedAt)
		checkUTC(t, "status.finishedAt", got.Status.FinishedAt)
		checkUTC(t, "status.timestamp", got.Status.Timestamp)
	})
}

// TestServiceSpecGoldenJSON pins the JSON field names of a small service spec. Run
// `go test -run GoldenJSON -update .` to rewrite testdata/service_spec.golden.json after a
// deliberate change.
func TestServiceSpecGoldenJSON(t *testing.T) {
	t.Parallel()
	spec := dao.ServiceSpec{
		Name:   "web",
		Labels: map[string]string{"tier": "frontend"},
		Container: dao.ContainerSpec{
			Image:     "registry.example.com/web:1.0",
			Env:       []string{"MODE=production"},
			Resources: dao.Resources{MilliCPU: 500, Memory: 64 * dao.MiB},
			Ports:     []dao.PortMapping{{Name: "http", ContainerPort: 8080, HostPort: 80}},
			HealthCheck: &dao.HealthCheck{
				Command:  []string{"/bin/check"},
				Interval: dur("15s"),
			},
			StopGracePeriod: dur("1m30s"),
		},
		Mode:     dao.ModeReplicated,
		Replicas: 3,
		Restart:  dao.RestartPolicy{Condition: dao.RestartOnFailure, MaxDelay: dur("30s"), MaxAttempts: 5},
		Update:   dao.UpdatePolicy{Parallelism: 1, Order: dao.StartFirst, MaxFailureRatio: 0.2},
		Rollback: dao.UpdatePolicy{Parallelism: 3, FailureAction: dao.ActionPause},
		Placement: dao.Placement{
			Constraints:        []string{"node.labels.zone == a"},
			MaxReplicasPerNode: 1,
			Platforms:          []dao.Platform{{OS: "linux", Architecture: "amd64"}},
		},
	}
	got, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		t.Fatalf("MarshalIndent: %v", err)
	}
	got = append(got, '\n')
	golden := filepath.Join("testdata", "service_spec.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("JSON of the spec differs from %s (-want +got):\n%s", golden, diff)
	}
	var back dao.ServiceSpec
	if err := json.Unmarshal(want, &back); err != nil {
		t.Fatalf("Unmarshal(%s): %v", golden, err)
	}
	if diff := cmp.Diff(spec, back); diff != "" {
		t.Errorf("spec read from %s (-want +got):\n%s", golden, diff)
	}
}

// TestJSONOmitsUnsetFields pins what the omitempty tags of struct and time.Time fields ask
// for: unset values are left out. BUG: encoding/json never treats a struct (Resources,
// RestartPolicy, UpdatePolicy, Placement, Platform, NodeStatus) or a time.Time as empty, so
// these fields are written as {} and "0001-01-01T00:00:00Z" today; the tags need omitzero.
func TestJSONOmitsUnsetFields(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{
			name: "ServiceSpec",
			v:    minimalService(),
			want: `{"name":"web","container":{"image":"busybox"}}`,
		},
		{
			name: "Node",
			v:    minimalNode(),
			want: `{"id":"node-1"}`,
		},
		{
			name: "Task",
			v:    minimalTask(),
			want: `{"id":"task-1","spec":{"image":"busybox"},"desiredState":"running","status":{"state":"pending"}}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := json.Marshal(tc.v)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("Marshal (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDurationUnmarshalJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{`"1.5s"`, 1500 * time.Millisecond},
		{`"250ms"`, 250 * time.Millisecond},
		{`"1m30s"`, 90 * time.Second},
		{`"0s"`, 0},
		{`"-2s"`, -2 * time.Second},
		{`1500000000`, 1500 * time.Millisecond},
		{`0`, 0},
		{`-1000`, -time.Microsecond},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var d dao.Duration
			if err := json.Unmarshal([]byte(tc.in), &d); err != nil {
				t.Fatalf("Unmarshal(%s): %v", tc.in, err)
			}
			if got := d.Std(); got != tc.want {
				t.Errorf("Unmarshal(%s) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
	for _, in := range []string{`"1.5"`, `"abc"`, `""`, `1.5`, `1e9`, `true`, `{}`, `[]`} {
		t.Run("invalid "+in, func(t *testing.T) {
			d := dao.Duration(time.Second)
			if err := json.Unmarshal([]byte(in), &d); err == nil {
				t.Errorf("Unmarshal(%s) = nil error and %v, want an error", in, d)
			}
		})
	}
}

func TestDurationMarshalJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{1500 * time.Millisecond, `"1.5s"`},
		{250 * time.Millisecond, `"250ms"`},
		{90 * time.Second, `"1m30s"`},
		{0, `"0s"`},
		{-time.Second, `"-1s"`},
	} {
		got, err := json.Marshal(dao.Duration(tc.d))
		if err != nil {
			t.Fatalf("Marshal(%v): %v", tc.d, err)
		}
		if string(got) != tc.want {
			t.Errorf("Marshal(%v) = %s, want %s", tc.d, got, tc.want)
		}
	}

	// In a struct, a set Duration is text and an unset one is left out.
	hc := dao.HealthCheck{Command: []string{"true"}, Interval: dao.Duration(1500 * time.Millisecond)}
	got, err := json.Marshal(hc)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"command":["true"],"interval":"1.5s"}`; string(got) != want {
		t.Errorf("Marshal(%+v) = %s, want %s", hc, got, want)
	}
	var back dao.HealthCheck
	if err := json.Unmarshal([]byte(`{"command":["true"],"interval":1500000000,"timeout":"2s"}`), &back); err != nil {
		t.Fatal(err)
	}
	want := dao.HealthCheck{Command: []string{"true"}, Interval: dur("1.5s"), Timeout: dur("2s")}
	if diff := cmp.Diff(want, back); diff != "" {
		t.Errorf("Unmarshal (-want +got):\n%s", diff)
	}

	if got, want := dao.Duration(1500*time.Millisecond).String(), "1.5s"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestTaskStateJSON(t *testing.T) {
	t.Parallel()
	for s := dao.TaskPending; s <= dao.TaskOrphaned; s++ {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("Marshal(%v): %v", s, err)
		}
		if want := `"` + s.String() + `"`; string(b) != want {
			t.Errorf("Marshal(%d) = %s, want %s", int(s), b, want)
		}
		var back dao.TaskState
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		if back != s {
			t.Errorf("Unmarshal(%s) = %v, want %v", b, back, s)
		}
	}

	got, err := json.Marshal(dao.TaskRunning)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"running"`; string(got) != want {
		t.Errorf("Marshal(TaskRunning) = %s, want %s", got, want)
	}

	var status dao.TaskStatus
	if err := json.Unmarshal([]byte(`{"state":"shutdown","exitCode":143}`), &status); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(dao.TaskStatus{State: dao.TaskShutdown, ExitCode: 143}, status); diff != "" {
		t.Errorf("Unmarshal TaskStatus (-want +got):\n%s", diff)
	}

	for _, in := range []string{`"sleeping"`, `"Running"`, `""`, `"TaskState(4)"`} {
		var s dao.TaskState
		err := json.Unmarshal([]byte(in), &s)
		if err == nil {
			t.Errorf("Unmarshal(%s) = nil error and %v, want an error", in, s)
			continue
		}
		if !errors.Is(err, dao.ErrInvalid) {
			t.Errorf("Unmarshal(%s) = %v, want an error matching dao.ErrInvalid", in, err)
		}
	}
	for _, in := range []string{`4`, `true`, `{}`} {
		var s dao.TaskState
		if err := json.Unmarshal([]byte(in), &s); err == nil {
			t.Errorf("Unmarshal(%s) = nil error and %v, want an error (states are names)", in, s)
		}
	}

	for _, s := range []dao.TaskState{-1, dao.TaskOrphaned + 1} {
		if b, err := json.Marshal(s); err == nil {
			t.Errorf("Marshal(TaskState(%d)) = %s, want an error", int(s), b)
		} else if !errors.Is(err, dao.ErrInvalid) {
			t.Errorf("Marshal(TaskState(%d)) = %v, want an error matching dao.ErrInvalid", int(s), err)
		}
	}
}
