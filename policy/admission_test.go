package policy

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opendao/dao"
)

func svc(image string, edit ...func(*dao.ServiceSpec)) *dao.ServiceSpec {
	s := &dao.ServiceSpec{Name: "web", Replicas: 2, Container: dao.ContainerSpec{Image: image}}
	for _, e := range edit {
		e(s)
	}
	return s
}

func TestAdmit(t *testing.T) {
	t.Parallel()
	s := svc("docker.io/library/nginx:latest", func(s *dao.ServiceSpec) {
		s.Container.Privileged = true
		s.Container.HostNetwork = true
	})
	warnings, err := Admit(s,
		DisallowPrivileged(),
		DisallowLatestTag().WithMode(Audit),
		DisallowHostNamespaces(),
		AdmissionRule{Name: "no-op"}, // no Check: skipped
		AdmissionRule{Name: "named-by-itself", Check: func(*dao.ServiceSpec) []Violation {
			return []Violation{{Rule: "custom", Field: "name", Reason: "bad"}}
		}},
	)
	var ae *AdmissionError
	if !errors.As(err, &ae) || !errors.Is(err, ErrNotAdmitted) {
		t.Fatalf("Admit: got %v, want an *AdmissionError", err)
	}
	want := []Violation{
		{"disallow-privileged", "container.privileged", "privileged containers are not allowed"},
		{"disallow-host-namespaces", "container.hostNetwork", "sharing the host's network namespace is not allowed"},
		{"custom", "name", "bad"},
	}
	if d := cmp.Diff(want, ae.Violations); d != "" {
		t.Errorf("violations (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]Violation{{"disallow-latest-tag", "container.image", "tag latest is not allowed: pin a version or a digest"}}, warnings); d != "" {
		t.Errorf("warnings (-want +got):\n%s", d)
	}
	wantText := `policy: service "web" not admitted: disallow-privileged: container.privileged: privileged containers are not allowed; ` +
		`disallow-host-namespaces: container.hostNetwork: sharing the host's network namespace is not allowed; custom: name: bad`
	if got := err.Error(); got != wantText {
		t.Errorf("error text:\ngot  %s\nwant %s", got, wantText)
	}

	// Audit only: admitted with warnings.
	warnings, err = Admit(s, DisallowPrivileged().WithMode(Audit))
	if err != nil || len(warnings) != 1 {
		t.Errorf("audit: got %v, %v; want one warning and no error", warnings, err)
	}
	// Nothing violated.
	warnings, err = Admit(svc("registry.example.com/web:1.0"), DisallowPrivileged(), DisallowLatestTag())
	if err != nil || warnings != nil {
		t.Errorf("clean spec: got %v, %v", warnings, err)
	}
	if Enforce.String() != "enforce" || Audit.String() != "audit" || AdmissionMode(7).String() != "AdmissionMode(7)" {
		t.Error("AdmissionMode.String")
	}
}

// check runs one rule and returns its violations as "field: reason" lines.
func check(r AdmissionRule, s *dao.ServiceSpec) []string {
	var out []string
	for _, v := range r.Check(s) {
		out = append(out, v.Field+": "+v.Reason)
	}
	return out
}

func TestAllowedRegistries(t *testing.T) {
	t.Parallel()
	rule, err := AllowedRegistries("registry.example.com", "ghcr.io/acme", "localhost:5000", "docker.io/library")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		image string
		ok    bool
	}{
		{"registry.example.com/web:1.0", true},
		{"registry.example.com/team/web@sha256:" + strings.Repeat("a", 64), true},
		{"REGISTRY.example.com/web:1", true}, // host names are case-insensitive
		{"registry.example.com.evil.io/web:1.0", false},
		{"evil.io/registry.example.com/web:1.0", false},
		{"registry.example.com:5000/web:1.0", false}, // another port is another registry
		{"ghcr.io/acme/web:1", true},
		{"ghcr.io/acme/team/web:1", true},
		{"ghcr.io/acme-evil/web:1", false},
		{"ghcr.io/acmeweb:1", false},
		{"ghcr.io/other/web:1", false},
		{"localhost:5000/web", true},
		{"localhost/web", false},
		{"busybox:1.36", true}, // docker.io/library/busybox
		{"library/busybox", true},
		{"someone/busybox", false}, // docker.io/someone/busybox
		{"docker.io/libraryx/busybox", false},
	}
	for _, tt := range tests {
		got := check(rule, svc(tt.image))
		if (len(got) == 0) != tt.ok {
			t.Errorf("%s: got %v, want allowed %v", tt.image, got, tt.ok)
		}
	}
	got := check(rule, svc("evil.io/web:1"))
	want := []string{"container.image: image evil.io/web is not from an allowed registry (registry.example.com, ghcr.io/acme, localhost:5000, docker.io/library)"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("reason (-want +got):\n%s", d)
	}
	if got := check(rule, svc("Not A Reference")); len(got) != 1 || !strings.Contains(got[0], "is not an image reference") {
		t.Errorf("malformed image: %v", got)
	}

	all, _ := AllowedRegistries("docker.io")
	if got := check(all, svc("someone/busybox")); got != nil {
		t.Errorf("docker.io should allow all of Docker Hub: %v", got)
	}
	none, _ := AllowedRegistries()
	if got := check(none, svc("registry.example.com/web:1")); len(got) != 1 {
		t.Errorf("no registries should refuse everything: %v", got)
	}
	for _, bad := range []string{"", "acme", "acme/web", "registry.example.com/UPPER", "https://registry.example.com"} {
		if _, err := AllowedRegistries(bad); !errors.Is(err, ErrInvalidPolicy) {
			t.Errorf("AllowedRegistries(%q): got %v, want ErrInvalidPolicy", bad, err)
		}
	}
}

