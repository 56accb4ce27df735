package dao_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/google/go-cmp/cmp"

	"github.com/opendao/dao"
)

// problem is one FieldError a test expects: the exact field path and a part of the reason.
type problem struct {
	field  string
	reason string
}

// checkProblems fails t unless err is what a Validate method of a value of kind what returns
// for exactly the problems in want (in any order). An empty want means err must be nil.
func checkProblems(t *testing.T, err error, what string, want []problem) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("Validate() = %v, want nil", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("Validate() = nil, want problems with %v", fieldsOf(want))
	}
	if !errors.Is(err, dao.ErrInvalid) {
		t.Errorf("errors.Is(%v, dao.ErrInvalid) = false, want true", err)
	}
	var verr *dao.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Validate() returned %T (%v), want a *dao.ValidationError", err, err)
	}
	if got := verr.What; got != what {
		t.Errorf("What = %q, want %q", got, what)
	}
	got := make([]string, 0, len(verr.Errors))
	for _, fe := range verr.Errors {
		got = append(got, fe.Field)
	}
	slices.Sort(got)
	if diff := cmp.Diff(fieldsOf(want), got); diff != "" {
		t.Errorf("fields of %q (-want +got):\n%s", err, diff)
	}
	msg := err.Error()
	for _, w := range want {
		i := slices.IndexFunc(verr.Errors, func(fe dao.FieldError) bool {
			return fe.Field == w.field && strings.Contains(fe.Reason, w.reason)
		})
		if i < 0 {
			t.Errorf("got %q, want a problem %s: ...%s...", msg, w.field, w.reason)
			continue
		}
		if fe := verr.Errors[i]; !strings.Contains(msg, fe.Error()) {
			t.Errorf("Error() = %q, want it to contain %q", msg, fe.Error())
		}
	}
}

// fieldsOf returns the sorted field paths of ps.
func fieldsOf(ps []problem) []string {
	fields := make([]string, 0, len(ps))
	for _, p := range ps {
		fields = append(fields, p.field)
	}
	slices.Sort(fields)
	return fields
}

// validateCase changes a valid T with mod; the result is valid when want is empty and
// otherwise has exactly the problems in want, with paths relative to T.
type validateCase[T any] struct {
	name string
	mod  func(*T)
	want []problem
}

// validator validates a T on its own (prefix "") or inside an enclosing value, whose field
// paths start with prefix.
type validator[T any] struct {
	name     string
	prefix   string
	what     string
	validate func(T) error
}

func runValidateCases[T any](t *testing.T, valid func() T, validators []validator[T], cases []validateCase[T]) {
	t.Helper()
	for _, v := range validators {
		for _, tc := range cases {
			t.Run(v.name+"/"+tc.name, func(t *testing.T) {
				x := valid()
				if tc.mod != nil {
					tc.mod(&x)
				}
				want := make([]problem, len(tc.want))
				for i, p := range tc.want {
					want[i] = problem{field: v.prefix + p.field, reason: p.reason}
				}
				checkProblems(t, v.validate(x), v.what, want)
			})
		}
	}
}

func dur(s string) dao.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return dao.Duration(d)
}

func minimalContainer() dao.ContainerSpec {
	return dao.ContainerSpec{Image: "busybox"}
}

// fullContainer returns a valid spec with every field set.
func fullContainer() dao.ContainerSpec {
	return dao.ContainerSpec{
		Image:      "registry.example.com/team/web:1.2",
		Command:    []string{"/bin/web"},
		Args:       []string{"--port", "8080"},
		Env:        []string{"MODE=production", "EMPTY=", "DSN=a=b"},
		WorkingDir: "/srv/web",
		User:       "1000:1000",
		Hostname:   "web-1",
		Resources:  dao.Resources{MilliCPU: 500, Memory: 64 * dao.MiB, Pids: 100},
		Mounts: []dao.Mount{
			{Type: dao.MountBind, Source: "/var/lib/web", Target: "/data", ReadOnly: true},
			{Type: dao.MountTmpfs, Target: "/tmp", SizeBytes: 16 * dao.MiB},
		},
		Ports: []dao.PortMapping{
			{Name: "http", ContainerPort: 8080, HostPort: 8080},
			{Name: "dns", ContainerPort: 53, HostPort: 53, Protocol: "udp"},
			{Name: "dns-tcp", ContainerPort: 53, HostPort: 53, Protocol: "tcp"},
			{Name: "metrics", ContainerPort: 9090},
		},
		HealthCheck: &dao.HealthCheck{
			Command:     []string{"/bin/web", "-check"},
			Interval:    dur("10s"),
			Timeout:     dur("2s"),
			StartPeriod: dur("5s"),
			Retries:     5,
		},
		ReadOnlyRootfs:  true,
		Privileged:      true,
		CapAdd:          []string{"NET_ADMIN", "cap_sys_time"},
		CapDrop:         []string{"ALL"},
		HostNetwork:     true,
		HostPID:         true,
		HostIPC:         true,
		StopSignal:      "SIGQUIT",
		StopGracePeriod: dur("30s"),
		Labels:          map[string]string{"team": "web", "io.opendao": "not the reserved prefix"},
	}
}

func minimalService() dao.ServiceSpec {
	return dao.ServiceSpec{Name: "web", Container: minimalContainer()}
}

func fullRestart() dao.RestartPolicy {
	return dao.RestartPolicy{
		Condition:    dao.RestartOnFailure,
		InitialDelay: dur("1s"),
		MaxDelay:     dur("1m"),
		Multiplier:   1.5,
		Jitter:       0.2,
		ResetAfter:   dur("30s"),
		MaxAttempts:  5,
		Window:       dur("10m"),
	}
}

func fullUpdate() dao.UpdatePolicy {
	return dao.UpdatePolicy{
		Parallelism:     2,
		Delay:           dur("10s"),
		Order:           dao.StartFirst,
		Monitor:         dur("30s"),
		FailureAction:   dao.ActionRollback,
		MaxFailureRatio: 0.25,
	}
}

// fullService returns a valid spec with every field set.
func fullService() dao.ServiceSpec {
	return dao.ServiceSpec{
		Name:      "web-frontend",
		Labels:    map[string]string{"tier": "frontend"},
		Container: fullContainer(),
		Mode:      dao.ModeReplicated,
		Replicas:  3,
		Restart:   fullRestart(),
		Update:    fullUpdate(),
		Rollback: dao.UpdatePolicy{
			Parallelism:   0,
			Order:         dao.StopFirst,
			FailureAction: dao.ActionPause,
		},
		Placement: dao.Placement{
			Constraints:        []string{"node.labels.zone in (a, b)", "node.labels.disk != hdd"},
			Spread:             []string{"node.labels.zone"},
			MaxReplicasPerNode: 2,
			Platforms: []dao.Platform{
				{OS: "linux", Architecture: "amd64"},
				{OS: "linux", Architecture: "arm64", Variant: "v8"},
			},
		},
	}
}

func minimalNode() dao.Node { return dao.Node{ID: "node-1"} }

// fullNode returns a valid node with every field set.
func fullNode() dao.Node {
	return dao.Node{
		ID:           "node-1",
		Address:      "10.0.0.7:4242",
		Hostname:     "worker-7",
		Labels:       map[string]string{"zone": "a", "disk": "ssd"},
		Platform:     dao.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"},
		Capacity:     dao.Resources{MilliCPU: 8000, Memory: 32 * dao.GiB, Pids: 65536},
		Allocatable:  dao.Resources{MilliCPU: 7500, Memory: 30 * dao.GiB, Pids: 60000},
		Availability: dao.Drain,
		Status: dao.NodeStatus{
			State:    dao.NodeReady,
			Message:  "heartbeat on time",
			LastSeen: time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC),
		},
	}
}

