package dao

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/distribution/reference"
)

// LabelPrefix starts the labels Dao puts on what it creates (containers, images, snapshots).
// Labels of user specs must not start with it.
const LabelPrefix = "io.opendao."

// ContainerSpec says what to run in one container. The zero value of every field but Image
// means "as the image says" or "the runtime's default".
type ContainerSpec struct {
	// Image is a reference to the image, such as "registry.example.com/web:1.2" or
	// "busybox@sha256:...". Required.
	Image string `json:"image"`
	// Command replaces the image's entrypoint when set.
	Command []string `json:"command,omitempty"`
	// Args replaces the image's cmd when set; with Command it follows it.
	Args []string `json:"args,omitempty"`
	// Env adds or replaces environment variables of the image, each "KEY=VALUE".
	Env []string `json:"env,omitempty"`
	// WorkingDir replaces the image's working directory; it must be absolute.
	WorkingDir string `json:"workingDir,omitempty"`
	// User replaces the image's user: "uid", "uid:gid", "name" or "name:group".
	User string `json:"user,omitempty"`
	// Hostname is the container's host name; the default is its ID, cut to 63 bytes.
	Hostname string `json:"hostname,omitempty"`

	// Resources are the container's limits, enforced as cgroup limits.
	Resources Resources `json:"resources,omitzero"`
	// Mounts are bind and tmpfs mounts, in order.
	Mounts []Mount `json:"mounts,omitempty"`
	// Ports are the ports the container publishes.
	Ports []PortMapping `json:"ports,omitempty"`
	// HealthCheck, when set, is run inside the running container to tell healthy from not.
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`

	// ReadOnlyRootfs mounts the image's root filesystem read-only.
	ReadOnlyRootfs bool `json:"readOnlyRootfs,omitempty"`
	// Privileged gives the container every capability and every device of the host. Off unless
	// asked: containers otherwise get the default capability set with no-new-privileges.
	Privileged bool `json:"privileged,omitempty"`
	// CapAdd and CapDrop change the default capability set ("NET_ADMIN" or "CAP_NET_ADMIN";
	// "ALL" in CapDrop drops every capability).
	CapAdd  []string `json:"capAdd,omitempty"`
	CapDrop []string `json:"capDrop,omitempty"`
	// HostNetwork, HostPID and HostIPC share the host's namespaces with the container.
	HostNetwork bool `json:"hostNetwork,omitempty"`
	HostPID     bool `json:"hostPID,omitempty"`
	HostIPC     bool `json:"hostIPC,omitempty"`

	// StopSignal is the signal that asks the container to stop; the default is SIGTERM.
	StopSignal string `json:"stopSignal,omitempty"`
	// StopGracePeriod is how long a stop waits after StopSignal before SIGKILL; the default is
	// DefaultStopGracePeriod.
	StopGracePeriod Duration `json:"stopGracePeriod,omitempty"`

	// Labels are copied onto the container. Keys must not start with LabelPrefix.
	Labels map[string]string `json:"labels,omitempty"`
}

// DefaultStopGracePeriod is the wait between the stop signal and SIGKILL when a spec sets none.
const DefaultStopGracePeriod = Duration(10_000_000_000) // 10s

// MountType is the kind of a Mount.
type MountType string

// Mount types.
const (
	MountBind  MountType = "bind"
	MountTmpfs MountType = "tmpfs"
)

// Mount is a bind mount of a host path or a tmpfs at Target in the container.
type Mount struct {
	Type MountType `json:"type"`
	// Source is the absolute host path of a bind mount; empty for tmpfs.
	Source string `json:"source,omitempty"`
	// Target is the absolute path in the container.
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"`
	// SizeBytes caps a tmpfs; zero is the kernel default (half of memory).
	SizeBytes int64 `json:"sizeBytes,omitempty"`
}

// PortMapping publishes a container port on the node.
type PortMapping struct {
	// Name, optional, lets health checks and services refer to the port.
	Name string `json:"name,omitempty"`
	// ContainerPort is the port the process listens on, 1-65535.
	ContainerPort int `json:"containerPort"`
	// HostPort is the node port, 1-65535, or 0 for none (reach the container by its address).
	HostPort int `json:"hostPort,omitempty"`
	// Protocol is "tcp" (the default), "udp" or "sctp".
	Protocol string `json:"protocol,omitempty"`
}

