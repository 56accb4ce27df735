package policy

import (
	"errors"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/google/go-cmp/cmp"
	"github.com/opendao/dao"
)

// refusals admits s under rules and returns the refused violations as "rule field" lines.
func refusals(t *testing.T, s *dao.ServiceSpec, rules ...AdmissionRule) []string {
	t.Helper()
	_, err := Admit(s, rules...)
	if err == nil {
		return nil
	}
	var ae *AdmissionError
	if !errors.As(err, &ae) {
		t.Fatalf("Admit: %v, want an *AdmissionError", err)
	}
	var out []string
	for _, v := range ae.Violations {
		out = append(out, v.Rule+" "+v.Field)
	}
	return out
}

// TestAdmitReportsAViolationOnce: Baseline with DisallowPrivileged, as the README combines
// them, reported the privileged container twice.
func TestAdmitReportsAViolationOnce(t *testing.T) {
	t.Parallel()
	s := svc("registry.example.com/web:1", func(s *dao.ServiceSpec) {
		s.Container.Privileged = true
		s.Placement.Constraints = []string{"node.labels.zone = a"}
	})
	// The orchestrator puts ValidPlacement before its rules; Baseline holds it too.
	rules := append([]AdmissionRule{ValidPlacement()}, append(mustBaseline(t), DisallowPrivileged())...)
	got := refusals(t, s, rules...)
	want := []string{"valid-placement placement.constraints[0]", "disallow-privileged container.privileged"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("violations (-want +got):\n%s", d)
	}

	// Generally: any rule twice, and an audit rule beside the same enforced rule.
	twice := AdmissionRule{Name: "team", Check: func(*dao.ServiceSpec) []Violation {
		return []Violation{{Field: "labels", Reason: "no team"}, {Field: "labels", Reason: "no team"}}
	}}
	warnings, err := Admit(s, twice.WithMode(Audit), DisallowLatestTag().WithMode(Audit), twice, twice.WithMode(Audit))
	var ae *AdmissionError
	if !errors.As(err, &ae) {
		t.Fatalf("Admit: %v", err)
	}
	if d := cmp.Diff([]Violation{{"team", "labels", "no team"}}, ae.Violations); d != "" {
		t.Errorf("refused (-want +got):\n%s", d)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings = %v, want none: the audit rules' only violation is refused", warnings)
	}
	// Different reasons of one rule and field stay apart.
	two := AdmissionRule{Name: "r", Check: func(*dao.ServiceSpec) []Violation {
		return []Violation{{Field: "f", Reason: "a"}, {Field: "f", Reason: "b"}}
	}}
	if got := refusals(t, s, two, two); len(got) != 2 {
		t.Errorf("got %v, want two violations", got)
	}
}

func bind(source, target string, readOnly bool) dao.Mount {
	return dao.Mount{Type: dao.MountBind, Source: source, Target: target, ReadOnly: readOnly}
}