func minimalTask() dao.Task {
	return dao.Task{ID: "task-1", Spec: minimalContainer(), DesiredState: dao.TaskRunning}
}

// fullTask returns a valid task with every field set.
func fullTask() dao.Task {
	return dao.Task{
		ID:             "task-1",
		ServiceID:      "svc-1",
		ServiceVersion: 7,
		Slot:           2,
		NodeID:         "node-1",
		Spec:           fullContainer(),
		Restart:        fullRestart(),
		DesiredState:   dao.TaskRunning,
		Status: dao.TaskStatus{
			State:       dao.TaskFailed,
			Message:     "container exited",
			Err:         "exit code 137",
			ContainerID: "c0ffee",
			PID:         4242,
			Health:      dao.HealthUnhealthy,
			ExitCode:    137,
			OOMKilled:   true,
			Restarts:    3,
			Addresses:   []string{"10.88.0.5", "fd00::5"},
			StartedAt:   time.Date(2025, 3, 14, 15, 0, 0, 0, time.UTC),
			FinishedAt:  time.Date(2025, 3, 14, 15, 5, 0, 0, time.UTC),
			Timestamp:   time.Date(2025, 3, 14, 15, 5, 1, 500, time.UTC),
		},
		CreatedAt: time.Date(2025, 3, 14, 14, 59, 59, 0, time.UTC),
	}
}

func TestValidateValid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		validate func() error
	}{
		{"ContainerSpec/minimal", func() error { c := minimalContainer(); return c.Validate() }},
		{"ContainerSpec/full", func() error { c := fullContainer(); return c.Validate() }},
		{"ServiceSpec/minimal", func() error { s := minimalService(); return s.Validate() }},
		{"ServiceSpec/full", func() error { s := fullService(); return s.Validate() }},
		{"RestartPolicy/zero", func() error { var r dao.RestartPolicy; return r.Validate() }},
		{"RestartPolicy/full", func() error { r := fullRestart(); return r.Validate() }},
		{"RestartPolicy/defaults", func() error { r := dao.RestartPolicy{}.WithDefaults(); return r.Validate() }},
		{"UpdatePolicy/zero", func() error { var u dao.UpdatePolicy; return u.Validate() }},
		{"UpdatePolicy/full", func() error { u := fullUpdate(); return u.Validate() }},
		{"Node/minimal", func() error { n := minimalNode(); return n.Validate() }},
		{"Node/full", func() error { n := fullNode(); return n.Validate() }},
		{"Task/minimal", func() error { tk := minimalTask(); return tk.Validate() }},
		{"Task/full", func() error { tk := fullTask(); return tk.Validate() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.validate(); err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
		})
	}
}

// containerValidators validate a ContainerSpec on its own and inside a service and a task.
var containerValidators = []validator[dao.ContainerSpec]{
	{"ContainerSpec", "", "container spec", func(c dao.ContainerSpec) error { return c.Validate() }},
	{"ServiceSpec", "container.", "service spec", func(c dao.ContainerSpec) error {
		s := minimalService()
		s.Container = c
		return s.Validate()
	}},
	{"Task", "spec.", "task", func(c dao.ContainerSpec) error {
		tk := minimalTask()
		tk.Spec = c
		return tk.Validate()
	}},
}

