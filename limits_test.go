package dao_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/moby/sys/signal"

	"github.com/opendao/dao"
)

// Tests of the limits of limits.go and of the other defects of issue 12: values that
// validated and then broke the orchestrator, the kernel or the store.

func TestReplicasLimit(t *testing.T) {
	t.Parallel()
	runValidateCases(t, minimalService, serviceValidators, []validateCase[dao.ServiceSpec]{
		{name: "MaxReplicas", mod: func(s *dao.ServiceSpec) { s.Replicas = dao.MaxReplicas }},
		{
			name: "MaxReplicas+1",
			mod:  func(s *dao.ServiceSpec) { s.Replicas = dao.MaxReplicas + 1 },
			want: []problem{{"replicas", fmt.Sprintf("1000001 is more than the limit of %d", dao.MaxReplicas)}},
		},
		{
			name: "a billion",
			mod:  func(s *dao.ServiceSpec) { s.Replicas = 1_000_000_000 },
			want: []problem{{"replicas", "1000000000 is more than the limit of 1000000"}},
		},
		{
			name: "MaxInt",
			mod:  func(s *dao.ServiceSpec) { s.Replicas = math.MaxInt },
			want: []problem{{"replicas", "more than the limit of 1000000"}},
		},
	})
	// The cluster benchmark's largest service, and its whole million tasks in one.
	for _, n := range []int{10_000, 1_000_000} {
		if n > dao.MaxReplicas {
			t.Errorf("MaxReplicas %d refuses a service of %d replicas", dao.MaxReplicas, n)
		}
	}
}

var serviceValidators = []validator[dao.ServiceSpec]{
	{"ServiceSpec", "", "service spec", func(s dao.ServiceSpec) error { return s.Validate() }},
}

func TestResourceLimits(t *testing.T) {
	t.Parallel()
	res := func(r dao.Resources) func(*dao.ContainerSpec) {
		return func(c *dao.ContainerSpec) { c.Resources = r }
	}
	runValidateCases(t, minimalContainer, containerValidators, []validateCase[dao.ContainerSpec]{
		{name: "largest valid", mod: res(dao.Resources{MilliCPU: dao.MaxMilliCPU, Memory: dao.MaxMemory, Pids: dao.MaxPids})},
		{
			name: "milliCPU MaxInt64",
			mod:  res(dao.Resources{MilliCPU: math.MaxInt64}),
			want: []problem{{"resources.milliCPU", "9223372036854775807 is more than the kernel's limit of 175921860444"}},
		},
		{
			name: "milliCPU 1e14",
			mod:  res(dao.Resources{MilliCPU: 1e14}),
			want: []problem{{"resources.milliCPU", "100000000000000 is more than the kernel's limit of 175921860444"}},
		},
		{
			name: "milliCPU MaxMilliCPU+1",
			mod:  res(dao.Resources{MilliCPU: dao.MaxMilliCPU + 1}),
			want: []problem{{"resources.milliCPU", "more than the kernel's limit"}},
		},
		{
			name: "memory MaxInt64",
			mod:  res(dao.Resources{Memory: math.MaxInt64}),
			want: []problem{{"resources.memory", "9223372036854775807 is more than the limit of 1048576GiB"}},
		},
		{
			name: "pids above the kernel's",
			mod:  res(dao.Resources{Pids: dao.MaxPids + 1}),
			want: []problem{{"resources.pids", "4194305 is more than the kernel's limit of 4194304"}},
		},
		{
			name: "tmpfs size",
			mod: func(c *dao.ContainerSpec) {
				c.Mounts = []dao.Mount{{Type: dao.MountTmpfs, Target: "/t", SizeBytes: math.MaxInt64}}
			},
			want: []problem{{"mounts[0].sizeBytes", "more than the limit of 1048576GiB"}},
		},
	})
	// A node reports what it has: its figures are not container limits.
	n := dao.Node{ID: "n", Capacity: dao.Resources{MilliCPU: math.MaxInt64, Memory: math.MaxInt64, Pids: math.MaxInt64}}
	if err := n.Validate(); err != nil {
		t.Errorf("node with huge capacity: %v", err)
	}
}