// HealthCheck runs Command in the container every Interval. After Retries consecutive failures
// the container is unhealthy; failures during StartPeriod do not count.
type HealthCheck struct {
	// Command is run with exec in the container; exit code 0 is healthy. Required.
	Command []string `json:"command"`
	// Interval between checks; default 30s.
	Interval Duration `json:"interval,omitempty"`
	// Timeout of one check; default 30s.
	Timeout Duration `json:"timeout,omitempty"`
	// StartPeriod gives the process time to start; default 0.
	StartPeriod Duration `json:"startPeriod,omitempty"`
	// Retries is the number of consecutive failures that make the container unhealthy;
	// default 3.
	Retries int `json:"retries,omitempty"`
}

// Defaults of HealthCheck.
const (
	DefaultHealthInterval = Duration(30_000_000_000)
	DefaultHealthTimeout  = Duration(30_000_000_000)
	DefaultHealthRetries  = 3
)

// WithDefaults returns h with its zero fields set to their defaults.
func (h HealthCheck) WithDefaults() HealthCheck {
	if h.Interval == 0 {
		h.Interval = DefaultHealthInterval
	}
	if h.Timeout == 0 {
		h.Timeout = DefaultHealthTimeout
	}
	if h.Retries == 0 {
		h.Retries = DefaultHealthRetries
	}
	return h
}

// Validate checks the spec and returns a *ValidationError naming every invalid field.
func (s *ContainerSpec) Validate() error {
	var p problems
	s.validate(&p, "")
	return p.err("container spec")
}

func (s *ContainerSpec) validate(p *problems, at string) {
	if s.Image == "" {
		p.add(join(at, "image"), "must not be empty")
	} else if _, err := reference.ParseNormalizedNamed(s.Image); err != nil {
		p.add(join(at, "image"), "%q is not an image reference: %v", s.Image, err)
	}
	for i, e := range s.Env {
		k, _, ok := strings.Cut(e, "=")
		field := fmt.Sprintf("%s[%d]", join(at, "env"), i)
		switch {
		case !ok:
			p.add(field, "%q must have the form KEY=VALUE", e)
		case k == "":
			p.add(field, "%q has an empty name", e)
		case strings.ContainsAny(e, "\x00"):
			p.add(field, "must not contain a NUL byte")
		}
	}
	if s.WorkingDir != "" && !path.IsAbs(s.WorkingDir) {
		p.add(join(at, "workingDir"), "%q must be an absolute path", s.WorkingDir)
	}
	if strings.ContainsAny(s.User, " \t\n\x00") || strings.Count(s.User, ":") > 1 {
		p.add(join(at, "user"), "%q must be uid, uid:gid, name or name:group", s.User)
	}
	if len(s.Hostname) > 63 || strings.ContainsAny(s.Hostname, " \t\n/\x00") {
		p.add(join(at, "hostname"), "%q must be a host name of at most 63 bytes", s.Hostname)
	}
	s.Resources.validate(p, join(at, "resources"), true)
	targets := map[string]int{}
	for i, m := range s.Mounts {
		field := fmt.Sprintf("%s[%d]", join(at, "mounts"), i)
		dup := -1
		if j, ok := targets[path.Clean(m.Target)]; ok && m.Target != "" {
			dup = j
		}
		m.validate(p, field, dup)
		targets[path.Clean(m.Target)] = i
	}
	hostPorts := map[string]int{}
	for i, pm := range s.Ports {
		field := fmt.Sprintf("%s[%d]", join(at, "ports"), i)
		dup := ""
		if pm.HostPort != 0 {
			key := fmt.Sprintf("%d/%s", pm.HostPort, pm.protocol())
			if j, ok := hostPorts[key]; ok {
				dup = fmt.Sprintf("%s is also published by ports[%d]", key, j)
			}
			hostPorts[key] = i
		}
		pm.validate(p, field, dup)
	}
	if s.HealthCheck != nil {
		s.HealthCheck.validate(p, join(at, "healthCheck"))
	}
	for i, c := range s.CapAdd {
		validateCap(p, fmt.Sprintf("%s[%d]", join(at, "capAdd"), i), c, false)
	}
	for i, c := range s.CapDrop {
		validateCap(p, fmt.Sprintf("%s[%d]", join(at, "capDrop"), i), c, true)
	}
	if s.StopSignal != "" && !validSignal(s.StopSignal) {
		p.add(join(at, "stopSignal"), "%q is not a signal name such as SIGTERM or a number 1-64", s.StopSignal)
	}
	if s.StopGracePeriod < 0 {
		p.add(join(at, "stopGracePeriod"), "must be >= 0, got %s", s.StopGracePeriod)
	}
	validateLabels(p, join(at, "labels"), s.Labels)
}

