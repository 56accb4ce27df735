package policy

import (
	"errors"
	"testing"
	"time"

	"github.com/opendao/dao"
)

func TestNodeReady(t *testing.T) {
	t.Parallel()
	tests := []struct {
		state dao.NodeState
		avail dao.Availability
		want  error
	}{
		{dao.NodeReady, "", nil},
		{dao.NodeReady, dao.Active, nil},
		{dao.NodeReady, dao.Pause, ErrNodePaused},
		{dao.NodeReady, dao.Drain, ErrNodeDraining},
		{dao.NodeReady, "retired", ErrNodePaused},
		{dao.NodeDown, "", ErrNodeNotReady},
		{dao.NodeDisconnected, "", ErrNodeNotReady},
		{dao.NodeUnknown, "", ErrNodeNotReady},
		{"", "", ErrNodeNotReady},
		{dao.NodeDown, dao.Drain, ErrNodeNotReady},
	}
	f := NodeReady()
	for _, tt := range tests {
		n := NewNodeInfo(nil, &dao.Node{ID: "n", Availability: tt.avail, Status: dao.NodeStatus{State: tt.state}})
		if got := f.Func(&dao.Task{}, n); got != tt.want {
			t.Errorf("state %q availability %q: got %v, want %v", tt.state, tt.avail, got, tt.want)
		}
	}
}