func TestResourcesArithmeticSaturates(t *testing.T) {
	t.Parallel()
	big := dao.Resources{MilliCPU: math.MaxInt64, Memory: math.MaxInt64 - 1, Pids: 1}
	if got, want := big.Add(dao.Resources{MilliCPU: 1, Memory: 5, Pids: 1}), (dao.Resources{MilliCPU: math.MaxInt64, Memory: math.MaxInt64, Pids: 2}); got != want {
		t.Errorf("Add = %+v, want %+v", got, want)
	}
	small := dao.Resources{MilliCPU: math.MinInt64 + 1, Memory: 0, Pids: -3}
	if got, want := small.Sub(dao.Resources{MilliCPU: 2, Memory: math.MinInt64, Pids: 1}), (dao.Resources{MilliCPU: math.MinInt64, Memory: math.MaxInt64, Pids: -4}); got != want {
		t.Errorf("Sub = %+v, want %+v", got, want)
	}
	if got, want := small.Add(dao.Resources{MilliCPU: -5}), (dao.Resources{MilliCPU: math.MinInt64, Pids: -3}); got != want {
		t.Errorf("Add of negatives = %+v, want %+v", got, want)
	}
}

// TestNonFiniteFloats: NaN and infinities validated, and the store then failed to write
// the spec as JSON with an error that named no field.
func TestNonFiniteFloats(t *testing.T) {
	t.Parallel()
	var cases []validateCase[dao.ServiceSpec]
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		cases = append(cases,
			validateCase[dao.ServiceSpec]{
				name: fmt.Sprintf("restart.jitter %g", f),
				mod:  func(s *dao.ServiceSpec) { s.Restart.Jitter = f },
				want: []problem{{"restart.jitter", fmt.Sprintf("must be a number between 0 and 1, got %g", f)}},
			},
			validateCase[dao.ServiceSpec]{
				name: fmt.Sprintf("restart.multiplier %g", f),
				mod:  func(s *dao.ServiceSpec) { s.Restart.Multiplier = f },
				want: []problem{{"restart.multiplier", fmt.Sprintf("must be a finite number, got %g", f)}},
			},
			validateCase[dao.ServiceSpec]{
				name: fmt.Sprintf("update.maxFailureRatio %g", f),
				mod:  func(s *dao.ServiceSpec) { s.Update.MaxFailureRatio = f },
				want: []problem{{"update.maxFailureRatio", fmt.Sprintf("must be a number between 0 and 1, got %g", f)}},
			},
			validateCase[dao.ServiceSpec]{
				name: fmt.Sprintf("rollback.maxFailureRatio %g", f),
				mod:  func(s *dao.ServiceSpec) { s.Rollback.MaxFailureRatio = f },
				want: []problem{{"rollback.maxFailureRatio", "must be a number between 0 and 1"}},
			})
	}
	cases = append(cases, validateCase[dao.ServiceSpec]{
		name: "restart.multiplier above the limit",
		mod:  func(s *dao.ServiceSpec) { s.Restart.Multiplier = 1e300 },
		want: []problem{{"restart.multiplier", "must be 0 (default 2) or >= 1 and <= 100, got 1e+300"}},
	}, validateCase[dao.ServiceSpec]{
		name: "restart.multiplier at the limit",
		mod:  func(s *dao.ServiceSpec) { s.Restart.Multiplier = dao.MaxRestartMultiplier },
	})
	runValidateCases(t, fullService, serviceValidators, cases)

	// What validates can be stored: the JSON encoder takes every float that passes.
	s := fullService()
	s.Restart.Jitter, s.Restart.Multiplier, s.Update.MaxFailureRatio = 1, dao.MaxRestartMultiplier, 1
	if _, err := json.Marshal(&s); err != nil {
		t.Errorf("marshal a valid spec: %v", err)
	}
}

