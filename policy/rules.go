package policy

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"github.com/opendao/dao"
)

// The built-in admission rules follow the common Kyverno and Gatekeeper policy libraries.
// Each returns a rule in Enforce mode; use WithMode(Audit) to try one out.

// AllowedRegistries returns the rule "allowed-registries": the image comes from one of
// the registries, each a host ("registry.example.com", "localhost:5000", "docker.io") or a
// host and a path prefix ("ghcr.io/acme"). The image reference is parsed and normalized
// first ("busybox" is docker.io/library/busybox), then its domain must equal a host
// (a port must be listed) and its path must equal the prefix or continue it after a "/":
// registry.example.com.evil.io is not registry.example.com, and ghcr.io/acme-evil is not
// ghcr.io/acme. With no registries every image is refused. An entry that is not a registry
// host returns an error wrapping ErrInvalidPolicy.
func AllowedRegistries(registries ...string) (AdmissionRule, error) {
	type allowed struct{ domain, path string }
	var list []allowed
	for _, r := range registries {
		r = strings.TrimSuffix(r, "/")
		host, path, _ := strings.Cut(r, "/")
		if !strings.ContainsAny(host, ".:") && host != "localhost" {
			return AdmissionRule{}, fmt.Errorf("%w: allowed registry %s must start with a registry host such as registry.example.com", ErrInvalidPolicy, dao.Quote(r))
		}
		named, err := reference.ParseNormalizedNamed(r + "/x")
		if err != nil {
			return AdmissionRule{}, fmt.Errorf("%w: allowed registry %s: %v", ErrInvalidPolicy, dao.Quote(r), referenceReason(r, err))
		}
		a := allowed{domain: reference.Domain(named)}
		if path != "" {
			a.path = strings.TrimSuffix(reference.Path(named), "/x")
		}
		list = append(list, a)
	}
	names := strings.Join(registries, ", ")
	return AdmissionRule{Name: "allowed-registries", Check: func(s *dao.ServiceSpec) []Violation {
		named, v := parseImage(s)
		if v != nil {
			return v
		}
		domain, path := reference.Domain(named), reference.Path(named)
		for _, a := range list {
			if strings.EqualFold(domain, a.domain) &&
				(a.path == "" || path == a.path || strings.HasPrefix(path, a.path+"/")) {
				return nil
			}
		}
		return []Violation{{Field: "container.image",
			Reason: fmt.Sprintf("image %s is not from an allowed registry (%s)", named.Name(), names)}}
	}}, nil
}

// DisallowLatestTag returns the rule "disallow-latest-tag": the image has a tag other than
// latest, or a digest. An untagged reference means latest, and latest moves: the same spec
// would run different code on different nodes.
func DisallowLatestTag() AdmissionRule {
	return AdmissionRule{Name: "disallow-latest-tag", Check: func(s *dao.ServiceSpec) []Violation {
		named, v := parseImage(s)
		if v != nil {
			return v
		}
		tagged, isTagged := named.(reference.Tagged)
		_, isDigested := named.(reference.Digested)
		switch {
		case isTagged && tagged.Tag() == "latest":
			return []Violation{{Field: "container.image", Reason: "tag latest is not allowed: pin a version or a digest"}}
		case !isTagged && !isDigested:
			return []Violation{{Field: "container.image", Reason: "an untagged image means latest: pin a version or a digest"}}
		}
		return nil
	}}
}

// RequireDigest returns the rule "require-image-digest": the image reference is pinned by
// digest ("registry.example.com/web@sha256:..."), so that every node runs the same bytes.
func RequireDigest() AdmissionRule {
	return AdmissionRule{Name: "require-image-digest", Check: func(s *dao.ServiceSpec) []Violation {
		named, v := parseImage(s)
		if v != nil {
			return v
		}
		if _, ok := named.(reference.Digested); !ok {
			return []Violation{{Field: "container.image", Reason: "image must be pinned by digest: name@sha256:..."}}
		}
		return nil
	}}
}

// RequireResourceLimits returns the rule "require-resource-limits": the container sets a
// CPU and a memory limit, so that the scheduler can account for it and one container
// cannot starve a node.
func RequireResourceLimits() AdmissionRule {
	return AdmissionRule{Name: "require-resource-limits", Check: func(s *dao.ServiceSpec) []Violation {
		var vs []Violation
		if s.Container.Resources.MilliCPU <= 0 {
			vs = append(vs, Violation{Field: "container.resources.milliCPU", Reason: "a cpu limit is required"})
		}
		if s.Container.Resources.Memory <= 0 {
			vs = append(vs, Violation{Field: "container.resources.memory", Reason: "a memory limit is required"})
		}
		return vs
	}}
}

// DisallowPrivileged returns the rule "disallow-privileged": the container is not
// privileged (a privileged container has every capability and device of the host).
func DisallowPrivileged() AdmissionRule {
	return AdmissionRule{Name: "disallow-privileged", Check: func(s *dao.ServiceSpec) []Violation {
		if s.Container.Privileged {
			return []Violation{{Field: "container.privileged", Reason: "privileged containers are not allowed"}}
		}
		return nil
	}}
}