// GracePeriod returns StopGracePeriod, or DefaultStopGracePeriod when it is zero.
func (s *ContainerSpec) GracePeriod() Duration {
	if s.StopGracePeriod == 0 {
		return DefaultStopGracePeriod
	}
	return s.StopGracePeriod
}

// validate checks the mount; dup is the index of an earlier mount with the same target, or -1.
func (m Mount) validate(p *problems, at string, dup int) {
	switch m.Type {
	case MountBind:
		if !path.IsAbs(m.Source) {
			p.add(join(at, "source"), "%q must be an absolute host path", m.Source)
		}
	case MountTmpfs:
		if m.Source != "" {
			p.add(join(at, "source"), "must be empty for a tmpfs mount")
		}
	default:
		p.add(join(at, "type"), "%q must be %q or %q", m.Type, MountBind, MountTmpfs)
	}
	if !path.IsAbs(m.Target) {
		p.add(join(at, "target"), "%q must be an absolute path", m.Target)
	} else if path.Clean(m.Target) == "/" {
		p.add(join(at, "target"), "must not be /")
	} else if dup >= 0 {
		p.add(join(at, "target"), "%q is also the target of mounts[%d]", m.Target, dup)
	}
	if m.SizeBytes < 0 || (m.SizeBytes != 0 && m.Type != MountTmpfs) {
		p.add(join(at, "sizeBytes"), "must be >= 0 and only set for tmpfs")
	}
}

func (pm PortMapping) protocol() string {
	if pm.Protocol == "" {
		return "tcp"
	}
	return pm.Protocol
}

// validate checks the mapping; dup, when set, says which earlier mapping has its host port.
func (pm PortMapping) validate(p *problems, at, dup string) {
	if pm.ContainerPort < 1 || pm.ContainerPort > 65535 {
		p.add(join(at, "containerPort"), "must be 1-65535, got %d", pm.ContainerPort)
	}
	if pm.HostPort < 0 || pm.HostPort > 65535 {
		p.add(join(at, "hostPort"), "must be 0-65535, got %d", pm.HostPort)
	} else if dup != "" {
		p.add(join(at, "hostPort"), "%s", dup)
	}
	switch pm.Protocol {
	case "", "tcp", "udp", "sctp":
	default:
		p.add(join(at, "protocol"), "%q must be tcp, udp or sctp", pm.Protocol)
	}
}

func (h *HealthCheck) validate(p *problems, at string) {
	if len(h.Command) == 0 || h.Command[0] == "" {
		p.add(join(at, "command"), "must not be empty")
	}
	if h.Interval < 0 {
		p.add(join(at, "interval"), "must be >= 0, got %s", h.Interval)
	} else if h.Interval > 0 && h.Interval < Duration(10_000_000) {
		p.add(join(at, "interval"), "must be 0 (default 30s) or >= 10ms, got %s", h.Interval)
	}
	nonNegative(p, at, "timeout", h.Timeout)
	nonNegative(p, at, "startPeriod", h.StartPeriod)
	if h.Retries < 0 {
		p.add(join(at, "retries"), "must be >= 0, got %d", h.Retries)
	}
}

func validateCap(p *problems, at, c string, allowAll bool) {
	name := strings.TrimPrefix(strings.ToUpper(c), "CAP_")
	if name == "ALL" {
		if !allowAll {
			p.add(at, "ALL may only be dropped; to have every capability, set privileged")
		}
		return
	}
	if name == "" || strings.Trim(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") != "" {
		p.add(at, "%q is not a capability name such as NET_ADMIN", c)
	}
}

func validSignal(s string) bool {
	if s != "" && s[0] >= '0' && s[0] <= '9' {
		n, err := strconv.Atoi(s)
		return err == nil && s[0] != '0' && n >= 1 && n <= 64
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	// Names such as TERM, USR1 and RTMIN+3.
	return name != "" && name[0] >= 'A' && name[0] <= 'Z' &&
		strings.Trim(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-") == ""
}

func validateLabels(p *problems, at string, labels map[string]string) {
	for _, k := range sortedKeys(labels) {
		field := fmt.Sprintf("%s[%q]", at, k)
		switch {
		case k == "":
			p.add(field, "label key must not be empty")
		case strings.HasPrefix(k, LabelPrefix):
			p.add(field, "label keys starting with %q are reserved for Dao", LabelPrefix)
		case len(k)+len(labels[k]) > 4096:
			p.add(field, "label must be at most 4096 bytes")
		}
	}
}