func TestDurationLimits(t *testing.T) {
	t.Parallel()
	tooLong := dao.MaxDuration + 1
	runValidateCases(t, fullService, serviceValidators, []validateCase[dao.ServiceSpec]{
		{name: "every duration at the limit", mod: func(s *dao.ServiceSpec) {
			s.Restart.MaxDelay, s.Restart.ResetAfter, s.Restart.Window = dao.MaxDuration, dao.MaxDuration, dao.MaxDuration
			s.Update.Delay, s.Update.Monitor = dao.MaxDuration, dao.MaxDuration
			s.Container.StopGracePeriod = dao.MaxDuration
			s.Container.HealthCheck.Interval, s.Container.HealthCheck.Timeout = dao.MaxDuration, dao.MaxDuration
			s.Container.HealthCheck.StartPeriod = dao.MaxDuration
		}},
		{
			name: "every duration past the limit",
			mod: func(s *dao.ServiceSpec) {
				s.Restart.InitialDelay, s.Restart.MaxDelay = math.MaxInt64, math.MaxInt64
				s.Restart.ResetAfter, s.Restart.Window = tooLong, tooLong
				s.Update.Delay, s.Update.Monitor = tooLong, tooLong
				s.Rollback.Delay = tooLong
				s.Container.StopGracePeriod = tooLong
				s.Container.HealthCheck.Interval, s.Container.HealthCheck.Timeout = tooLong, tooLong
				s.Container.HealthCheck.StartPeriod = tooLong
			},
			want: []problem{
				{"restart.initialDelay", "2562047h47m16.854775807s is more than the limit of 8760h0m0s"},
				{"restart.maxDelay", "is more than the limit of 8760h0m0s"},
				{"restart.resetAfter", "8760h0m0.000000001s is more than the limit of 8760h0m0s"},
				{"restart.window", "more than the limit"},
				{"update.delay", "more than the limit"},
				{"update.monitor", "more than the limit"},
				{"rollback.delay", "more than the limit"},
				{"container.stopGracePeriod", "more than the limit"},
				{"container.healthCheck.interval", "more than the limit"},
				{"container.healthCheck.timeout", "more than the limit"},
				{"container.healthCheck.startPeriod", "more than the limit"},
			},
		},
	})
}

func TestCapabilityNames(t *testing.T) {
	t.Parallel()
	caps := dao.Capabilities()
	if len(caps) != 41 || caps[0] != "CHOWN" || caps[21] != "SYS_ADMIN" || caps[40] != "CHECKPOINT_RESTORE" {
		t.Fatalf("Capabilities() = %v, want the kernel's 41 in their order", caps)
	}
	caps[0] = "changed"
	if dao.Capabilities()[0] != "CHOWN" {
		t.Error("Capabilities() returns the package's own slice")
	}
	var every []string
	for _, c := range dao.Capabilities() {
		every = append(every, c, "CAP_"+c, strings.ToLower(c), "cap_"+strings.ToLower(c))
	}
	runValidateCases(t, minimalContainer, containerValidators, []validateCase[dao.ContainerSpec]{
		{name: "every known name, as docker spells them", mod: func(c *dao.ContainerSpec) { c.CapAdd, c.CapDrop = every, every }},
		{name: "ALL in capAdd, as docker", mod: func(c *dao.ContainerSpec) { c.CapAdd, c.CapDrop = []string{"ALL"}, []string{"NET_RAW"} }},
		{name: "all in capDrop", mod: func(c *dao.ContainerSpec) { c.CapDrop, c.CapAdd = []string{"all"}, []string{"NET_BIND_SERVICE"} }},
		{
			name: "unknown names",
			mod: func(c *dao.ContainerSpec) {
				c.CapAdd = []string{"NOT_A_CAP", "CAP_ALL", " NET_ADMIN", "SYS_ADMIN2"}
				c.CapDrop = []string{"NET_ADMIN", "CAP_NOT_A_CAP"}
			},
			want: []problem{
				{"capAdd[0]", `"NOT_A_CAP" is not a capability name`},
				{"capAdd[1]", `"CAP_ALL" is not a capability name`},
				{"capAdd[2]", `" NET_ADMIN" is not a capability name`},
				{"capAdd[3]", `"SYS_ADMIN2" is not a capability name`},
				{"capDrop[1]", `"CAP_NOT_A_CAP" is not a capability name`},
			},
		},
	})
	for in, want := range map[string]string{"net_admin": "NET_ADMIN", "CAP_SYS_TIME": "SYS_TIME", "All": "ALL", "Cap_Bpf": "BPF"} {
		if got, ok := dao.CapabilityName(in); !ok || got != want {
			t.Errorf("CapabilityName(%q) = %q, %t; want %q, true", in, got, ok, want)
		}
	}
}