func TestResourcesFit(t *testing.T) {
	t.Parallel()
	alloc := dao.Resources{MilliCPU: 2000, Memory: 4 * dao.GiB, Pids: 100}
	tests := []struct {
		name        string
		allocatable dao.Resources
		on          []*dao.Task // already on the node
		t           *dao.Task
		want        error
	}{
		{"empty node", alloc, nil, task("t", "s", dao.Resources{MilliCPU: 2000, Memory: 4 * dao.GiB, Pids: 100}), nil},
		{"exactly full", alloc, []*dao.Task{task("a", "s", dao.Resources{MilliCPU: 1000, Memory: 2 * dao.GiB, Pids: 50})},
			task("t", "s", dao.Resources{MilliCPU: 1000, Memory: 2 * dao.GiB, Pids: 50}), nil},
		{"cpu", alloc, []*dao.Task{task("a", "s", dao.Resources{MilliCPU: 1500})},
			task("t", "s", dao.Resources{MilliCPU: 501}), ErrInsufficientCPU},
		{"memory", alloc, []*dao.Task{task("a", "s", dao.Resources{Memory: 3 * dao.GiB})},
			task("t", "s", dao.Resources{Memory: dao.GiB + 1}), ErrInsufficientMemory},
		{"pids", alloc, nil, task("t", "s", dao.Resources{Pids: 101}), ErrInsufficientPids},
		{"cpu checked before memory", alloc, nil, task("t", "s", dao.Resources{MilliCPU: 3000, Memory: 5 * dao.GiB}), ErrInsufficientCPU},
		{"no limit needs nothing", alloc, []*dao.Task{task("a", "s", alloc)}, task("t", "s", dao.Resources{}), nil},
		{"overcommitted node, no limit", alloc, []*dao.Task{task("a", "s", alloc), task("b", "s", alloc)}, task("t", "s", dao.Resources{}), nil},
		{"overcommitted node, a limit", alloc, []*dao.Task{task("a", "s", alloc), task("b", "s", alloc)},
			task("t", "s", dao.Resources{MilliCPU: 10}), ErrInsufficientCPU},
		{"unreported pids are not limited", dao.Resources{MilliCPU: 1000, Memory: dao.GiB}, nil,
			task("t", "s", dao.Resources{Pids: 1 << 20}), nil},
		{"node that reports nothing", dao.Resources{}, nil, task("t", "s", dao.Resources{MilliCPU: 64000, Memory: 512 * dao.GiB}), nil},
		{"host port taken", alloc, []*dao.Task{task("a", "s", dao.Resources{}, 8080)}, task("t", "s", dao.Resources{}, 9090, 8080), ErrHostPortInUse},
		{"host port free", alloc, []*dao.Task{task("a", "s", dao.Resources{}, 8080)}, task("t", "s", dao.Resources{}, 8081), nil},
		{"same port, other protocol", alloc, []*dao.Task{task("a", "s", dao.Resources{}, 53)},
			&dao.Task{ID: "t", Spec: dao.ContainerSpec{Ports: []dao.PortMapping{{ContainerPort: 53, HostPort: 53, Protocol: "udp"}}}}, nil},
		{"tcp is the default protocol", alloc, []*dao.Task{task("a", "s", dao.Resources{}, 53)},
			&dao.Task{ID: "t", Spec: dao.ContainerSpec{Ports: []dao.PortMapping{{ContainerPort: 53, HostPort: 53, Protocol: "tcp"}}}}, ErrHostPortInUse},
		{"container ports without host ports never clash", alloc, []*dao.Task{task("a", "s", dao.Resources{}, 80)},
			&dao.Task{ID: "t", Spec: dao.ContainerSpec{Ports: []dao.PortMapping{{ContainerPort: 80}}}}, nil},
	}
	f := ResourcesFit()
	for _, tt := range tests {
		node := readyNode("n", nil)
		node.Allocatable = tt.allocatable
		n := NewNodeInfo(nil, node)
		for _, on := range tt.on {
			n.AddTask(on)
		}
		if got := f.Func(tt.t, n); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestPlatforms(t *testing.T) {
	t.Parallel()
	linuxAMD := dao.Platform{OS: "linux", Architecture: "amd64"}
	tests := []struct {
		name string
		want []dao.Platform
		node dao.Platform
		ok   bool
	}{
		{"none wanted", nil, dao.Platform{}, true},
		{"same", []dao.Platform{linuxAMD}, linuxAMD, true},
		{"alias x86_64", []dao.Platform{linuxAMD}, dao.Platform{OS: "linux", Architecture: "x86_64"}, true},
		{"alias aarch64", []dao.Platform{{OS: "linux", Architecture: "aarch64"}}, dao.Platform{OS: "linux", Architecture: "arm64"}, true},
		{"other arch", []dao.Platform{linuxAMD}, dao.Platform{OS: "linux", Architecture: "arm64"}, false},
		{"second of two", []dao.Platform{linuxAMD, {OS: "linux", Architecture: "arm64"}}, dao.Platform{OS: "linux", Architecture: "arm64"}, true},
		{"os only", []dao.Platform{{OS: "linux"}}, dao.Platform{OS: "linux", Architecture: "riscv64"}, true},
		{"other os", []dao.Platform{{OS: "linux"}}, dao.Platform{OS: "windows", Architecture: "amd64"}, false},
		{"variant wanted", []dao.Platform{{OS: "linux", Architecture: "arm", Variant: "v7"}}, dao.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}, false},
		{"variant matches", []dao.Platform{{OS: "linux", Architecture: "arm", Variant: "v7"}}, dao.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, true},
		{"node reports nothing", []dao.Platform{linuxAMD}, dao.Platform{}, false},
	}
	for _, tt := range tests {
		n := NewNodeInfo(nil, &dao.Node{ID: "n", Platform: tt.node})
		err := Platforms(tt.want...).Func(&dao.Task{}, n)
		if (err == nil) != tt.ok || (err != nil && err != ErrPlatform) {
			t.Errorf("%s: got %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

func TestMaxReplicasPerNode(t *testing.T) {
	t.Parallel()
	n := NewNodeInfo(nil, readyNode("n", nil))
	n.AddTask(task("1", "web", dao.Resources{}))
	n.AddTask(task("2", "web", dao.Resources{}))
	n.AddTask(task("3", "db", dao.Resources{}))
	tests := []struct {
		limit   int
		service string
		want    error
	}{
		{2, "web", ErrMaxReplicasPerNode},
		{3, "web", nil},
		{1, "db", ErrMaxReplicasPerNode},
		{1, "cache", nil},
		{0, "web", nil},
		{-1, "web", nil},
		{1, "", nil}, // a task of no service
	}
	for _, tt := range tests {
		if got := MaxReplicasPerNode(tt.limit).Func(task("new", tt.service, dao.Resources{}), n); got != tt.want {
			t.Errorf("limit %d, service %q: got %v, want %v", tt.limit, tt.service, got, tt.want)
		}
	}
}

func TestAvoidRecentFailures(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	c := NewClusterInfo()
	n := NewNodeInfo(c, readyNode("n", nil))
	n.RecordFailure("web", now.Add(-10*time.Minute))
	n.RecordFailure("web", now.Add(-2*time.Minute))
	n.RecordFailure("web", now.Add(-time.Minute))
	tests := []struct {
		now     time.Time
		limit   int
		window  time.Duration
		service string
		want    error
	}{
		{now, 2, 5 * time.Minute, "web", ErrRecentFailures},
		{now, 3, 5 * time.Minute, "web", nil},
		{now, 3, time.Hour, "web", ErrRecentFailures},
		{now, 1, 30 * time.Second, "web", nil},
		{now, 1, time.Hour, "db", nil},
		{now, 0, time.Hour, "web", nil},
		{time.Time{}, 3, time.Second, "web", ErrRecentFailures}, // no Now: every failure counts
	}
	for _, tt := range tests {
		c.SetNow(tt.now)
		if got := AvoidRecentFailures(tt.limit, tt.window).Func(task("t", tt.service, dao.Resources{}), n); got != tt.want {
			t.Errorf("now %v, limit %d within %v for %q: got %v, want %v", tt.now.IsZero(), tt.limit, tt.window, tt.service, got, tt.want)
		}
	}
}

func TestRefusalsAreSentinels(t *testing.T) {
	t.Parallel()
	for _, err := range []error{ErrNodeNotReady, ErrInsufficientMemory, ErrHostPortInUse, ErrPlatform, ErrMaxReplicasPerNode} {
		if !errors.Is(err, err) || err.Error()[:8] != "policy: " {
			t.Errorf("%v: not a policy sentinel", err)
		}
	}
}
