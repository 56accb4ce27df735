package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opendao/dao"
	"github.com/opendao/dao/orchestrator"
)

func TestControlPlaneUsageErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	typo := write("typo.json", `{"name": "web", "replicas": 2, "container": {"imgae": "busybox"}}`)
	invalid := write("invalid.json", `{"name": "web", "replicas": -1, "container": {"image": "busybox"}}`)
	two := write("two.json", `{"name": "a", "container": {"image": "busybox"}} {}`)
	missing := filepath.Join(dir, "missing.json")
	for _, tc := range []struct {
		args []string
		want string // the beginning of the one line on stderr
	}{
		{[]string{"control-plane"}, "dao control-plane: --state-dir is required: the CA and the store are kept there (see 'dao help control-plane')"},
		{[]string{"control-plane", "--state-dir", dir, "--listen", "7450"}, `dao control-plane: --listen "7450": want host:port, such as 127.0.0.1:7450`},
		{[]string{"control-plane", "--state-dir", dir, "--advertise", ":7450"}, `dao control-plane: --advertise ":7450": want host:port, such as 10.0.0.1:7450`},
		{[]string{"control-plane", "--state-dir", dir, "--service", missing}, "dao control-plane: --service " + missing + ": no such file or directory"},
		{[]string{"control-plane", "--state-dir", dir, "--service", typo}, "dao control-plane: --service " + typo + `: json: unknown field "imgae"`},
		{[]string{"control-plane", "--state-dir", dir, "--service", invalid}, "dao control-plane: --service " + invalid + ": invalid service spec: replicas: must be >= 0, got -1"},
		{[]string{"control-plane", "--state-dir", dir, "--service", two}, "dao control-plane: --service " + two + ": more than one JSON value"},
		{[]string{"control-plane", "--state-dir", dir, "extra"}, `dao control-plane: unexpected argument "extra"`},
	} {
		status, out, errOut := runDao(t, append([]string{"--address", nowhere(t)}, tc.args...)...)
		if status != exitUsage {
			t.Errorf("dao %v: status %d, want %d (stderr %q)", tc.args, status, exitUsage, errOut)
		}
		if strings.Count(errOut, "\n") != 1 || out != "" {
			t.Errorf("dao %v: want one line on stderr and nothing on stdout, got stderr %q, stdout %q", tc.args, errOut, out)
		}
		if !strings.HasPrefix(errOut, tc.want) {
			t.Errorf("dao %v: stderr %q, want it to begin with %q", tc.args, errOut, tc.want)
		}
	}
}

// TestExampleServiceFile: the service of the README reads and validates.
func TestExampleServiceFile(t *testing.T) {
	spec, err := readServiceSpec(filepath.Join("testdata", "web.json"))
	if err != nil {
		t.Fatal(err)
	}
	if spec.Name != "web" || spec.Replicas != 2 || spec.Container.Image != defaultBusyboxName ||
		spec.Placement.MaxReplicasPerNode != 1 || spec.Container.HealthCheck == nil {
		t.Errorf("testdata/web.json: %+v", spec)
	}
}

func TestAdvertised(t *testing.T) {
	host, _ := os.Hostname()
	for _, tc := range []struct {
		advertise string
		listen    net.Addr
		want      string
	}{
		{"", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7450}, "127.0.0.1:7450"},
		{"cp.example:7450", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7450}, "cp.example:7450"},
		{"", &net.TCPAddr{IP: net.IPv4zero, Port: 7450}, net.JoinHostPort(host, "7450")},
		{"", &net.TCPAddr{IP: net.IPv6unspecified, Port: 7451}, net.JoinHostPort(host, "7451")},
		{"", &net.TCPAddr{IP: net.IPv6loopback, Port: 1}, "[::1]:1"},
	} {
		if got := advertised(tc.advertise, tc.listen); got != tc.want {
			t.Errorf("advertised(%q, %s) = %q, want %q", tc.advertise, tc.listen, got, tc.want)
		}
	}
}