func TestSeccompValidate(t *testing.T) {
	t.Parallel()
	runValidateCases(t, minimalContainer, containerValidators, []validateCase[dao.ContainerSpec]{
		{name: "default", mod: func(c *dao.ContainerSpec) { c.Seccomp = dao.SeccompDefault }},
		{name: "unconfined", mod: func(c *dao.ContainerSpec) { c.Seccomp = dao.SeccompUnconfined }},
		{
			name: "unknown",
			mod:  func(c *dao.ContainerSpec) { c.Seccomp = "/etc/profile.json" },
			want: []problem{{"seccomp", `"/etc/profile.json" must be empty (the runtime's default profile) or "unconfined"`}},
		},
	})
}

// TestStopSignalsMatchTheRuntime: a stop signal that validated but that the runtime's
// Stop could not parse (RTMIN+16, SIGFOO) made every stop of the container fail.
func TestStopSignalsMatchTheRuntime(t *testing.T) {
	t.Parallel()
	valid := func(sig string) bool {
		c := dao.ContainerSpec{Image: "busybox", StopSignal: sig}
		return c.Validate() == nil
	}
	for name := range signal.SignalMap {
		for _, s := range []string{name, "SIG" + name, strings.ToLower("sig" + name)} {
			if !valid(s) {
				t.Errorf("stop signal %q refused; the runtime knows it", s)
			}
		}
	}
	for _, s := range []string{"SIGFOO", "RTMIN+16", "RTMIN+0", "RTMAX-15", "RTMAX-0", "RTMIN+01", "RTMAX+1", "SIGRTMIN-1", "TERM1"} {
		if valid(s) {
			t.Errorf("stop signal %q validated; the runtime cannot parse it", s)
		}
		if _, err := signal.ParseSignal(s); err == nil {
			t.Errorf("the runtime parses %q: the test is wrong", s)
		}
	}
}

func TestHostNetworkPorts(t *testing.T) {
	t.Parallel()
	runValidateCases(t, minimalContainer, containerValidators, []validateCase[dao.ContainerSpec]{
		{name: "same port", mod: func(c *dao.ContainerSpec) {
			c.HostNetwork = true
			c.Ports = []dao.PortMapping{{ContainerPort: 80, HostPort: 80}, {ContainerPort: 81}}
		}},
		{
			// The container listens on the node's port 80: the mapping was silently ignored.
			name: "mapped port",
			mod: func(c *dao.ContainerSpec) {
				c.HostNetwork = true
				c.Ports = []dao.PortMapping{{ContainerPort: 80, HostPort: 8080}}
			},
			want: []problem{{"ports[0].hostPort", "8080 must be 0 or the container port 80: with hostNetwork"}},
		},
		{
			name: "port name",
			mod: func(c *dao.ContainerSpec) {
				c.Ports = []dao.PortMapping{{Name: strings.Repeat("n", 64), ContainerPort: 80}}
			},
			want: []problem{{"ports[0].name", "must be a name of at most 63 bytes"}},
		},
	})
}