func TestContainerSpecValidate(t *testing.T) {
	t.Parallel()
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	cases := []validateCase[dao.ContainerSpec]{
		// image
		{name: "image short name", mod: func(c *dao.ContainerSpec) { c.Image = "busybox" }},
		{name: "image with registry and tag", mod: func(c *dao.ContainerSpec) { c.Image = "localhost:5000/team/web:1.2" }},
		{name: "image by digest", mod: func(c *dao.ContainerSpec) { c.Image = "busybox@" + digest }},
		{
			name: "image empty",
			mod:  func(c *dao.ContainerSpec) { c.Image = "" },
			want: []problem{{"image", "must not be empty"}},
		},
		{
			name: "image uppercase",
			mod:  func(c *dao.ContainerSpec) { c.Image = "Busybox:Latest" },
			want: []problem{{"image", `"Busybox:Latest" is not an image reference`}},
		},
		{
			name: "image bad tag",
			mod:  func(c *dao.ContainerSpec) { c.Image = "busybox:" },
			want: []problem{{"image", `"busybox:" is not an image reference`}},
		},
		// env
		{name: "env empty value and = in value", mod: func(c *dao.ContainerSpec) { c.Env = []string{"A=", "B=x=y"} }},
		{
			name: "env without =",
			mod:  func(c *dao.ContainerSpec) { c.Env = []string{"A=1", "B"} },
			want: []problem{{"env[1]", `"B" must have the form KEY=VALUE`}},
		},
		{
			name: "env empty name",
			mod:  func(c *dao.ContainerSpec) { c.Env = []string{"=x"} },
			want: []problem{{"env[0]", `"=x" has an empty name`}},
		},
		{
			name: "env NUL byte",
			mod:  func(c *dao.ContainerSpec) { c.Env = []string{"A=1", "B=2", "C=x\x00y"} },
			want: []problem{{"env[2]", "must not contain a NUL byte"}},
		},
		// workingDir
		{name: "workingDir absolute", mod: func(c *dao.ContainerSpec) { c.WorkingDir = "/app" }},
		{
			name: "workingDir relative",
			mod:  func(c *dao.ContainerSpec) { c.WorkingDir = "app" },
			want: []problem{{"workingDir", `"app" must be an absolute path`}},
		},
		// user
		{name: "user uid", mod: func(c *dao.ContainerSpec) { c.User = "1000" }},
		{name: "user uid:gid", mod: func(c *dao.ContainerSpec) { c.User = "1000:100" }},
		{name: "user name", mod: func(c *dao.ContainerSpec) { c.User = "nobody" }},
		{name: "user name:group", mod: func(c *dao.ContainerSpec) { c.User = "nobody:nogroup" }},
		{
			name: "user two colons",
			mod:  func(c *dao.ContainerSpec) { c.User = "1:2:3" },
			want: []problem{{"user", `"1:2:3" must be uid, uid:gid, name or name:group`}},
		},
		{
			name: "user space",
			mod:  func(c *dao.ContainerSpec) { c.User = "no body" },
			want: []problem{{"user", "must be uid, uid:gid, name or name:group"}},
		},
		{
			name: "user tab",
			mod:  func(c *dao.ContainerSpec) { c.User = "nobody\t" },
			want: []problem{{"user", "must be uid, uid:gid, name or name:group"}},
		},
		{
			name: "user NUL",
			mod:  func(c *dao.ContainerSpec) { c.User = "nobody\x00" },
			want: []problem{{"user", "must be uid, uid:gid, name or name:group"}},
		},
		// hostname
		{name: "hostname 63 bytes", mod: func(c *dao.ContainerSpec) { c.Hostname = strings.Repeat("h", 63) }},
		{
			name: "hostname 64 bytes",
			mod:  func(c *dao.ContainerSpec) { c.Hostname = strings.Repeat("h", 64) },
			want: []problem{{"hostname", "must be a host name of at most 63 bytes"}},
		},
		{
			name: "hostname slash",
			mod:  func(c *dao.ContainerSpec) { c.Hostname = "a/b" },
			want: []problem{{"hostname", `"a/b" must be a host name`}},
		},
		{
			name: "hostname space",
			mod:  func(c *dao.ContainerSpec) { c.Hostname = "a b" },
			want: []problem{{"hostname", `"a b" must be a host name`}},
		},
		// resources
		{name: "resources at minimums", mod: func(c *dao.ContainerSpec) {
			c.Resources = dao.Resources{MilliCPU: 10, Memory: dao.MinMemory, Pids: 1}
		}},
		{
			name: "resources negative",
			mod:  func(c *dao.ContainerSpec) { c.Resources = dao.Resources{MilliCPU: -1, Memory: -1, Pids: -1} },
			want: []problem{
				{"resources.milliCPU", "must be >= 0, got -1"},
				{"resources.memory", "must be >= 0, got -1"},
				{"resources.pids", "must be >= 0, got -1"},
			},
		},
		{
			name: "resources milliCPU below 10",
			mod:  func(c *dao.ContainerSpec) { c.Resources.MilliCPU = 9 },
			want: []problem{{"resources.milliCPU", "must be 0 (no limit) or >= 10, got 9"}},
		},
		{
			name: "resources memory below MinMemory",
			mod:  func(c *dao.ContainerSpec) { c.Resources.Memory = 1 * dao.MiB },
			want: []problem{{"resources.memory", "must be >= 4MiB, got 1MiB"}},
		},
		// mounts
		{name: "mounts nested targets", mod: func(c *dao.ContainerSpec) {
			c.Mounts = []dao.Mount{
				{Type: dao.MountBind, Source: "/srv", Target: "/data"},
				{Type: dao.MountTmpfs, Target: "/data/cache"},
			}
		}},
		{
			name: "mounts bind relative source",
			mod: func(c *dao.ContainerSpec) {
				c.Mounts = []dao.Mount{{Type: dao.MountBind, Source: "srv", Target: "/data"}}
			},
			want: []problem{{"mounts[0].source", `"srv" must be an absolute host path`}},
		},
		{
			name: "mounts bind without source",
			mod: func(c *dao.ContainerSpec) {
				c.Mounts = []dao.Mount{{Type: dao.MountTmpfs, Target: "/tmp"}, {Type: dao.MountBind, Target: "/data"}}
			},
			want: []problem{{"mounts[1].source", `"" must be an absolute host path`}},
		},
		{
			name: "mounts tmpfs with source",
			mod: func(c *dao.ContainerSpec) {
				c.Mounts = []dao.Mount{{Type: dao.MountTmpfs, Source: "/srv", Target: "/tmp"}}
			},
			want: []problem{{"mounts[0].source", "must be empty for a tmpfs mount"}},
		},
		{
			name: "mounts unknown type",
			mod: func(c *dao.ContainerSpec) {
				c.Mounts = []dao.Mount{{Type: "volume", Source: "data", Target: "/data"}}
			},
			want: []problem{{"mounts[0].type", `"volume" must be "bind" or "tmpfs"`}},
		},
		{
			name: "mounts empty type",
			mod:  func(c *dao.ContainerSpec) { c.Mounts = []dao.Mount{{Target: "/data"}} },
			want: []problem{{"mounts[0].type", `"" must be "bind" or "tmpfs"`}},
		},
		{
			name: "mounts relative target",
			mod:  func(c *dao.ContainerSpec) { c.Mounts = []dao.Mount{{Type: dao.MountTmpfs, Target: "tmp"}} },
			want: []problem{{"mounts[0].target", `"tmp" must be an absolute path`}},
		},
		{
			name: "mounts empty target",
			mod: func(c *dao.ContainerSpec) {
				c.Mounts = []dao.Mount{{Type: dao.MountTmpfs}, {Type: dao.MountTmpfs}}
			},
			want: []problem{
				{"mounts[0].target", `"" must be an absolute path`},
				{"mounts[1].target", `"" must be an absolute path`},
			},
		},
		{
			name: "mounts target root",
			mod:  func(c *dao.ContainerSpec) { c.Mounts = []dao.Mount{{Type: dao.MountTmpfs, Target: "/"}} },
			want: []problem{{"mounts[0].target", "must not be /"}},
		},
		{
			name: "mounts target root after cleaning",
			mod:  func(c *dao.ContainerSpec) { c.Mounts = []dao.Mount{{Type: dao.MountTmpfs, Target: "/tmp/.."}} },
			want: []problem{{"mounts[0].target", "must not be /"}},
		},
		{
			name: "mounts negative size",
			mod: func(c *dao.ContainerSpec) {
				c.Mounts = []dao.Mount{{Type: dao.MountTmpfs, Target: "/tmp", SizeBytes: -1}}
			},
			want: []problem{{"mounts[0].sizeBytes", "must be >= 0 and only set for tmpfs"}},
		},
		{
			name: "mounts size on bind",
			mod: func(c *dao.ContainerSpec) {
				c.Mounts = []dao.Mount{{Type: dao.MountBind, Source: "/srv", Target: "/data", SizeBytes: dao.MiB}}
			},
			want: []problem{{"mounts[0].sizeBytes", "must be >= 0 and only set for tmpfs"}},
		},
		{
			name: "mounts duplicate target",
			mod: func(c *dao.ContainerSpec) {
				c.Mounts = []dao.Mount{
					{Type: dao.MountBind, Source: "/srv", Target: "/data"},
					{Type: dao.MountTmpfs, Target: "/tmp"},
					{Type: dao.MountTmpfs, Target: "/data/"},
				}
			},
			want: []problem{{"mounts[2].target", `"/data/" is also the target of mounts[0]`}},
		},
		// ports
		{name: "ports same host port on tcp and udp", mod: func(c *dao.ContainerSpec) {
			c.Ports = []dao.PortMapping{
				{ContainerPort: 53, HostPort: 53},
				{ContainerPort: 53, HostPort: 53, Protocol: "udp"},
				{ContainerPort: 53, HostPort: 53, Protocol: "sctp"},
			}
		}},
		{name: "ports without host port", mod: func(c *dao.ContainerSpec) {
			c.Ports = []dao.PortMapping{{ContainerPort: 80}, {ContainerPort: 81}, {ContainerPort: 65535, HostPort: 65535}}
		}},
		{
			name: "ports container port out of range",
			mod: func(c *dao.ContainerSpec) {
				c.Ports = []dao.PortMapping{{ContainerPort: 0}, {ContainerPort: 65536}}
			},
			want: []problem{
				{"ports[0].containerPort", "must be 1-65535, got 0"},
				{"ports[1].containerPort", "must be 1-65535, got 65536"},
			},
		},
		{
			name: "ports host port out of range",
			mod: func(c *dao.ContainerSpec) {
				c.Ports = []dao.PortMapping{{ContainerPort: 80, HostPort: -1}, {ContainerPort: 80, HostPort: 65536}}
			},
			want: []problem{
				{"ports[0].hostPort", "must be 0-65535, got -1"},
				{"ports[1].hostPort", "must be 0-65535, got 65536"},
			},
		},
		{
			name: "ports unknown protocol",
			mod: func(c *dao.ContainerSpec) {
				c.Ports = []dao.PortMapping{{ContainerPort: 80, Protocol: "TCP"}, {ContainerPort: 80, Protocol: "http"}}
			},
			want: []problem{
				{"ports[0].protocol", `"TCP" must be tcp, udp or sctp`},
				{"ports[1].protocol", `"http" must be tcp, udp or sctp`},
			},
		},
		{
			name: "ports duplicate host port",
			mod: func(c *dao.ContainerSpec) {
				c.HostNetwork = false
				c.Ports = []dao.PortMapping{
					{ContainerPort: 80, HostPort: 8080},
					{ContainerPort: 53, HostPort: 8080, Protocol: "udp"},
					{ContainerPort: 81, HostPort: 8080, Protocol: "tcp"},
				}
			},
			want: []problem{{"ports[2].hostPort", "8080/tcp is also published by ports[0]"}},
		},
		// healthCheck
		{name: "healthCheck command only", mod: func(c *dao.ContainerSpec) {
			c.HealthCheck = &dao.HealthCheck{Command: []string{"true"}}
		}},
		{name: "healthCheck interval 10ms", mod: func(c *dao.ContainerSpec) {
			c.HealthCheck = &dao.HealthCheck{Command: []string{"true"}, Interval: dur("10ms")}
		}},
		{
			name: "healthCheck no command",
			mod:  func(c *dao.ContainerSpec) { c.HealthCheck = &dao.HealthCheck{} },
			want: []problem{{"healthCheck.command", "must not be empty"}},
		},
		{
			name: "healthCheck empty program",
			mod:  func(c *dao.ContainerSpec) { c.HealthCheck = &dao.HealthCheck{Command: []string{"", "-x"}} },
			want: []problem{{"healthCheck.command", "must not be empty"}},
		},
		{
			name: "healthCheck negative durations and retries",
			mod: func(c *dao.ContainerSpec) {
				c.HealthCheck = &dao.HealthCheck{
					Command:     []string{"true"},
					Interval:    dur("-1s"),
					Timeout:     dur("-2s"),
					StartPeriod: dur("-3s"),
					Retries:     -1,
				}
			},
			want: []problem{
				{"healthCheck.interval", "must be >= 0, got -1s"},
				{"healthCheck.timeout", "must be >= 0, got -2s"},
				{"healthCheck.startPeriod", "must be >= 0, got -3s"},
				{"healthCheck.retries", "must be >= 0, got -1"},
			},
		},
		{
			name: "healthCheck interval below 10ms",
			mod: func(c *dao.ContainerSpec) {
				c.HealthCheck = &dao.HealthCheck{Command: []string{"true"}, Interval: dur("9ms")}
			},
			want: []problem{{"healthCheck.interval", "must be 0 (default 30s) or >= 10ms, got 9ms"}},
		},
		// capabilities
		{name: "caps with and without CAP_, any case", mod: func(c *dao.ContainerSpec) {
			c.CapAdd = []string{"NET_ADMIN", "CAP_SYS_TIME", "cap_net_raw"}
			c.CapDrop = []string{"all", "CAP_CHOWN"}
		}},
		{
			name: "capAdd not a name",
			mod:  func(c *dao.ContainerSpec) { c.CapAdd = []string{"NET_ADMIN", "NET-ADMIN", "", "CAP_", "SYS_1"} },
			want: []problem{
				{"capAdd[1]", `"NET-ADMIN" is not a capability name such as NET_ADMIN`},
				{"capAdd[2]", `"" is not a capability name`},
				{"capAdd[3]", `"CAP_" is not a capability name`},
				{"capAdd[4]", `"SYS_1" is not a capability name`},
			},
		},
		{
			name: "capDrop not a name",
			mod:  func(c *dao.ContainerSpec) { c.CapDrop = []string{"ALL", "net admin"} },
			want: []problem{{"capDrop[1]", `"net admin" is not a capability name`}},
		},
		// stopSignal
		{name: "stopSignal SIGTERM", mod: func(c *dao.ContainerSpec) { c.StopSignal = "SIGTERM" }},
		{name: "stopSignal without SIG", mod: func(c *dao.ContainerSpec) { c.StopSignal = "quit" }},
		{name: "stopSignal realtime", mod: func(c *dao.ContainerSpec) { c.StopSignal = "SIGRTMIN+3" }},
		{name: "stopSignal 1", mod: func(c *dao.ContainerSpec) { c.StopSignal = "1" }},
		{name: "stopSignal 64", mod: func(c *dao.ContainerSpec) { c.StopSignal = "64" }},
		{
			name: "stopSignal 0",
			mod:  func(c *dao.ContainerSpec) { c.StopSignal = "0" },
			want: []problem{{"stopSignal", `"0" is not a signal name such as SIGTERM or a number 1-64`}},
		},
		{
			name: "stopSignal 65",
			mod:  func(c *dao.ContainerSpec) { c.StopSignal = "65" },
			want: []problem{{"stopSignal", `"65" is not a signal name`}},
		},
		{
			name: "stopSignal negative",
			mod:  func(c *dao.ContainerSpec) { c.StopSignal = "-9" },
			want: []problem{{"stopSignal", `"-9" is not a signal name`}},
		},
		{
			name: "stopSignal SIG alone",
			mod:  func(c *dao.ContainerSpec) { c.StopSignal = "SIG" },
			want: []problem{{"stopSignal", `"SIG" is not a signal name`}},
		},
		{
			name: "stopSignal with space",
			mod:  func(c *dao.ContainerSpec) { c.StopSignal = "SIG TERM" },
			want: []problem{{"stopSignal", `"SIG TERM" is not a signal name`}},
		},
		// stopGracePeriod
		{name: "stopGracePeriod zero", mod: func(c *dao.ContainerSpec) { c.StopGracePeriod = 0 }},
		{
			name: "stopGracePeriod negative",
			mod:  func(c *dao.ContainerSpec) { c.StopGracePeriod = dur("-1s") },
			want: []problem{{"stopGracePeriod", "must be >= 0, got -1s"}},
		},
		// labels
		{name: "labels almost the prefix", mod: func(c *dao.ContainerSpec) {
			c.Labels = map[string]string{"io.opendao": "x", "io.opendaox.a": "y", "a": strings.Repeat("v", 4095)}
		}},
		{
			name: "labels empty key",
			mod:  func(c *dao.ContainerSpec) { c.Labels = map[string]string{"": "x", "ok": "y"} },
			want: []problem{{`labels[""]`, "label key must not be empty"}},
		},
		{
			name: "labels reserved prefix",
			mod:  func(c *dao.ContainerSpec) { c.Labels = map[string]string{"io.opendao.service": "web"} },
			want: []problem{{`labels["io.opendao.service"]`, `label keys starting with "io.opendao." are reserved for Dao`}},
		},
		{
			name: "labels too long",
			mod:  func(c *dao.ContainerSpec) { c.Labels = map[string]string{"ab": strings.Repeat("v", 4095)} },
			want: []problem{{`labels["ab"]`, "label must be at most 4096 bytes"}},
		},
		// everything at once
		{
			name: "many problems at once",
			mod: func(c *dao.ContainerSpec) {
				*c = fullContainer()
				c.Image = ""
				c.Env = append(c.Env, "NOVALUE")
				c.WorkingDir = "srv"
				c.Resources.Memory = 1024
				c.Mounts[1].Target = "/data"
				c.Ports[2].Protocol = "udp"
				c.HealthCheck.Retries = -3
				c.CapAdd = []string{"NET ADMIN"}
				c.StopSignal = "0"
				c.StopGracePeriod = -1
				c.Labels["io.opendao.x"] = "y"
			},
			want: []problem{
				{"image", "must not be empty"},
				{"env[3]", `"NOVALUE" must have the form KEY=VALUE`},
				{"workingDir", `"srv" must be an absolute path`},
				{"resources.memory", "must be >= 4MiB, got 1KiB"},
				{"mounts[1].target", `"/data" is also the target of mounts[0]`},
				{"ports[2].hostPort", "53/udp is also published by ports[1]"},
				{"healthCheck.retries", "must be >= 0, got -3"},
				{"capAdd[0]", `"NET ADMIN" is not a capability name`},
				{"stopSignal", `"0" is not a signal name`},
				{"stopGracePeriod", "must be >= 0, got -1ns"},
				{`labels["io.opendao.x"]`, "reserved for Dao"},
			},
		},
	}
	runValidateCases(t, fullContainer, containerValidators, cases)
}

