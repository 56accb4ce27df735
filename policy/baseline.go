package policy

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/opendao/dao"
)

// Baseline returns the rules most clusters want from the start, after the controls of
// Kubernetes' baseline Pod Security Standard that map onto dao.ContainerSpec:
//
//   - privileged containers: DisallowPrivileged;
//   - host namespaces: DisallowHostNamespaces;
//   - capabilities beyond the baseline list: AllowedCapabilities(BaselineCapabilities()...);
//   - host path volumes: DisallowHostPaths, allowing none (see AllowHostPaths);
//   - host ports: DisallowHostPorts, allowing none (see AllowHostPorts);
//   - the /proc mount type: DisallowProcMount;
//   - seccomp unconfined: RestrictSeccomp;
//
// and ValidPlacement. The standard's AppArmor, SELinux, sysctl and Windows controls have
// nothing to check in a dao.ContainerSpec, which has no such fields.
//
// Combined with some of these rules again, as in append(rules, policy.DisallowPrivileged()),
// a violation is still reported once (see Admit).
//
// An option given a value it does not accept makes Baseline return an error that names the
// option and wraps ErrInvalidPolicy (so dao.ErrInvalid), and no rules.
func Baseline(opts ...BaselineOption) ([]AdmissionRule, error) {
	var b baseline
	for _, o := range opts {
		if err := o(&b); err != nil {
			return nil, err
		}
	}
	return []AdmissionRule{DisallowPrivileged(), DisallowHostNamespaces(),
		AllowedCapabilities(BaselineCapabilities()...), hostPathRule(cleanPrefixes(b.hostPaths)),
		DisallowHostPorts(b.hostPorts...), DisallowProcMount(), RestrictSeccomp(), ValidPlacement()}, nil
}

// BaselineOption widens what Baseline admits; it returns an error for a value it does not
// accept.
type BaselineOption func(*baseline) error

type baseline struct {
	hostPaths []string
	hostPorts []int
}

// AllowHostPaths has Baseline admit bind mounts of the host paths at or under prefixes,
// as DisallowHostPaths(prefixes...) does; without it, Baseline refuses every bind mount,
// as the Kubernetes standard refuses host path volumes: the default is none. An entry that
// is not an absolute path is refused with an error wrapping ErrInvalidPolicy. It adds to the
// prefixes of earlier AllowHostPaths options.
func AllowHostPaths(prefixes ...string) BaselineOption {
	return func(b *baseline) error {
		for _, p := range prefixes {
			if !path.IsAbs(p) {
				return fmt.Errorf("policy: AllowHostPaths(%s): %w: must be an absolute path", dao.Quote(p), ErrInvalidPolicy)
			}
		}
		b.hostPaths = append(b.hostPaths, prefixes...)
		return nil
	}
}

// AllowHostPorts has Baseline admit containers that publish these host ports, as
// DisallowHostPorts(ports...) does; without it, Baseline refuses every host port, as the
// Kubernetes standard recommends: the default is none. A port outside 1-65535 is refused
// with an error wrapping ErrInvalidPolicy. It adds to the ports of earlier AllowHostPorts
// options.
func AllowHostPorts(ports ...int) BaselineOption {
	return func(b *baseline) error {
		for _, p := range ports {
			if p < 1 || p > 65535 {
				return fmt.Errorf("policy: AllowHostPorts(%d): %w: must be a port from 1 to 65535", p, ErrInvalidPolicy)
			}
		}
		b.hostPorts = append(b.hostPorts, ports...)
		return nil
	}
}

// DisallowHostPaths returns the rule "disallow-host-path": every bind mount's source is
// one of the allowed host paths or under one of them, compared by path components
// (allowing /srv/app allows /srv/app/data, not /srv/apple); with none, every bind mount is
// refused. Paths are cleaned lexically before they are compared, so /srv/app/../../etc is
// /etc and /srv/app/ is /srv/app; symbolic links are on the node and are not followed: an
// allowed directory must not hold links that a container's owner can change. An allowed
// entry that is not an absolute path returns an error wrapping ErrInvalidPolicy.
func DisallowHostPaths(allowed ...string) (AdmissionRule, error) {
	for _, a := range allowed {
		if !path.IsAbs(a) {
			return AdmissionRule{}, fmt.Errorf("%w: allowed host path %s must be an absolute path", ErrInvalidPolicy, dao.Quote(a))
		}
	}
	return hostPathRule(cleanPrefixes(allowed)), nil
}