func TestLengthLimits(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", dao.MaxArgBytes+1)
	runValidateCases(t, minimalContainer, containerValidators, []validateCase[dao.ContainerSpec]{
		{name: "longest argument", mod: func(c *dao.ContainerSpec) {
			c.Args = []string{strings.Repeat("a", dao.MaxArgBytes)}
			c.Env = []string{"A=" + strings.Repeat("a", dao.MaxArgBytes-2)}
		}},
		{
			name: "arguments too long",
			mod: func(c *dao.ContainerSpec) {
				c.Command = []string{"sh", long}
				c.Args = []string{long}
				c.Env = []string{"A=" + long}
			},
			want: []problem{
				{"command[1]", "is 131072 bytes, more than the kernel's limit of 131071"},
				{"args[0]", "is 131072 bytes"},
				{"env[0]", `"A" is 131074 bytes, more than the kernel's limit of 131071`},
			},
		},
		{
			name: "too many bytes together",
			mod: func(c *dao.ContainerSpec) {
				for range 10 {
					c.Env = append(c.Env, "A="+strings.Repeat("a", 128<<10-10))
				}
			},
			want: []problem{{"env", "command, args and env take 1310650 bytes together, more than the limit of 1048576"}},
		},
		{
			name: "health check argument",
			mod:  func(c *dao.ContainerSpec) { c.HealthCheck = &dao.HealthCheck{Command: []string{"check", long}} },
			want: []problem{{"healthCheck.command[1]", "is 131072 bytes"}},
		},
		{
			name: "paths",
			mod: func(c *dao.ContainerSpec) {
				c.WorkingDir = "/" + strings.Repeat("d", dao.MaxPathBytes)
				c.Mounts = []dao.Mount{{Type: dao.MountBind, Source: "/" + strings.Repeat("s", dao.MaxPathBytes), Target: "/t\x00"}}
			},
			want: []problem{
				{"workingDir", "... (4096 bytes) is 4096 bytes, more than the kernel's limit of 4095"},
				{"mounts[0].source", "is 4096 bytes"},
				{"mounts[0].target", `"/t\x00" must not contain a NUL byte`},
			},
		},
		{
			name: "too many entries",
			mod: func(c *dao.ContainerSpec) {
				for i := range dao.MaxItems + 1 {
					c.Mounts = append(c.Mounts, dao.Mount{Type: dao.MountTmpfs, Target: fmt.Sprintf("/m%d", i)})
					c.Ports = append(c.Ports, dao.PortMapping{ContainerPort: 1 + i})
				}
				c.CapAdd = make([]string, dao.MaxItems+1)
				c.Labels = map[string]string{}
				for i := range dao.MaxItems + 1 {
					c.CapAdd[i] = "NET_ADMIN"
					c.Labels[fmt.Sprint(i)] = ""
				}
			},
			want: []problem{
				{"mounts", "has 1025 entries, more than the limit of 1024"},
				{"ports", "has 1025 entries"},
				{"capAdd", "has 1025 entries"},
				{"labels", "has 1025 entries"},
			},
		},
	})
	runValidateCases(t, minimalService, serviceValidators, []validateCase[dao.ServiceSpec]{
		{
			name: "placement",
			mod: func(s *dao.ServiceSpec) {
				s.Placement.Constraints = []string{"node.labels.a == " + strings.Repeat("v", dao.MaxStringBytes)}
				s.Placement.Spread = make([]string, dao.MaxItems+1)
				for i := range s.Placement.Spread {
					s.Placement.Spread[i] = "node.labels.zone"
				}
			},
			want: []problem{
				{"placement.constraints[0]", "... (4113 bytes) is 4113 bytes, more than the limit of 4096"},
				{"placement.spread", "has 1025 entries"},
			},
		},
	})
	n := dao.Node{ID: strings.Repeat("n", dao.MaxNodeIDBytes+1)}
	checkProblems(t, n.Validate(), "node", []problem{{"id", "is 254 bytes, more than the limit of 253"}})
}