// TestContainerSpecValidateStopSignalNumbers pins the documented rule "a signal name such as
// SIGTERM or a number 1-64" for text that is neither. BUG (container.go:296-303, validSignal):
// text that starts with a digit and is not exactly the decimal form of 1-64 falls through to
// the name check, which accepts any [A-Z0-9+-]*, so these pass today.
func TestContainerSpecValidateStopSignalNumbers(t *testing.T) {
	t.Parallel()
	for _, sig := range []string{"0100", "065", "9x", "1-2", "15SIG"} {
		t.Run(sig, func(t *testing.T) {
			c := dao.ContainerSpec{Image: "busybox", StopSignal: sig}
			checkProblems(t, c.Validate(), "container spec", []problem{
				{"stopSignal", fmt.Sprintf("%q is not a signal name such as SIGTERM or a number 1-64", sig)},
			})
		})
	}
}

func TestServiceSpecValidate(t *testing.T) {
	t.Parallel()
	cases := []validateCase[dao.ServiceSpec]{
		// name
		{name: "name one letter", mod: func(s *dao.ServiceSpec) { s.Name = "a" }},
		{name: "name starts with digit", mod: func(s *dao.ServiceSpec) { s.Name = "1web" }},
		{name: "name 63 bytes", mod: func(s *dao.ServiceSpec) { s.Name = strings.Repeat("w", 63) }},
		{
			name: "name empty",
			mod:  func(s *dao.ServiceSpec) { s.Name = "" },
			want: []problem{{"name", "must not be empty"}},
		},
		{
			name: "name 64 bytes",
			mod:  func(s *dao.ServiceSpec) { s.Name = strings.Repeat("w", 64) },
			want: []problem{{"name", "must be a DNS label: lowercase letters, digits and '-', at most 63 bytes"}},
		},
		{
			name: "name uppercase",
			mod:  func(s *dao.ServiceSpec) { s.Name = "Web" },
			want: []problem{{"name", `"Web" must be a DNS label`}},
		},
		{
			name: "name leading dash",
			mod:  func(s *dao.ServiceSpec) { s.Name = "-web" },
			want: []problem{{"name", `"-web" must be a DNS label`}},
		},
		{
			name: "name trailing dash",
			mod:  func(s *dao.ServiceSpec) { s.Name = "web-" },
			want: []problem{{"name", `"web-" must be a DNS label`}},
		},
		{
			name: "name underscore",
			mod:  func(s *dao.ServiceSpec) { s.Name = "web_1" },
			want: []problem{{"name", `"web_1" must be a DNS label`}},
		},
		{
			name: "name dot",
			mod:  func(s *dao.ServiceSpec) { s.Name = "web.example" },
			want: []problem{{"name", `"web.example" must be a DNS label`}},
		},
		// labels
		{
			name: "labels empty key and reserved prefix",
			mod:  func(s *dao.ServiceSpec) { s.Labels = map[string]string{"": "x", "io.opendao.owner": "me", "ok": "y"} },
			want: []problem{
				{`labels[""]`, "label key must not be empty"},
				{`labels["io.opendao.owner"]`, "reserved for Dao"},
			},
		},
		{
			name: "labels too long",
			mod:  func(s *dao.ServiceSpec) { s.Labels = map[string]string{strings.Repeat("k", 4097): ""} },
			want: []problem{{`labels["` + strings.Repeat("k", dao.MaxQuoted) + `"... (4097 bytes)]`, "label must be at most 4096 bytes"}},
		},
		// mode and replicas
		{name: "replicated explicitly", mod: func(s *dao.ServiceSpec) { s.Mode, s.Replicas = dao.ModeReplicated, 5 }},
		{name: "replicated with 0 replicas", mod: func(s *dao.ServiceSpec) { s.Mode, s.Replicas = dao.ModeReplicated, 0 }},
		{name: "global", mod: func(s *dao.ServiceSpec) { s.Mode, s.Replicas = dao.ModeGlobal, 0 }},
		{
			name: "replicas negative in default mode",
			mod:  func(s *dao.ServiceSpec) { s.Replicas = -1 },
			want: []problem{{"replicas", "must be >= 0, got -1"}},
		},
		{
			name: "replicas negative when replicated",
			mod:  func(s *dao.ServiceSpec) { s.Mode, s.Replicas = dao.ModeReplicated, -2 },
			want: []problem{{"replicas", "must be >= 0, got -2"}},
		},
		{
			name: "replicas set when global",
			mod:  func(s *dao.ServiceSpec) { s.Mode, s.Replicas = dao.ModeGlobal, 3 },
			want: []problem{{"replicas", "must be 0 for a global service, got 3"}},
		},
		{
			name: "disconnect replace when global",
			mod:  func(s *dao.ServiceSpec) { s.Mode, s.Replicas, s.Disconnect.Replace = dao.ModeGlobal, 0, true },
			want: []problem{{"disconnect.replace", "a global service runs one task per node: its tasks cannot be replaced elsewhere"}},
		},
		{
			name: "unknown mode",
			mod:  func(s *dao.ServiceSpec) { s.Mode = "daemon" },
			want: []problem{{"mode", `"daemon" must be "replicated" or "global"`}},
		},
		// placement
		{name: "platform os only", mod: func(s *dao.ServiceSpec) { s.Placement.Platforms = []dao.Platform{{OS: "linux"}} }},
		{name: "platform architecture only", mod: func(s *dao.ServiceSpec) {
			s.Placement.Platforms = []dao.Platform{{Architecture: "arm64"}}
		}},
		{
			name: "placement empty constraint",
			mod:  func(s *dao.ServiceSpec) { s.Placement.Constraints = []string{"node.labels.gpu exists", ""} },
			want: []problem{{"placement.constraints[1]", "must not be empty"}},
		},
		{
			name: "placement empty spread",
			mod:  func(s *dao.ServiceSpec) { s.Placement.Spread = []string{"", "node.labels.zone"} },
			want: []problem{{"placement.spread[0]", "must not be empty"}},
		},
		{
			name: "placement negative maxReplicasPerNode",
			mod:  func(s *dao.ServiceSpec) { s.Placement.MaxReplicasPerNode = -1 },
			want: []problem{{"placement.maxReplicasPerNode", "must be >= 0, got -1"}},
		},
		{
			name: "placement platform without os and architecture",
			mod: func(s *dao.ServiceSpec) {
				s.Placement.Platforms = []dao.Platform{{OS: "linux"}, {Variant: "v7"}}
			},
			want: []problem{{"placement.platforms[1]", "must name an os or an architecture"}},
		},
		// everything at once
		{
			name: "many problems at once",
			mod: func(s *dao.ServiceSpec) {
				*s = fullService()
				s.Name = "Web"
				s.Labels[""] = "x"
				s.Container.Image = ""
				s.Container.Resources.MilliCPU = 1
				s.Replicas = -1
				s.Restart.Condition = "sometimes"
				s.Update.Parallelism = -1
				s.Rollback.MaxFailureRatio = 2
				s.Placement.Spread = []string{""}
			},
			want: []problem{
				{"name", `"Web" must be a DNS label`},
				{`labels[""]`, "label key must not be empty"},
				{"container.image", "must not be empty"},
				{"container.resources.milliCPU", "must be 0 (no limit) or >= 10, got 1"},
				{"replicas", "must be >= 0, got -1"},
				{"restart.condition", `"sometimes" must be always, on-failure or never`},
				{"update.parallelism", "must be >= 0, got -1"},
				{"rollback.maxFailureRatio", "must be between 0 and 1, got 2"},
				{"placement.spread[0]", "must not be empty"},
			},
		},
	}
	runValidateCases(t, fullService, []validator[dao.ServiceSpec]{
		{"ServiceSpec", "", "service spec", func(s dao.ServiceSpec) error { return s.Validate() }},
	}, cases)
}