func TestImageRules(t *testing.T) {
	t.Parallel()
	digest := "@sha256:" + strings.Repeat("b", 64)
	tests := []struct {
		image           string
		latest, pinning []string
	}{
		{"registry.example.com/web:1.0", nil, []string{"container.image: image must be pinned by digest: name@sha256:..."}},
		{"registry.example.com/web:latest", []string{"container.image: tag latest is not allowed: pin a version or a digest"},
			[]string{"container.image: image must be pinned by digest: name@sha256:..."}},
		{"registry.example.com/web", []string{"container.image: an untagged image means latest: pin a version or a digest"},
			[]string{"container.image: image must be pinned by digest: name@sha256:..."}},
		{"registry.example.com/web" + digest, nil, nil},
		{"registry.example.com/web:1.0" + digest, nil, nil},
		{"registry.example.com/web:latest" + digest, []string{"container.image: tag latest is not allowed: pin a version or a digest"}, nil},
		{"localhost:5000/web", []string{"container.image: an untagged image means latest: pin a version or a digest"},
			[]string{"container.image: image must be pinned by digest: name@sha256:..."}},
	}
	for _, tt := range tests {
		if d := cmp.Diff(tt.latest, check(DisallowLatestTag(), svc(tt.image))); d != "" {
			t.Errorf("disallow-latest-tag %s (-want +got):\n%s", tt.image, d)
		}
		if d := cmp.Diff(tt.pinning, check(RequireDigest(), svc(tt.image))); d != "" {
			t.Errorf("require-image-digest %s (-want +got):\n%s", tt.image, d)
		}
	}
	for _, r := range []AdmissionRule{DisallowLatestTag(), RequireDigest()} {
		if got := check(r, svc("Not A Reference")); len(got) != 1 || !strings.Contains(got[0], "not an image reference") {
			t.Errorf("%s on a malformed image: %v", r.Name, got)
		}
	}
}

func TestContainerRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rule AdmissionRule
		edit func(*dao.ServiceSpec)
		want []string
	}{
		{"limits set", RequireResourceLimits(), func(s *dao.ServiceSpec) {
			s.Container.Resources = dao.Resources{MilliCPU: 100, Memory: 64 * dao.MiB}
		}, nil},
		{"no limits", RequireResourceLimits(), nil, []string{
			"container.resources.milliCPU: a cpu limit is required", "container.resources.memory: a memory limit is required"}},
		{"memory only", RequireResourceLimits(), func(s *dao.ServiceSpec) { s.Container.Resources.Memory = dao.GiB },
			[]string{"container.resources.milliCPU: a cpu limit is required"}},
		{"not privileged", DisallowPrivileged(), nil, nil},
		{"privileged", DisallowPrivileged(), func(s *dao.ServiceSpec) { s.Container.Privileged = true },
			[]string{"container.privileged: privileged containers are not allowed"}},
		{"no host namespaces", DisallowHostNamespaces(), nil, nil},
		{"all host namespaces", DisallowHostNamespaces(), func(s *dao.ServiceSpec) {
			s.Container.HostNetwork, s.Container.HostPID, s.Container.HostIPC = true, true, true
		}, []string{
			"container.hostNetwork: sharing the host's network namespace is not allowed",
			"container.hostPID: sharing the host's PID namespace is not allowed",
			"container.hostIPC: sharing the host's IPC namespace is not allowed"}},
		{"read-only", RequireReadOnlyRootfs(), func(s *dao.ServiceSpec) { s.Container.ReadOnlyRootfs = true }, nil},
		{"writable", RequireReadOnlyRootfs(), nil, []string{"container.readOnlyRootfs: the root filesystem must be read-only"}},
		{"allowed caps", AllowedCapabilities("NET_BIND_SERVICE", "cap_chown"), func(s *dao.ServiceSpec) {
			s.Container.CapAdd = []string{"CAP_NET_BIND_SERVICE", "chown"}
			s.Container.CapDrop = []string{"ALL"}
		}, nil},
		{"caps not allowed", AllowedCapabilities("NET_BIND_SERVICE", "CHOWN"), func(s *dao.ServiceSpec) {
			s.Container.CapAdd = []string{"chown", "SYS_ADMIN", "ALL"}
		}, []string{
			"container.capAdd[1]: capability SYS_ADMIN is not allowed (allowed: CHOWN, NET_BIND_SERVICE)",
			"container.capAdd[2]: capability ALL is not allowed (allowed: CHOWN, NET_BIND_SERVICE)"}},
		{"no caps allowed", AllowedCapabilities(), func(s *dao.ServiceSpec) { s.Container.CapAdd = []string{"KILL"} },
			[]string{"container.capAdd[0]: capability KILL is not allowed (allowed: none)"}},
		{"ALL allows all", AllowedCapabilities("all"), func(s *dao.ServiceSpec) { s.Container.CapAdd = []string{"SYS_ADMIN"} }, nil},
		{"replicas at max", MaxReplicas(2), nil, nil},
		{"replicas above max", MaxReplicas(1), nil, []string{"replicas: 2 replicas exceed the maximum of 1"}},
		{"global not limited", MaxReplicas(0), func(s *dao.ServiceSpec) { s.Mode, s.Replicas = dao.ModeGlobal, 0 }, nil},
		{"valid placement", ValidPlacement(), func(s *dao.ServiceSpec) {
			s.Placement.Constraints = []string{"node.labels.zone in (a, b)"}
			s.Placement.Spread = []string{"node.labels.zone"}
		}, nil},
		{"invalid placement", ValidPlacement(), func(s *dao.ServiceSpec) {
			s.Placement.Constraints = []string{"node.labels.zone in (a, b)", "node.labels.zone = a"}
			s.Placement.Spread = []string{"zone"}
		}, []string{
			`placement.constraints[1]: "node.labels.zone = a": column 18: unknown operator "=": want ==, !=, in or exists (did you mean ==?)`,
			`placement.spread[0]: "zone": column 1: want a spread attribute node.labels.<key>`}},
	}
	for _, tt := range tests {
		s := svc("registry.example.com/web:1")
		if tt.edit != nil {
			tt.edit(s)
		}
		if d := cmp.Diff(tt.want, check(tt.rule, s)); d != "" {
			t.Errorf("%s (%s) (-want +got):\n%s", tt.name, tt.rule.Name, d)
		}
	}
}

func TestBaseline(t *testing.T) {
	t.Parallel()
	s := svc("registry.example.com/web:1", func(s *dao.ServiceSpec) {
		s.Container.CapAdd = []string{"NET_BIND_SERVICE", "NET_ADMIN"}
		s.Container.HostPID = true
	})
	_, err := Admit(s, mustBaseline(t)...)
	var ae *AdmissionError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v", err)
	}
	var got []string
	for _, v := range ae.Violations {
		got = append(got, v.Rule+" "+v.Field)
	}
	if d := cmp.Diff([]string{"disallow-host-namespaces container.hostPID", "allowed-capabilities container.capAdd[1]"}, got); d != "" {
		t.Errorf("baseline (-want +got):\n%s", d)
	}
}
