package dao

import (
	"errors"
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
	// Privileged gives the container every capability and every device of the host, and no
	// seccomp filter. Off unless asked: containers otherwise get the default capability set
	// with no-new-privileges, and the Seccomp profile.
	Privileged bool `json:"privileged,omitempty"`
	// CapAdd and CapDrop change the default capability set, as docker's --cap-add and
	// --cap-drop do: names of Linux capabilities (see Capabilities) in any case, with or
	// without CAP_ ("NET_ADMIN", "cap_net_admin"). "ALL" in CapAdd gives every capability
	// but those in CapDrop; "ALL" in CapDrop drops every capability but those in CapAdd.
	CapAdd  []string `json:"capAdd,omitempty"`
	CapDrop []string `json:"capDrop,omitempty"`
	// HostNetwork, HostPID and HostIPC share the host's namespaces with the container.
	HostNetwork bool `json:"hostNetwork,omitempty"`
	HostPID     bool `json:"hostPID,omitempty"`
	HostIPC     bool `json:"hostIPC,omitempty"`
	// Seccomp is the container's seccomp profile: SeccompDefault (empty) for the runtime's
	// default, or SeccompUnconfined for none. A privileged container runs unconfined, as
	// with docker and Kubernetes.
	Seccomp SeccompProfile `json:"seccomp,omitempty"`

	// StopSignal is the signal that asks the container to stop; the default is SIGTERM.
	StopSignal string `json:"stopSignal,omitempty"`
	// StopGracePeriod is how long a stop waits after StopSignal before SIGKILL; the default is
	// DefaultStopGracePeriod.
	StopGracePeriod Duration `json:"stopGracePeriod,omitempty"`

	// Labels are copied onto the container. Keys must not start with LabelPrefix.
	Labels map[string]string `json:"labels,omitempty"`
}

// SeccompProfile names the seccomp filter of a container's system calls.
type SeccompProfile string

// Seccomp profiles. The zero value is SeccompDefault.
const (
	// SeccompDefault is the runtime's default profile, that of containerd's CRI and of
	// docker: it allows what programs in containers need and refuses system calls that
	// reach past the container, such as keyctl, kexec_load, and unshare or mount without
	// CAP_SYS_ADMIN, with EPERM.
	SeccompDefault SeccompProfile = ""
	// SeccompUnconfined filters no system call. Admission rules (policy.Baseline) refuse it.
	SeccompUnconfined SeccompProfile = "unconfined"
)

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
		p.add(join(at, "image"), "%s is not an image reference: %s", Quote(s.Image), referenceReason(s.Image, err))
	}
	execBytes := validateArgs(p, join(at, "command"), s.Command)
	execBytes += validateArgs(p, join(at, "args"), s.Args)
	for i, e := range s.Env {
		k, _, ok := strings.Cut(e, "=")
		field := fmt.Sprintf("%s[%d]", join(at, "env"), i)
		switch {
		case !ok:
			p.add(field, "%s must have the form KEY=VALUE", Quote(e))
		case k == "":
			p.add(field, "%s has an empty name", Quote(e))
		case strings.ContainsAny(e, "\x00"):
			p.add(field, "must not contain a NUL byte")
		case len(e) > MaxArgBytes:
			p.add(field, "%s is %d bytes, more than the kernel's limit of %d", Quote(k), len(e), MaxArgBytes)
		}
		execBytes += len(e) + 1
	}
	if execBytes > MaxExecBytes {
		field := "env"
		switch {
		case len(s.Env) > 0:
		case len(s.Args) > 0:
			field = "args"
		default:
			field = "command"
		}
		p.add(join(at, field), "command, args and env take %d bytes together, more than the limit of %d", execBytes, MaxExecBytes)
	}
	if s.WorkingDir != "" {
		validatePath(p, join(at, "workingDir"), s.WorkingDir, "must be an absolute path")
	}
	if len(s.User) > MaxStringBytes || strings.ContainsAny(s.User, " \t\n\x00") || strings.Count(s.User, ":") > 1 {
		p.add(join(at, "user"), "%s must be uid, uid:gid, name or name:group", Quote(s.User))
	}
	if len(s.Hostname) > 63 || strings.ContainsAny(s.Hostname, " \t\n/\x00") {
		p.add(join(at, "hostname"), "%s must be a host name of at most 63 bytes", Quote(s.Hostname))
	}
	s.Resources.validate(p, join(at, "resources"), true)
	tooMany(p, join(at, "mounts"), len(s.Mounts))
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
	tooMany(p, join(at, "ports"), len(s.Ports))
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
		pm.validate(p, field, dup, s.HostNetwork)
	}
	if s.HealthCheck != nil {
		s.HealthCheck.validate(p, join(at, "healthCheck"))
	}
	tooMany(p, join(at, "capAdd"), len(s.CapAdd))
	for i, c := range s.CapAdd {
		validateCap(p, fmt.Sprintf("%s[%d]", join(at, "capAdd"), i), c)
	}
	tooMany(p, join(at, "capDrop"), len(s.CapDrop))
	for i, c := range s.CapDrop {
		validateCap(p, fmt.Sprintf("%s[%d]", join(at, "capDrop"), i), c)
	}
	switch s.Seccomp {
	case SeccompDefault, SeccompUnconfined:
	default:
		p.add(join(at, "seccomp"), "%s must be empty (the runtime's default profile) or %q", Quote(string(s.Seccomp)), SeccompUnconfined)
	}
	if s.StopSignal != "" && !validSignal(s.StopSignal) {
		p.add(join(at, "stopSignal"), "%s is not a signal name such as SIGTERM or a number 1-64", Quote(s.StopSignal))
	}
	validDuration(p, at, "stopGracePeriod", s.StopGracePeriod)
	validateLabels(p, join(at, "labels"), s.Labels, true)
}