func TestRestartPolicyValidate(t *testing.T) {
	t.Parallel()
	cases := []validateCase[dao.RestartPolicy]{
		{name: "condition always", mod: func(r *dao.RestartPolicy) { r.Condition = dao.RestartAlways }},
		{name: "condition never", mod: func(r *dao.RestartPolicy) { r.Condition = dao.RestartNever }},
		{name: "initialDelay equals maxDelay", mod: func(r *dao.RestartPolicy) { r.InitialDelay, r.MaxDelay = dur("5s"), dur("5s") }},
		{name: "multiplier 1", mod: func(r *dao.RestartPolicy) { r.Multiplier = 1 }},
		{name: "jitter 1", mod: func(r *dao.RestartPolicy) { r.Jitter = 1 }},
		{
			name: "unknown condition",
			mod:  func(r *dao.RestartPolicy) { r.Condition = "unless-stopped" },
			want: []problem{{"condition", `"unless-stopped" must be always, on-failure or never`}},
		},
		{
			name: "negative durations",
			mod: func(r *dao.RestartPolicy) {
				r.InitialDelay, r.MaxDelay, r.ResetAfter, r.Window = dur("-1s"), dur("-2s"), dur("-3s"), dur("-4s")
			},
			want: []problem{
				{"initialDelay", "must be >= 0, got -1s"},
				{"maxDelay", "must be >= 0, got -2s"},
				{"resetAfter", "must be >= 0, got -3s"},
				{"window", "must be >= 0, got -4s"},
			},
		},
		{
			name: "initialDelay above maxDelay",
			mod:  func(r *dao.RestartPolicy) { r.InitialDelay, r.MaxDelay = dur("2m"), dur("1m") },
			want: []problem{{"initialDelay", "2m0s must not exceed maxDelay 1m0s"}},
		},
		{
			name: "multiplier below 1",
			mod:  func(r *dao.RestartPolicy) { r.Multiplier = 0.5 },
			want: []problem{{"multiplier", "must be 0 (default 2) or >= 1 and <= 100, got 0.5"}},
		},
		{
			name: "multiplier negative",
			mod:  func(r *dao.RestartPolicy) { r.Multiplier = -2 },
			want: []problem{{"multiplier", "must be 0 (default 2) or >= 1 and <= 100, got -2"}},
		},
		{
			name: "jitter negative",
			mod:  func(r *dao.RestartPolicy) { r.Jitter = -0.1 },
			want: []problem{{"jitter", "must be between 0 and 1, got -0.1"}},
		},
		{
			name: "jitter above 1",
			mod:  func(r *dao.RestartPolicy) { r.Jitter = 1.5 },
			want: []problem{{"jitter", "must be between 0 and 1, got 1.5"}},
		},
		{
			name: "maxAttempts negative",
			mod:  func(r *dao.RestartPolicy) { r.MaxAttempts = -1 },
			want: []problem{{"maxAttempts", "must be >= 0, got -1"}},
		},
		{
			name: "many problems at once",
			mod: func(r *dao.RestartPolicy) {
				*r = dao.RestartPolicy{Condition: "x", MaxDelay: dur("-1s"), Multiplier: 0.1, Jitter: 2, MaxAttempts: -1}
			},
			want: []problem{
				{"condition", `"x" must be always`},
				{"maxDelay", "must be >= 0, got -1s"},
				{"multiplier", "got 0.1"},
				{"jitter", "got 2"},
				{"maxAttempts", "got -1"},
			},
		},
	}
	runValidateCases(t, fullRestart, []validator[dao.RestartPolicy]{
		{"RestartPolicy", "", "restart policy", func(r dao.RestartPolicy) error { return r.Validate() }},
		{"ServiceSpec", "restart.", "service spec", func(r dao.RestartPolicy) error {
			s := minimalService()
			s.Restart = r
			return s.Validate()
		}},
		{"Task", "restart.", "task", func(r dao.RestartPolicy) error {
			tk := minimalTask()
			tk.Restart = r
			return tk.Validate()
		}},
	}, cases)
}