func TestChangePrinter(t *testing.T) {
	node := func(state dao.NodeState, msg string) *orchestrator.Node {
		return &orchestrator.Node{Node: dao.Node{ID: "n1", Hostname: "h1", Platform: dao.Platform{OS: "linux", Architecture: "arm64"},
			Capacity: dao.Resources{MilliCPU: 1500, Memory: 2 * dao.GiB}, Labels: map[string]string{"zone": "b", "disk": "ssd"},
			Status: dao.NodeStatus{State: state, Message: msg}}}
	}
	task := func(nodeID string, state dao.TaskState, f func(*orchestrator.Task)) *orchestrator.Task {
		t := &orchestrator.Task{Task: dao.Task{ID: "web.1.ab", NodeID: nodeID, DesiredState: dao.TaskRunning,
			Status: dao.TaskStatus{State: state, Message: state.String()}}}
		if f != nil {
			f(t)
		}
		return t
	}
	events := []orchestrator.Event{
		{Kind: orchestrator.EventCreated, Node: node(dao.NodeReady, "")},
		{Kind: orchestrator.EventUpdated, Node: node(dao.NodeReady, "beat"), PrevNode: node(dao.NodeReady, "")}, // nothing to say
		{Kind: orchestrator.EventUpdated, Node: node(dao.NodeDisconnected, "silent for 5s"), PrevNode: node(dao.NodeReady, "")},
		{Kind: orchestrator.EventCreated, Task: task("", dao.TaskPending, nil)},
		{Kind: orchestrator.EventUpdated, Task: task("n1", dao.TaskAssigned, nil), PrevTask: task("", dao.TaskPending, nil)},
		{Kind: orchestrator.EventUpdated, Task: task("n1", dao.TaskRunning, nil), PrevTask: task("n1", dao.TaskStarting, nil)},
		{Kind: orchestrator.EventUpdated, Task: task("n1", dao.TaskRunning, func(t *orchestrator.Task) { t.Status.Health = dao.HealthHealthy }),
			PrevTask: task("n1", dao.TaskRunning, nil)},
		{Kind: orchestrator.EventUpdated, Task: task("n1", dao.TaskRunning, func(t *orchestrator.Task) { t.Status.Restarts = 2 }),
			PrevTask: task("n1", dao.TaskRunning, nil)},
		{Kind: orchestrator.EventUpdated, Task: task("n1", dao.TaskFailed, func(t *orchestrator.Task) { t.Status.Err = "exit 1" }),
			PrevTask: task("n1", dao.TaskRunning, nil)},
		{Kind: orchestrator.EventUpdated, Cause: "reconciler: web scaled to 0", Task: task("n1", dao.TaskRunning, func(t *orchestrator.Task) { t.DesiredState = dao.TaskShutdown }),
			PrevTask: task("n1", dao.TaskRunning, nil)},
		{Kind: orchestrator.EventDeleted, Task: task("n1", dao.TaskShutdown, nil)},
		{Kind: orchestrator.EventUpdated, Service: &orchestrator.Service{ID: "web", UpdateStatus: orchestrator.UpdateStatus{State: orchestrator.UpdateCompleted, Message: "update completed"}},
			PrevService: &orchestrator.Service{ID: "web", UpdateStatus: orchestrator.UpdateStatus{State: orchestrator.UpdateInProgress}}},
		{Kind: orchestrator.EventDeleted, Service: &orchestrator.Service{ID: "web"}},
		{Kind: orchestrator.EventDeleted, Node: node(dao.NodeDown, "")},
	}
	var out bytes.Buffer
	p := &changePrinter{w: &out, now: func() time.Time { return time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC) }}
	for _, e := range events {
		p.print(e)
	}
	want := `15:04:05 node n1 joined: host h1, linux/arm64, 1.5 CPUs, 2.0 GiB, disk=ssd, zone=b
15:04:05 node n1 disconnected (silent for 5s)
15:04:05 task web.1.ab created: pending
15:04:05 task web.1.ab placed on n1
15:04:05 task web.1.ab on n1: running
15:04:05 task web.1.ab on n1: healthy
15:04:05 task web.1.ab on n1: restarted by its node (2 restarts)
15:04:05 task web.1.ab on n1: failed (exit 1)
15:04:05 task web.1.ab on n1: to be stopped (reconciler: web scaled to 0)
15:04:05 task web.1.ab deleted
15:04:05 service web: update completed (update completed)
15:04:05 service web removed
15:04:05 node n1 removed
`
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("printed lines (-want +got):\n%s", diff)
	}
}