// referenceReason returns why ref is not an image reference: the parser's error, which
// quotes ref or its name whole, or for a ref longer than MaxQuoted the parser's sentinel
// error alone.
func referenceReason(ref string, err error) string {
	if len(ref) <= MaxQuoted {
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

// validateArgs checks the arguments of an exec (Command, Args or a health check's Command)
// and returns the bytes they take, their NULs included.
func validateArgs(p *problems, at string, args []string) int {
	n := 0
	for i, a := range args {
		if len(a) > MaxArgBytes {
			p.add(fmt.Sprintf("%s[%d]", at, i), "is %d bytes, more than the kernel's limit of %d", len(a), MaxArgBytes)
		} else if strings.IndexByte(a, 0) >= 0 {
			p.add(fmt.Sprintf("%s[%d]", at, i), "must not contain a NUL byte")
		}
		n += len(a) + 1
	}
	return n
}

// validatePath checks an absolute path of at most MaxPathBytes without a NUL byte; notAbs
// is the reason given for a relative one.
func validatePath(p *problems, at, s, notAbs string) bool {
	switch {
	case len(s) > MaxPathBytes:
		p.add(at, "%s is %d bytes, more than the kernel's limit of %d", Quote(s), len(s), MaxPathBytes)
	case strings.IndexByte(s, 0) >= 0:
		p.add(at, "%s must not contain a NUL byte", Quote(s))
	case !path.IsAbs(s):
		p.add(at, "%s %s", Quote(s), notAbs)
	default:
		return true
	}
	return false
}

// tooMany reports a list or map of more than MaxItems entries.
func tooMany(p *problems, at string, n int) {
	if n > MaxItems {
		p.add(at, "has %d entries, more than the limit of %d", n, MaxItems)
	}
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
		validatePath(p, join(at, "source"), m.Source, "must be an absolute host path")
	case MountTmpfs:
		if m.Source != "" {
			p.add(join(at, "source"), "must be empty for a tmpfs mount")
		}
	default:
		p.add(join(at, "type"), "%s must be %q or %q", Quote(string(m.Type)), MountBind, MountTmpfs)
	}
	if validatePath(p, join(at, "target"), m.Target, "must be an absolute path") {
		switch {
		case path.Clean(m.Target) == "/":
			p.add(join(at, "target"), "must not be /")
		case dup >= 0:
			p.add(join(at, "target"), "%s is also the target of mounts[%d]", Quote(m.Target), dup)
		}
	}
	switch {
	case m.SizeBytes < 0 || (m.SizeBytes != 0 && m.Type != MountTmpfs):
		p.add(join(at, "sizeBytes"), "must be >= 0 and only set for tmpfs")
	case m.SizeBytes > MaxMemory:
		p.add(join(at, "sizeBytes"), "%d is more than the limit of %s", m.SizeBytes, exactBytes(MaxMemory))
	}
}

func (pm PortMapping) protocol() string {
	if pm.Protocol == "" {
		return "tcp"
	}
	return pm.Protocol
}

// validate checks the mapping; dup, when set, says which earlier mapping has its host port.
// With hostNetwork the container's ports are the node's: a host port must then be the
// container port, as it cannot be mapped to another.
func (pm PortMapping) validate(p *problems, at, dup string, hostNetwork bool) {
	if len(pm.Name) > 63 || strings.ContainsAny(pm.Name, " \t\n\x00") {
		p.add(join(at, "name"), "%s must be a name of at most 63 bytes without spaces", Quote(pm.Name))
	}
	if pm.ContainerPort < 1 || pm.ContainerPort > 65535 {
		p.add(join(at, "containerPort"), "must be 1-65535, got %d", pm.ContainerPort)
	}
	switch {
	case pm.HostPort < 0 || pm.HostPort > 65535:
		p.add(join(at, "hostPort"), "must be 0-65535, got %d", pm.HostPort)
	case dup != "":
		p.add(join(at, "hostPort"), "%s", dup)
	case hostNetwork && pm.HostPort != 0 && pm.HostPort != pm.ContainerPort:
		p.add(join(at, "hostPort"), "%d must be 0 or the container port %d: with hostNetwork the container listens on the node's ports", pm.HostPort, pm.ContainerPort)
	}
	switch pm.Protocol {
	case "", "tcp", "udp", "sctp":
	default:
		p.add(join(at, "protocol"), "%s must be tcp, udp or sctp", Quote(pm.Protocol))
	}
}

func (h *HealthCheck) validate(p *problems, at string) {
	if len(h.Command) == 0 || h.Command[0] == "" {
		p.add(join(at, "command"), "must not be empty")
	} else if n := validateArgs(p, join(at, "command"), h.Command); n > MaxExecBytes {
		p.add(join(at, "command"), "takes %d bytes, more than the limit of %d", n, MaxExecBytes)
	}
	switch {
	case h.Interval < 0:
		p.add(join(at, "interval"), "must be >= 0, got %s", h.Interval)
	case h.Interval > 0 && h.Interval < Duration(10_000_000):
		p.add(join(at, "interval"), "must be 0 (default 30s) or >= 10ms, got %s", h.Interval)
	default:
		validDuration(p, at, "interval", h.Interval)
	}
	validDuration(p, at, "timeout", h.Timeout)
	validDuration(p, at, "startPeriod", h.StartPeriod)
	if h.Retries < 0 {
		p.add(join(at, "retries"), "must be >= 0, got %d", h.Retries)
	}
}

func validateCap(p *problems, at, c string) {
	if _, ok := CapabilityName(c); !ok {
		p.add(at, "%s is not a capability name such as NET_ADMIN or CAP_NET_ADMIN (see dao.Capabilities), or ALL", Quote(c))
	}
}

// signalNames are the names of Linux signals without SIG, as the runtime's Stop parses
// them (github.com/moby/sys/signal): the standard ones, and RTMIN+n and RTMAX-n below.
var signalNames = map[string]bool{
	"ABRT": true, "ALRM": true, "BUS": true, "CHLD": true, "CLD": true, "CONT": true, "FPE": true,
	"HUP": true, "ILL": true, "INT": true, "IO": true, "IOT": true, "KILL": true, "PIPE": true,
	"POLL": true, "PROF": true, "PWR": true, "QUIT": true, "SEGV": true, "STKFLT": true,
	"STOP": true, "SYS": true, "TERM": true, "TRAP": true, "TSTP": true, "TTIN": true,
	"TTOU": true, "URG": true, "USR1": true, "USR2": true, "VTALRM": true, "WINCH": true,
	"XCPU": true, "XFSZ": true, "RTMIN": true, "RTMAX": true,
}

func validSignal(s string) bool {
	if s != "" && s[0] >= '0' && s[0] <= '9' {
		n, err := strconv.Atoi(s)
		return err == nil && s[0] != '0' && n >= 1 && n <= 64
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if signalNames[name] {
		return true
	}
	// RTMIN+1 to RTMIN+15 and RTMAX-14 to RTMAX-1: signals 35 to 63.
	for _, rt := range []struct {
		prefix string
		max    int
	}{{"RTMIN+", 15}, {"RTMAX-", 14}} {
		if rest, ok := strings.CutPrefix(name, rt.prefix); ok && rest != "" && rest[0] != '0' {
			n, err := strconv.Atoi(rest)
			return err == nil && n >= 1 && n <= rt.max
		}
	}
	return false
}

// validateLabels checks the labels of a spec or a node; reserved says whether keys with
// LabelPrefix are Dao's (on what Dao creates) and so refused.
func validateLabels(p *problems, at string, labels map[string]string, reserved bool) {
	tooMany(p, at, len(labels))
	for _, k := range sortedKeys(labels) {
		field := at + "[" + Quote(k) + "]"
		switch {
		case k == "":
			p.add(field, "label key must not be empty")
		case reserved && strings.HasPrefix(k, LabelPrefix):
			p.add(field, "label keys starting with %q are reserved for Dao", LabelPrefix)
		case len(k)+len(labels[k]) > MaxLabelBytes:
			p.add(field, "label must be at most %d bytes, key and value together, got %d", MaxLabelBytes, len(k)+len(labels[k]))
		}
	}
}