// TestBaselineRefusesHostPaths: Baseline admitted a read-write bind of /, of containerd's
// socket, and of the host's /proc over /proc.
func TestBaselineRefusesHostPaths(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		mounts []dao.Mount
		opts   []BaselineOption
		want   []string
	}{
		{name: "tmpfs only", mounts: []dao.Mount{{Type: dao.MountTmpfs, Target: "/tmp"}}},
		{
			name:   "the host's root",
			mounts: []dao.Mount{bind("/", "/host", false)},
			want:   []string{"disallow-host-path container.mounts[0].source"},
		},
		{
			name:   "containerd's socket",
			mounts: []dao.Mount{bind("/run/containerd/containerd.sock", "/run/containerd.sock", true)},
			want:   []string{"disallow-host-path container.mounts[0].source"},
		},
		{
			name:   "/proc over /proc",
			mounts: []dao.Mount{bind("/proc", "/proc", false)},
			want:   []string{"disallow-host-path container.mounts[0].source", "disallow-proc-mount container.mounts[0].target"},
		},
		{
			name: "allowed prefixes, cleaned",
			opts: []BaselineOption{AllowHostPaths("/srv/app/"), AllowHostPaths("/var/lib/x")},
			mounts: []dao.Mount{
				bind("/srv/app", "/a", false),
				bind("/srv/app/data/", "/b", false),
				bind("/srv/app/./x//y", "/c", true),
				bind("/srv/apple", "/d", false),
				bind("/srv/app/../../etc", "/e", false),
				bind("/var/lib/x/../y", "/f", false),
				bind("/relative/ignored", "/g", false),
			},
			want: []string{
				"disallow-host-path container.mounts[3].source",
				"disallow-host-path container.mounts[4].source",
				"disallow-host-path container.mounts[5].source",
				"disallow-host-path container.mounts[6].source",
			},
		},
		{
			name:   "everything allowed",
			opts:   []BaselineOption{AllowHostPaths("/")},
			mounts: []dao.Mount{bind("/", "/host", false), bind("/run/containerd/containerd.sock", "/s", false)},
		},
		{
			name: "mounts over the kernel's interfaces",
			mounts: []dao.Mount{
				{Type: dao.MountTmpfs, Target: "/proc/sys"},
				{Type: dao.MountTmpfs, Target: "/sys/"},
				{Type: dao.MountTmpfs, Target: "/tmp/../proc"},
				{Type: dao.MountTmpfs, Target: "/procfs"},
				{Type: dao.MountTmpfs, Target: "/system"},
			},
			want: []string{
				"disallow-proc-mount container.mounts[0].target",
				"disallow-proc-mount container.mounts[1].target",
				"disallow-proc-mount container.mounts[2].target",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := svc("registry.example.com/web:1", func(s *dao.ServiceSpec) { s.Container.Mounts = tc.mounts })
			if d := cmp.Diff(tc.want, refusals(t, s, mustBaseline(t, tc.opts...)...)); d != "" {
				t.Errorf("violations (-want +got):\n%s", d)
			}
		})
	}

	rule, err := DisallowHostPaths("/srv")
	if err != nil {
		t.Fatal(err)
	}
	s := svc("registry.example.com/web:1", func(s *dao.ServiceSpec) {
		s.Container.Mounts = []dao.Mount{bind("/srv/../etc/", "/etc2", true)}
	})
	if d := cmp.Diff([]string{`container.mounts[0].source: bind mount of host path "/etc" ("/srv/../etc/") is not allowed (allowed: /srv)`}, check(rule, s)); d != "" {
		t.Errorf("DisallowHostPaths (-want +got):\n%s", d)
	}
	for _, bad := range []string{"", "srv", "./srv"} {
		if _, err := DisallowHostPaths("/ok", bad); !errors.Is(err, ErrInvalidPolicy) {
			t.Errorf("DisallowHostPaths(%q) = %v, want ErrInvalidPolicy", bad, err)
		}
	}
}