func TestUpdatePolicyValidate(t *testing.T) {
	t.Parallel()
	cases := []validateCase[dao.UpdatePolicy]{
		{name: "stop-first pause", mod: func(u *dao.UpdatePolicy) { u.Order, u.FailureAction = dao.StopFirst, dao.ActionPause }},
		{name: "continue", mod: func(u *dao.UpdatePolicy) { u.FailureAction = dao.ActionContinue }},
		{name: "ratio 1", mod: func(u *dao.UpdatePolicy) { u.MaxFailureRatio = 1 }},
		{name: "large parallelism", mod: func(u *dao.UpdatePolicy) { u.Parallelism = 1 << 30 }},
		{
			name: "parallelism negative",
			mod:  func(u *dao.UpdatePolicy) { u.Parallelism = -1 },
			want: []problem{{"parallelism", "must be >= 0, got -1"}},
		},
		{
			name: "negative durations",
			mod:  func(u *dao.UpdatePolicy) { u.Delay, u.Monitor = dur("-1s"), dur("-5s") },
			want: []problem{
				{"delay", "must be >= 0, got -1s"},
				{"monitor", "must be >= 0, got -5s"},
			},
		},
		{
			name: "unknown order",
			mod:  func(u *dao.UpdatePolicy) { u.Order = "random" },
			want: []problem{{"order", `"random" must be stop-first or start-first`}},
		},
		{
			name: "unknown failure action",
			mod:  func(u *dao.UpdatePolicy) { u.FailureAction = "abort" },
			want: []problem{{"failureAction", `"abort" must be pause, rollback or continue`}},
		},
		{
			name: "ratio negative",
			mod:  func(u *dao.UpdatePolicy) { u.MaxFailureRatio = -0.5 },
			want: []problem{{"maxFailureRatio", "must be between 0 and 1, got -0.5"}},
		},
		{
			name: "ratio above 1",
			mod:  func(u *dao.UpdatePolicy) { u.MaxFailureRatio = 1.01 },
			want: []problem{{"maxFailureRatio", "must be between 0 and 1, got 1.01"}},
		},
		{
			name: "many problems at once",
			mod: func(u *dao.UpdatePolicy) {
				*u = dao.UpdatePolicy{Parallelism: -1, Delay: -1, Order: "x", Monitor: -1, FailureAction: "y", MaxFailureRatio: -1}
			},
			want: []problem{
				{"parallelism", "got -1"},
				{"delay", "got -1ns"},
				{"order", `"x"`},
				{"monitor", "got -1ns"},
				{"failureAction", `"y"`},
				{"maxFailureRatio", "got -1"},
			},
		},
	}
	runValidateCases(t, fullUpdate, []validator[dao.UpdatePolicy]{
		{"UpdatePolicy", "", "update policy", func(u dao.UpdatePolicy) error { return u.Validate() }},
		{"ServiceSpec.Update", "update.", "service spec", func(u dao.UpdatePolicy) error {
			s := minimalService()
			s.Update = u
			return s.Validate()
		}},
		{"ServiceSpec.Rollback", "rollback.", "service spec", func(u dao.UpdatePolicy) error {
			s := minimalService()
			s.Rollback = u
			return s.Validate()
		}},
	}, cases)
}