// DisallowHostNamespaces returns the rule "disallow-host-namespaces": the container shares
// neither the network, the PID nor the IPC namespace of the host.
func DisallowHostNamespaces() AdmissionRule {
	return AdmissionRule{Name: "disallow-host-namespaces", Check: func(s *dao.ServiceSpec) []Violation {
		var vs []Violation
		c := &s.Container
		if c.HostNetwork {
			vs = append(vs, Violation{Field: "container.hostNetwork", Reason: "sharing the host's network namespace is not allowed"})
		}
		if c.HostPID {
			vs = append(vs, Violation{Field: "container.hostPID", Reason: "sharing the host's PID namespace is not allowed"})
		}
		if c.HostIPC {
			vs = append(vs, Violation{Field: "container.hostIPC", Reason: "sharing the host's IPC namespace is not allowed"})
		}
		return vs
	}}
}

// RequireReadOnlyRootfs returns the rule "require-read-only-rootfs": the container's root
// filesystem is read-only (it writes to mounts only).
func RequireReadOnlyRootfs() AdmissionRule {
	return AdmissionRule{Name: "require-read-only-rootfs", Check: func(s *dao.ServiceSpec) []Violation {
		if !s.Container.ReadOnlyRootfs {
			return []Violation{{Field: "container.readOnlyRootfs", Reason: "the root filesystem must be read-only"}}
		}
		return nil
	}}
}

// AllowedCapabilities returns the rule "allowed-capabilities": every capability the
// container adds is one of caps. Names compare without case and without the CAP_ prefix;
// "ALL" in caps allows everything, and "ALL" in CapAdd (every capability) is refused unless
// caps holds it. Dropping capabilities is always allowed.
func AllowedCapabilities(caps ...string) AdmissionRule {
	allowed := make([]string, 0, len(caps))
	for _, c := range caps {
		allowed = append(allowed, capName(c))
	}
	slices.Sort(allowed)
	allowed = slices.Compact(allowed)
	all := slices.Contains(allowed, "ALL")
	list := strings.Join(allowed, ", ")
	if list == "" {
		list = "none"
	}
	return AdmissionRule{Name: "allowed-capabilities", Check: func(s *dao.ServiceSpec) []Violation {
		if all {
			return nil
		}
		var vs []Violation
		for i, c := range s.Container.CapAdd {
			if _, ok := slices.BinarySearch(allowed, capName(c)); !ok {
				vs = append(vs, Violation{Field: "container.capAdd[" + strconv.Itoa(i) + "]",
					Reason: fmt.Sprintf("capability %s is not allowed (allowed: %s)", capName(c), list)})
			}
		}
		return vs
	}}
}

// BaselineCapabilities returns the capabilities that Kubernetes' baseline Pod Security
// Standard lets a container add: the ones runtimes grant by default. Each call returns a new
// slice, which the caller may change.
func BaselineCapabilities() []string { return slices.Clone(baselineCapabilities[:]) }

var baselineCapabilities = [...]string{"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID",
	"KILL", "MKNOD", "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}

// MaxReplicas returns the rule "max-replicas": a replicated service asks for at most limit
// replicas, an operator's own bound below dao.MaxReplicas, which ServiceSpec.Validate
// enforces for everyone. Global services are not limited.
func MaxReplicas(limit int) AdmissionRule {
	return AdmissionRule{Name: "max-replicas", Check: func(s *dao.ServiceSpec) []Violation {
		if s.Mode != dao.ModeGlobal && s.Replicas > limit {
			return []Violation{{Field: "replicas", Reason: fmt.Sprintf("%d replicas exceed the maximum of %d", s.Replicas, limit)}}
		}
		return nil
	}}
}

// ValidPlacement returns the rule "valid-placement": every constraint and spread attribute
// of the service parses (dao.ServiceSpec.Validate cannot check them, as the text form is
// this package's). It turns a typo into a refusal at submission instead of a service that
// can never be placed.
func ValidPlacement() AdmissionRule {
	return AdmissionRule{Name: "valid-placement", Check: func(s *dao.ServiceSpec) []Violation {
		var vs []Violation
		for i, c := range s.Placement.Constraints {
			if _, err := ParseConstraint(c); err != nil {
				vs = append(vs, Violation{Field: "placement.constraints[" + strconv.Itoa(i) + "]",
					Reason: strings.TrimPrefix(err.Error(), "policy: ")})
			}
		}
		for i, a := range s.Placement.Spread {
			if _, err := ParseSpread(a); err != nil {
				vs = append(vs, Violation{Field: "placement.spread[" + strconv.Itoa(i) + "]",
					Reason: strings.TrimPrefix(err.Error(), "policy: ")})
			}
		}
		return vs
	}}
}

// parseImage parses the service's image reference, or returns the violation of a rule that
// needs it.
func parseImage(s *dao.ServiceSpec) (reference.Named, []Violation) {
	named, err := reference.ParseNormalizedNamed(s.Container.Image)
	if err != nil {
		return nil, []Violation{{Field: "container.image",
			Reason: fmt.Sprintf("%s is not an image reference: %s", dao.Quote(s.Container.Image), referenceReason(s.Container.Image, err))}}
	}
	return named, nil
}

// referenceReason returns why ref is not an image reference: the parser's error, which
// quotes ref or its name whole, or for a ref longer than dao.MaxQuoted the parser's
// sentinel error alone.
func referenceReason(ref string, err error) string {
	if len(ref) <= dao.MaxQuoted {
		return err.Error()
	}
	for _, e := range []error{reference.ErrNameTooLong, reference.ErrNameContainsUppercase, reference.ErrNameEmpty,
		reference.ErrTagInvalidFormat, reference.ErrDigestInvalidFormat, reference.ErrNameNotCanonical} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return reference.ErrReferenceInvalidFormat.Error()
}

func capName(c string) string {
	return strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(c)), "CAP_")
}