func TestBaselineHostPortsAndSeccomp(t *testing.T) {
	t.Parallel()
	s := svc("registry.example.com/web:1", func(s *dao.ServiceSpec) {
		s.Container.Ports = []dao.PortMapping{{ContainerPort: 80}, {ContainerPort: 80, HostPort: 80}, {ContainerPort: 81, HostPort: 8081}}
		s.Container.Seccomp = dao.SeccompUnconfined
	})
	want := []string{"disallow-host-ports container.ports[1].hostPort", "disallow-host-ports container.ports[2].hostPort", "restrict-seccomp container.seccomp"}
	if d := cmp.Diff(want, refusals(t, s, mustBaseline(t)...)); d != "" {
		t.Errorf("baseline (-want +got):\n%s", d)
	}
	want = []string{"disallow-host-ports container.ports[2].hostPort", "restrict-seccomp container.seccomp"}
	if d := cmp.Diff(want, refusals(t, s, mustBaseline(t, AllowHostPorts(443), AllowHostPorts(80))...)); d != "" {
		t.Errorf("baseline allowing port 80 (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"container.ports[2].hostPort: host port 8081 is not allowed (allowed: 80, 443)"}, check(DisallowHostPorts(443, 80, 80), s)); d != "" {
		t.Errorf("DisallowHostPorts (-want +got):\n%s", d)
	}
	s.Container.Seccomp = dao.SeccompDefault
	if got := check(RestrictSeccomp(), s); got != nil {
		t.Errorf("RestrictSeccomp on the default profile: %v", got)
	}
}

// TestBaselineAdmitsAnOrdinaryService: what a service needs without any of the host's
// power passes.
func TestBaselineAdmitsAnOrdinaryService(t *testing.T) {
	t.Parallel()
	s := svc("registry.example.com/web:1", func(s *dao.ServiceSpec) {
		s.Container.Mounts = []dao.Mount{{Type: dao.MountTmpfs, Target: "/tmp"}}
		s.Container.Ports = []dao.PortMapping{{ContainerPort: 8080}}
		s.Container.CapDrop = []string{"ALL"}
		s.Container.CapAdd = []string{"NET_BIND_SERVICE"}
		s.Container.ReadOnlyRootfs = true
		s.Placement.Spread = []string{"node.labels.zone"}
	})
	if got := refusals(t, s, mustBaseline(t)...); got != nil {
		t.Errorf("refused: %v", got)
	}
	// ALL is every capability: beyond the baseline's.
	s.Container.CapAdd = []string{"all"}
	if d := cmp.Diff([]string{"allowed-capabilities container.capAdd[0]"}, refusals(t, s, mustBaseline(t)...)); d != "" {
		t.Errorf("capAdd ALL (-want +got):\n%s", d)
	}
}

// TestAdmissionErrorsQuoteAtMostMaxQuoted: a 100 KB name or image was echoed whole.
func TestAdmissionErrorsQuoteAtMostMaxQuoted(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("X", 100<<10)
	s := svc(huge, func(s *dao.ServiceSpec) {
		s.Name = huge
		s.Placement.Constraints = []string{"node.labels." + huge + " == a b"}
		s.Container.Mounts = []dao.Mount{bind("/"+huge, "/t", false)}
	})
	_, err := Admit(s, mustBaseline(t)...)
	_, err2 := Admit(s, DisallowLatestTag())
	for _, err := range []error{err, err2} {
		if err == nil || len(err.Error()) > 2048 || !strings.Contains(err.Error(), "... (") {
			t.Errorf("Admit = %d bytes: %.400v, want a short error that cuts the input", len(err.Error()), err)
		}
	}
	if _, err := AllowedRegistries(huge); err == nil || len(err.Error()) > 400 {
		t.Errorf("AllowedRegistries(huge) = %.400v, want a short error", err)
	}
	if _, err := AllowedRegistries("registry.example.com/" + huge); err == nil || len(err.Error()) > 400 {
		t.Errorf("AllowedRegistries(registry.example.com/huge) = %.400v, want a short error", err)
	}
	if _, err := ParseConstraint("node.labels.a == b " + huge); err == nil || len(err.Error()) > 400 {
		t.Errorf("ParseConstraint(huge) = %.400v, want a short error", err)
	}
}

func mustBaseline(t *testing.T, opts ...BaselineOption) []AdmissionRule {
	t.Helper()
	rules, err := Baseline(opts...)
	if err != nil {
		t.Fatalf("Baseline: %v", err)
	}
	return rules
}

// TestBaselineOptionsRejectBadValues: a relative host path or a port out of range is an
// error naming the option, of class dao.ErrInvalid, and no rules.
func TestBaselineOptionsRejectBadValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opt  BaselineOption
		want string
	}{
		{AllowHostPaths("/ok", "relative/path"), `policy: AllowHostPaths("relative/path"): policy: invalid policy: must be an absolute path`},
		{AllowHostPaths(""), `policy: AllowHostPaths(""): policy: invalid policy: must be an absolute path`},
		{AllowHostPorts(80, 0), "policy: AllowHostPorts(0): policy: invalid policy: must be a port from 1 to 65535"},
		{AllowHostPorts(65536), "policy: AllowHostPorts(65536): policy: invalid policy: must be a port from 1 to 65535"},
	} {
		rules, err := Baseline(AllowHostPorts(443), tc.opt)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Baseline: got %v, want %s", err, tc.want)
		}
		if !errors.Is(err, ErrInvalidPolicy) || !errors.Is(err, dao.ErrInvalid) || !errdefs.IsInvalidArgument(err) {
			t.Errorf("%v: not ErrInvalidPolicy, dao.ErrInvalid and errdefs.ErrInvalidArgument", err)
		}
		if rules != nil {
			t.Errorf("Baseline with a bad option returned %d rules", len(rules))
		}
	}
}

// TestBaselineCapabilitiesIsACopy: a caller that changes the list changes nothing else.
func TestBaselineCapabilitiesIsACopy(t *testing.T) {
	t.Parallel()
	caps := BaselineCapabilities()
	caps[0] = "SYS_ADMIN"
	if got := BaselineCapabilities()[0]; got != "AUDIT_WRITE" {
		t.Errorf("BaselineCapabilities()[0] = %q after a caller changed its copy", got)
	}
}