func TestNodeValidate(t *testing.T) {
	t.Parallel()
	cases := []validateCase[dao.Node]{
		{name: "no capacity, any allocatable", mod: func(n *dao.Node) {
			n.Capacity = dao.Resources{}
			n.Allocatable = dao.Resources{MilliCPU: 1, Memory: 1}
		}},
		{name: "allocatable equals capacity", mod: func(n *dao.Node) { n.Allocatable = n.Capacity }},
		{name: "small figures are fine for a node", mod: func(n *dao.Node) {
			n.Capacity = dao.Resources{MilliCPU: 5, Memory: dao.KiB, Pids: 1}
			n.Allocatable = dao.Resources{MilliCPU: 5, Memory: dao.KiB, Pids: 1}
		}},
		{name: "availability pause", mod: func(n *dao.Node) { n.Availability = dao.Pause }},
		{name: "availability active", mod: func(n *dao.Node) { n.Availability = dao.Active }},
		{name: "state down", mod: func(n *dao.Node) { n.Status.State = dao.NodeDown }},
		{name: "state disconnected", mod: func(n *dao.Node) { n.Status.State = dao.NodeDisconnected }},
		{name: "state unknown", mod: func(n *dao.Node) { n.Status.State = dao.NodeUnknown }},
		{
			name: "id empty",
			mod:  func(n *dao.Node) { n.ID = "" },
			want: []problem{{"id", "must not be empty"}},
		},
		{
			name: "label key empty",
			mod:  func(n *dao.Node) { n.Labels[""] = "x" },
			want: []problem{{`labels[""]`, "label key must not be empty"}},
		},
		{
			name: "capacity negative",
			mod: func(n *dao.Node) {
				n.Capacity = dao.Resources{MilliCPU: -1, Memory: -1, Pids: -1}
				n.Allocatable = dao.Resources{}
			},
			want: []problem{
				{"capacity.milliCPU", "must be >= 0, got -1"},
				{"capacity.memory", "must be >= 0, got -1"},
				{"capacity.pids", "must be >= 0, got -1"},
				// Zero allocatable does not fit in a negative capacity.
				{"allocatable", "must not exceed capacity"},
			},
		},
		{
			name: "allocatable negative",
			mod:  func(n *dao.Node) { n.Allocatable = dao.Resources{MilliCPU: -1, Memory: -1, Pids: -1} },
			want: []problem{
				{"allocatable.milliCPU", "must be >= 0, got -1"},
				{"allocatable.memory", "must be >= 0, got -1"},
				{"allocatable.pids", "must be >= 0, got -1"},
			},
		},
		{
			name: "allocatable above capacity",
			mod:  func(n *dao.Node) { n.Allocatable.Memory = n.Capacity.Memory + 1 },
			want: []problem{{"allocatable", "must not exceed capacity"}},
		},
		{
			name: "allocatable pids where capacity has none",
			mod: func(n *dao.Node) {
				n.Capacity = dao.Resources{MilliCPU: 1000}
				n.Allocatable = dao.Resources{MilliCPU: 1000, Pids: 1}
			},
			want: []problem{{"allocatable", "must not exceed capacity"}},
		},
		{
			name: "unknown availability",
			mod:  func(n *dao.Node) { n.Availability = "offline" },
			want: []problem{{"availability", `"offline" must be active, pause or drain`}},
		},
		{
			name: "unknown state",
			mod:  func(n *dao.Node) { n.Status.State = "up" },
			want: []problem{{"status.state", `"up" must be unknown, ready, disconnected or down`}},
		},
		{
			name: "many problems at once",
			mod: func(n *dao.Node) {
				n.ID = ""
				n.Labels[""] = ""
				n.Capacity.Pids = -1
				n.Allocatable.MilliCPU = n.Capacity.MilliCPU + 1
				n.Availability = "gone"
				n.Status.State = "lost"
			},
			want: []problem{
				{"id", "must not be empty"},
				{`labels[""]`, "label key must not be empty"},
				{"capacity.pids", "must be >= 0, got -1"},
				{"allocatable", "must not exceed capacity"},
				{"availability", `"gone"`},
				{"status.state", `"lost"`},
			},
		},
	}
	runValidateCases(t, fullNode, []validator[dao.Node]{
		{"Node", "", "node", func(n dao.Node) error { return n.Validate() }},
	}, cases)
}

func TestTaskValidate(t *testing.T) {
	t.Parallel()
	cases := []validateCase[dao.Task]{
		{name: "standalone task", mod: func(tk *dao.Task) { tk.ServiceID, tk.ServiceVersion, tk.Slot = "", 0, 0 }},
		{name: "terminal states", mod: func(tk *dao.Task) { tk.DesiredState, tk.Status.State = dao.TaskShutdown, dao.TaskOrphaned }},
		{name: "status pending", mod: func(tk *dao.Task) { tk.Status.State = dao.TaskPending }},
		{
			name: "id empty",
			mod:  func(tk *dao.Task) { tk.ID = "" },
			want: []problem{{"id", "must not be empty"}},
		},
		{
			name: "slot negative",
			mod:  func(tk *dao.Task) { tk.Slot = -1 },
			want: []problem{{"slot", "must be >= 0, got -1"}},
		},
		{
			name: "spec invalid",
			mod:  func(tk *dao.Task) { tk.Spec.Image, tk.Spec.Env = "", []string{"X"} },
			want: []problem{
				{"spec.image", "must not be empty"},
				{"spec.env[0]", `"X" must have the form KEY=VALUE`},
			},
		},
		{
			name: "restart invalid",
			mod:  func(tk *dao.Task) { tk.Restart.Jitter = 3 },
			want: []problem{{"restart.jitter", "must be between 0 and 1, got 3"}},
		},
		{
			name: "desiredState past the last",
			mod:  func(tk *dao.Task) { tk.DesiredState = dao.TaskOrphaned + 1 },
			want: []problem{{"desiredState", "10 is not a task state"}},
		},
		{
			name: "desiredState negative",
			mod:  func(tk *dao.Task) { tk.DesiredState = -1 },
			want: []problem{{"desiredState", "-1 is not a task state"}},
		},
		{
			name: "status state invalid",
			mod:  func(tk *dao.Task) { tk.Status.State = 99 },
			want: []problem{{"status.state", "99 is not a task state"}},
		},
		{
			name: "many problems at once",
			mod: func(tk *dao.Task) {
				tk.ID = ""
				tk.Slot = -2
				tk.Spec.Resources.Memory = -1
				tk.Restart.MaxAttempts = -1
				tk.DesiredState = 42
				tk.Status.State = -7
			},
			want: []problem{
				{"id", "must not be empty"},
				{"slot", "got -2"},
				{"spec.resources.memory", "must be >= 0, got -1"},
				{"restart.maxAttempts", "got -1"},
				{"desiredState", "42 is not a task state"},
				{"status.state", "-7 is not a task state"},
			},
		},
	}
	runValidateCases(t, fullTask, []validator[dao.Task]{
		{"Task", "", "task", func(tk dao.Task) error { return tk.Validate() }},
	}, cases)
}