// cleanPrefixes returns the absolute paths of list, cleaned, sorted and without repeats.
func cleanPrefixes(list []string) []string {
	var out []string
	for _, a := range list {
		if path.IsAbs(a) {
			out = append(out, path.Clean(a))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func hostPathRule(allowed []string) AdmissionRule {
	list := "none"
	if len(allowed) > 0 {
		list = strings.Join(allowed, ", ")
	}
	return AdmissionRule{Name: "disallow-host-path", Check: func(s *dao.ServiceSpec) []Violation {
		var vs []Violation
		for i, m := range s.Container.Mounts {
			if m.Type != dao.MountBind {
				continue
			}
			p := path.Clean(m.Source)
			if path.IsAbs(p) && slices.ContainsFunc(allowed, func(a string) bool { return underPath(p, a) }) {
				continue
			}
			shown := dao.Quote(p)
			if p != m.Source {
				shown += " (" + dao.Quote(m.Source) + ")"
			}
			vs = append(vs, Violation{Field: "container.mounts[" + strconv.Itoa(i) + "].source",
				Reason: fmt.Sprintf("bind mount of host path %s is not allowed (allowed: %s)", shown, list)})
		}
		return vs
	}}
}

// underPath reports whether the clean path p is dir or under it.
func underPath(p, dir string) bool {
	return dir == "/" || p == dir || strings.HasPrefix(p, dir+"/")
}

// DisallowHostPorts returns the rule "disallow-host-ports": the container publishes no
// host port but the allowed ones; with none, no host port at all. A host port lets a
// container take a port of the node's, bypassing the network's policy.
func DisallowHostPorts(allowed ...int) AdmissionRule {
	ports := slices.Clone(allowed)
	slices.Sort(ports)
	ports = slices.Compact(ports)
	list := "none"
	if len(ports) > 0 {
		list = strings.Trim(strings.Join(strings.Fields(fmt.Sprint(ports)), ", "), "[]")
	}
	return AdmissionRule{Name: "disallow-host-ports", Check: func(s *dao.ServiceSpec) []Violation {
		var vs []Violation
		for i, pm := range s.Container.Ports {
			if _, ok := slices.BinarySearch(ports, pm.HostPort); pm.HostPort == 0 || ok {
				continue
			}
			vs = append(vs, Violation{Field: "container.ports[" + strconv.Itoa(i) + "].hostPort",
				Reason: fmt.Sprintf("host port %d is not allowed (allowed: %s)", pm.HostPort, list)})
		}
		return vs
	}}
}

// DisallowProcMount returns the rule "disallow-proc-mount": no mount's target is /proc or
// /sys, or under them (cleaned lexically). The runtime masks the parts of these kernel
// interfaces that reach past the container; a mount there replaces them unmasked (a bind
// of the host's /proc over /proc shows every process of the node), as the Kubernetes
// standard's "unmasked" proc mount type does.
func DisallowProcMount() AdmissionRule {
	return AdmissionRule{Name: "disallow-proc-mount", Check: func(s *dao.ServiceSpec) []Violation {
		var vs []Violation
		for i, m := range s.Container.Mounts {
			t := path.Clean(m.Target)
			for _, dir := range []string{"/proc", "/sys"} {
				if underPath(t, dir) {
					vs = append(vs, Violation{Field: "container.mounts[" + strconv.Itoa(i) + "].target",
						Reason: fmt.Sprintf("a mount at %s is not allowed: it would replace the runtime's masked %s", dao.Quote(t), dir)})
				}
			}
		}
		return vs
	}}
}

// RestrictSeccomp returns the rule "restrict-seccomp": the container keeps the runtime's
// default seccomp profile (dao.SeccompDefault); dao.SeccompUnconfined is refused. (A
// privileged container also runs without seccomp: that is DisallowPrivileged's to refuse.)
func RestrictSeccomp() AdmissionRule {
	return AdmissionRule{Name: "restrict-seccomp", Check: func(s *dao.ServiceSpec) []Violation {
		if s.Container.Seccomp != dao.SeccompDefault {
			return []Violation{{Field: "container.seccomp",
				Reason: fmt.Sprintf("seccomp profile %s is not allowed: keep the runtime's default", dao.Quote(string(s.Container.Seccomp)))}}
		}
		return nil
	}}
}