// TestErrorsQuoteAtMostMaxQuoted: a 100 KB service name was echoed whole in the error, and
// so was every other field that validation quotes.
func TestErrorsQuoteAtMostMaxQuoted(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("X", 100<<10)
	for _, tc := range []struct {
		name  string
		field string
		mod   func(*dao.ServiceSpec)
	}{
		{"name", "name", func(s *dao.ServiceSpec) { s.Name = huge }},
		{"mode", "mode", func(s *dao.ServiceSpec) { s.Mode = dao.ServiceMode(huge) }},
		{"image", "container.image", func(s *dao.ServiceSpec) { s.Container.Image = huge }},
		{"env", "container.env[0]", func(s *dao.ServiceSpec) { s.Container.Env = []string{huge} }},
		{"env key", "container.env[0]", func(s *dao.ServiceSpec) { s.Container.Env = []string{huge + huge + "=v"} }},
		{"workingDir", "container.workingDir", func(s *dao.ServiceSpec) { s.Container.WorkingDir = huge }},
		{"user", "container.user", func(s *dao.ServiceSpec) { s.Container.User = huge }},
		{"hostname", "container.hostname", func(s *dao.ServiceSpec) { s.Container.Hostname = huge }},
		{"mount source", "container.mounts[0].source", func(s *dao.ServiceSpec) {
			s.Container.Mounts = []dao.Mount{{Type: dao.MountBind, Source: huge, Target: "/t"}}
		}},
		{"mount type", "container.mounts[0].type", func(s *dao.ServiceSpec) {
			s.Container.Mounts = []dao.Mount{{Type: dao.MountType(huge), Target: "/t"}}
		}},
		{"port protocol", "container.ports[0].protocol", func(s *dao.ServiceSpec) {
			s.Container.Ports = []dao.PortMapping{{ContainerPort: 1, Protocol: huge}}
		}},
		{"capability", "container.capAdd[0]", func(s *dao.ServiceSpec) { s.Container.CapAdd = []string{huge} }},
		{"seccomp", "container.seccomp", func(s *dao.ServiceSpec) { s.Container.Seccomp = dao.SeccompProfile(huge) }},
		{"stop signal", "container.stopSignal", func(s *dao.ServiceSpec) { s.Container.StopSignal = huge }},
		{"label key", `labels["` + strings.Repeat("X", dao.MaxQuoted) + `"... (102400 bytes)]`, func(s *dao.ServiceSpec) {
			s.Labels = map[string]string{huge: ""}
		}},
		{"restart condition", "restart.condition", func(s *dao.ServiceSpec) { s.Restart.Condition = dao.RestartCondition(huge) }},
		{"update order", "update.order", func(s *dao.ServiceSpec) { s.Update.Order = dao.UpdateOrder(huge) }},
		{"failure action", "rollback.failureAction", func(s *dao.ServiceSpec) { s.Rollback.FailureAction = dao.FailureAction(huge) }},
		{"constraint", "placement.constraints[0]", func(s *dao.ServiceSpec) { s.Placement.Constraints = []string{huge} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := minimalService()
			tc.mod(&s)
			err := s.Validate()
			var verr *dao.ValidationError
			if !errors.As(err, &verr) || !verr.Has(tc.field) {
				t.Fatalf("Validate() = %.300v, want a problem with %.200s", err, tc.field)
			}
			if msg := err.Error(); len(msg) > 1024 || !strings.Contains(msg, "... (") {
				t.Errorf("error of %d bytes, want under 1 KiB with the input cut: %.300s", len(msg), msg)
			}
		})
	}
	// Durations are read from JSON: the decoder's error quotes them the same way.
	var d dao.Duration
	err := json.Unmarshal([]byte(`"`+huge+`"`), &d)
	if err == nil || len(err.Error()) > 300 || !strings.Contains(err.Error(), "(102400 bytes)") {
		t.Errorf("Unmarshal(huge duration) = %.300v, want a short error", err)
	}
}

func TestQuote(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", `""`},
		{"web", `"web"`},
		{strings.Repeat("a", dao.MaxQuoted), `"` + strings.Repeat("a", dao.MaxQuoted) + `"`},
		{strings.Repeat("a", dao.MaxQuoted+1), `"` + strings.Repeat("a", dao.MaxQuoted) + `"... (65 bytes)`},
		// Runes, not bytes: 64 three-byte runes are quoted whole, and a cut never splits one.
		{strings.Repeat("道", dao.MaxQuoted), `"` + strings.Repeat("道", dao.MaxQuoted) + `"`},
		{strings.Repeat("道", dao.MaxQuoted+1), `"` + strings.Repeat("道", dao.MaxQuoted) + `"... (195 bytes)`},
		{"\x00\xff" + strings.Repeat("b", 100), `"\x00\xff` + strings.Repeat("b", dao.MaxQuoted-2) + `"... (102 bytes)`},
	} {
		if got := dao.Quote(tc.in); got != tc.want {
			t.Errorf("Quote(%.20q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestValidationErrorListsAtMostMaxProblems(t *testing.T) {
	t.Parallel()
	c := dao.ContainerSpec{Image: "busybox", Env: make([]string, 10_000)}
	for i := range c.Env {
		c.Env[i] = "NOVALUE"
	}
	err := c.Validate()
	var verr *dao.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Validate() = %v, want a *dao.ValidationError", err)
	}
	if len(verr.Errors) != dao.MaxProblems || verr.More != 10_000-dao.MaxProblems {
		t.Errorf("%d problems listed and %d more, want %d and %d", len(verr.Errors), verr.More, dao.MaxProblems, 10_000-dao.MaxProblems)
	}
	if msg := err.Error(); !strings.HasSuffix(msg, "; and 9900 more") || len(msg) > 10_000 {
		t.Errorf("Error() = %d bytes ending %q, want it to end with the count of the others", len(msg), msg[max(0, len(msg)-40):])
	}
}