func TestValidationError(t *testing.T) {
	t.Parallel()
	s := dao.ServiceSpec{Name: "web", Replicas: -1}
	err := s.Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want an error")
	}
	want := "invalid service spec: container.image: must not be empty; replicas: must be >= 0, got -1"
	if got := err.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}

	wrapped := fmt.Errorf("submit web: %w", err)
	if !errors.Is(wrapped, dao.ErrInvalid) {
		t.Errorf("errors.Is(wrapped, ErrInvalid) = false, want true")
	}
	if errors.Is(wrapped, errors.New("dao: invalid")) {
		t.Errorf("errors.Is(wrapped, another error with the same text) = true, want false")
	}
	var verr *dao.ValidationError
	if !errors.As(wrapped, &verr) {
		t.Fatalf("errors.As(wrapped, *ValidationError) = false, want true")
	}
	wantErrors := []dao.FieldError{
		{Field: "container.image", Reason: "must not be empty"},
		{Field: "replicas", Reason: "must be >= 0, got -1"},
	}
	if diff := cmp.Diff(wantErrors, verr.Errors); diff != "" {
		t.Errorf("Errors (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		field string
		want  bool
	}{
		{"replicas", true},
		{"container.image", true},
		{"container", false},
		{"image", false},
		{"", false},
	} {
		if got := verr.Has(tc.field); got != tc.want {
			t.Errorf("Has(%q) = %t, want %t", tc.field, got, tc.want)
		}
	}
	if got, want := (dao.FieldError{Field: "a.b[0]", Reason: "why"}).Error(), "a.b[0]: why"; got != want {
		t.Errorf("FieldError.Error() = %q, want %q", got, want)
	}
}

// TestValidationErrorUnwrapsEachFieldError: errors.Is and errors.As see every problem a
// ValidationError lists, through any wrapping, and its text stays as it was.
func TestValidationErrorUnwrapsEachFieldError(t *testing.T) {
	t.Parallel()
	s := dao.ServiceSpec{Name: "web", Replicas: -1}
	err := fmt.Errorf("submit web: %w", s.Validate())
	for _, fe := range []dao.FieldError{
		{Field: "container.image", Reason: "must not be empty"},
		{Field: "replicas", Reason: "must be >= 0, got -1"},
	} {
		if !errors.Is(err, fe) {
			t.Errorf("errors.Is(err, %v) = false, want true", fe)
		}
	}
	if errors.Is(err, dao.FieldError{Field: "replicas", Reason: "other"}) {
		t.Error("errors.Is found a field error the ValidationError does not list")
	}
	var fe dao.FieldError
	if !errors.As(err, &fe) || fe.Field != "container.image" {
		t.Errorf("errors.As(err, *FieldError) = %v, want the first problem", fe)
	}
	if !errdefs.IsInvalidArgument(err) || !errdefs.IsInvalidArgument(fe) || !errors.Is(fe, dao.ErrInvalid) {
		t.Error("the error or one of its field errors is not of class dao.ErrInvalid")
	}
	var verr *dao.ValidationError
	if !errors.As(err, &verr) {
		t.Fatal("errors.As(err, *ValidationError) = false")
	}
	if got := len(verr.Unwrap()); got != 2 {
		t.Errorf("Unwrap() has %d errors, want 2", got)
	}
	want := "submit web: invalid service spec: container.image: must not be empty; replicas: must be >= 0, got -1"
	if got := err.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestValidateReportsInFieldOrder pins "ValidationError lists every problem Validate found in
// one value, in field order" (errors.go). BUG: several validate functions check fields out of
// the order of their struct, so the cases marked below fail today.
func TestValidateReportsInFieldOrder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		validate func() error
		want     []string
	}{
		{
			name: "ServiceSpec",
			validate: func() error {
				s := fullService()
				s.Name = ""
				s.Labels[""] = ""
				s.Container.Image = ""
				s.Container.Labels[""] = ""
				s.Replicas = -1
				s.Restart.Condition = "x"
				s.Update.Order = "x"
				s.Rollback.Order = "x"
				s.Placement.MaxReplicasPerNode = -1
				return s.Validate()
			},
			want: []string{"name", `labels[""]`, "container.image", `container.labels[""]`, "replicas",
				"restart.condition", "update.order", "rollback.order", "placement.maxReplicasPerNode"},
		},
		{
			name: "Node",
			validate: func() error {
				n := dao.Node{Labels: map[string]string{"": ""}, Capacity: dao.Resources{Pids: -1},
					Allocatable: dao.Resources{MilliCPU: 1}, Availability: "x", Status: dao.NodeStatus{State: "x"}}
				return n.Validate()
			},
			want: []string{"id", `labels[""]`, "capacity.pids", "allocatable", "availability", "status.state"},
		},
		{
			// BUG (service.go:149-164): resetAfter and window are checked before multiplier,
			// jitter and maxAttempts.
			name: "RestartPolicy",
			validate: func() error {
				r := dao.RestartPolicy{Multiplier: 0.5, Jitter: 2, ResetAfter: -1, MaxAttempts: -1, Window: -1}
				return r.Validate()
			},
			want: []string{"multiplier", "jitter", "resetAfter", "maxAttempts", "window"},
		},
		{
			// BUG (service.go:222-228): monitor is checked before order.
			name: "UpdatePolicy",
			validate: func() error {
				u := dao.UpdatePolicy{Order: "x", Monitor: -1}
				return u.Validate()
			},
			want: []string{"order", "monitor"},
		},
		{
			// BUG (container.go:270-280): the 10ms minimum of interval is checked after timeout
			// and startPeriod.
			name: "HealthCheck",
			validate: func() error {
				c := dao.ContainerSpec{Image: "busybox", HealthCheck: &dao.HealthCheck{
					Command: []string{"true"}, Interval: dur("1ms"), Timeout: -1}}
				return c.Validate()
			},
			want: []string{"healthCheck.interval", "healthCheck.timeout"},
		},
		{
			// BUG (container.go:178-181): a duplicate target is reported after the mount's
			// sizeBytes.
			name: "Mounts",
			validate: func() error {
				c := dao.ContainerSpec{Image: "busybox", Mounts: []dao.Mount{
					{Type: dao.MountTmpfs, Target: "/data"},
					{Type: dao.MountBind, Source: "/srv", Target: "/data", SizeBytes: 1},
				}}
				return c.Validate()
			},
			want: []string{"mounts[1].target", "mounts[1].sizeBytes"},
		},
		{
			// BUG (container.go:187-192): a duplicate host port is reported after the port's
			// protocol.
			name: "Ports",
			validate: func() error {
				c := dao.ContainerSpec{Image: "busybox", Ports: []dao.PortMapping{
					{ContainerPort: 80, HostPort: 8080, Protocol: "http"},
					{ContainerPort: 80, HostPort: 8080, Protocol: "http"},
				}}
				return c.Validate()
			},
			want: []string{"ports[0].protocol", "ports[1].hostPort", "ports[1].protocol"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var verr *dao.ValidationError
			if err := tc.validate(); !errors.As(err, &verr) {
				t.Fatalf("Validate() = %v, want a *dao.ValidationError", err)
			}
			var got []string
			for _, fe := range verr.Errors {
				got = append(got, fe.Field)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("field order of %q (-want +got):\n%s", verr, diff)
			}
		})
	}
}
