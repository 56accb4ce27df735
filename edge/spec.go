package edge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/opendao/dao"
)

// Labels Dao puts on the containers it creates.
const (
	// LabelManaged marks a container as created by a Runtime ("true").
	LabelManaged = dao.LabelPrefix + "managed"
	// LabelSpecHash is a digest of the ContainerSpec the container was created from.
	LabelSpecHash = dao.LabelPrefix + "spec-hash"
	// LabelStopSignal and LabelStopGrace keep the spec's stop settings for Stop.
	LabelStopSignal = dao.LabelPrefix + "stop-signal"
	LabelStopGrace  = dao.LabelPrefix + "stop-grace"
	// LabelHealthCheck keeps the spec's health check, as JSON.
	LabelHealthCheck = dao.LabelPrefix + "health-check"
	// LabelOOMKilled is set when the kernel killed the container for lack of memory.
	LabelOOMKilled = dao.LabelPrefix + "oom-killed"
)

// cfsPeriod is the CFS period CPU limits are expressed in: 100ms, as docker and kubelet.
const cfsPeriod = 100_000

// SpecHash returns a short digest of spec, to tell whether a container still matches it.
func SpecHash(spec *dao.ContainerSpec) string {
	b, _ := json.Marshal(spec)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// containerLabels are the labels a container created from spec carries: the spec's own, the
// caller's extra ones and Dao's.
func containerLabels(spec *dao.ContainerSpec, extra map[string]string) (map[string]string, error) {
	labels := make(map[string]string, len(spec.Labels)+len(extra)+5)
	for k, v := range spec.Labels {
		labels[k] = v
	}
	for k, v := range extra {
		labels[k] = v
	}
	labels[LabelManaged] = "true"
	labels[LabelSpecHash] = SpecHash(spec)
	labels[LabelStopGrace] = spec.GracePeriod().String()
	if spec.StopSignal != "" {
		labels[LabelStopSignal] = spec.StopSignal
	}
	if spec.HealthCheck != nil {
		b, err := json.Marshal(spec.HealthCheck)
		if err != nil {
			return nil, err
		}
		labels[LabelHealthCheck] = string(b)
	}
	return labels, nil
}

// specOpts turns spec into OCI runtime spec options, on top of the image's configuration.
func specOpts(spec *dao.ContainerSpec, img client.Image, id string) []oci.SpecOpts {
	var opts []oci.SpecOpts
	switch {
	case len(spec.Command) > 0:
		opts = append(opts, oci.WithImageConfig(img),
			oci.WithProcessArgs(append(append([]string{}, spec.Command...), spec.Args...)...))
	case len(spec.Args) > 0:
		opts = append(opts, oci.WithImageConfigArgs(img, spec.Args))
	default:
		opts = append(opts, oci.WithImageConfig(img))
	}
	if len(spec.Env) > 0 {
		opts = append(opts, oci.WithEnv(spec.Env))
	}
	if spec.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(spec.WorkingDir))
	}
	if spec.User != "" {
		opts = append(opts, oci.WithUser(spec.User))
	}
	hostname := spec.Hostname
	if hostname == "" {
		hostname = id
		if len(hostname) > 63 {
			hostname = hostname[:63]
		}
	}
	opts = append(opts, oci.WithHostname(hostname))

	opts = append(opts, resourceOpts(spec.Resources)...)
	if mounts := ociMounts(spec.Mounts); len(mounts) > 0 {
		opts = append(opts, oci.WithMounts(mounts))
	}
	if spec.ReadOnlyRootfs {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	if spec.Privileged {
		// Every capability and device, and no seccomp filter, as docker and the CRI do.
		opts = append(opts, oci.WithPrivileged, oci.WithAllDevicesAllowed, oci.WithHostDevices)
	} else {
		opts = append(opts, oci.WithNoNewPrivileges, withCapabilities(spec.CapAdd, spec.CapDrop))
		// The default profile allows the system calls that the capabilities allow: it
		// must come after them.
		switch spec.Seccomp {
		case dao.SeccompDefault:
			opts = append(opts, seccomp.WithDefaultProfile())
		case dao.SeccompUnconfined:
		default:
			opts = append(opts, failOpt(fmt.Errorf("%w: seccomp: unknown profile %s", dao.ErrInvalid, dao.Quote(string(spec.Seccomp)))))
		}
	}
	if spec.HostNetwork {
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace), oci.WithHostHostsFile, oci.WithHostResolvconf)
	}
	if spec.HostPID {
		opts = append(opts, oci.WithHostNamespace(specs.PIDNamespace))
	}
	if spec.HostIPC {
		opts = append(opts, oci.WithHostNamespace(specs.IPCNamespace))
	}
	return opts
}

func ociMounts(ms []dao.Mount) []specs.Mount {
	var out []specs.Mount
	for _, m := range ms {
		switch m.Type {
		case dao.MountBind:
			o := []string{"rbind", "rprivate"}
			if m.ReadOnly {
				o = append(o, "ro")
			} else {
				o = append(o, "rw")
			}
			out = append(out, specs.Mount{Type: "bind", Source: m.Source, Destination: m.Target, Options: o})
		case dao.MountTmpfs:
			o := []string{"nosuid", "nodev", "noexec", "mode=1777"}
			if m.ReadOnly {
				o = append(o, "ro")
			}
			if m.SizeBytes > 0 {
				o = append(o, fmt.Sprintf("size=%d", m.SizeBytes))
			}
			out = append(out, specs.Mount{Type: "tmpfs", Source: "tmpfs", Destination: m.Target, Options: o})
		}
	}
	return out
}

// resourceOpts sets the cgroup limits of r. A limit past what the kernel honours fails
// the container's creation (dao's validation refuses it first): a conversion never wraps
// around, as a CPU limit of math.MaxInt64 millicores once did, to a negative CFS quota that
// meant no limit at all.
func resourceOpts(r dao.Resources) []oci.SpecOpts {
	var opts []oci.SpecOpts
	if r.Memory > 0 {
		if r.Memory > dao.MaxMemory {
			return []oci.SpecOpts{failOpt(fmt.Errorf("%w: resources.memory %d: more than the limit of %d", dao.ErrInvalid, r.Memory, dao.MaxMemory))}
		}
		// Swap is memory plus swap: equal to memory, the container gets no swap.
		opts = append(opts, oci.WithMemoryLimit(uint64(r.Memory)), oci.WithMemorySwap(r.Memory))
	}
	if r.MilliCPU > 0 {
		quota, err := cpuQuota(r.MilliCPU)
		if err != nil {
			return []oci.SpecOpts{failOpt(err)}
		}
		opts = append(opts, oci.WithCPUCFS(quota, cfsPeriod))
	}
	if r.Pids > 0 {
		if r.Pids > dao.MaxPids {
			return []oci.SpecOpts{failOpt(fmt.Errorf("%w: resources.pids %d: more than the kernel's limit of %d", dao.ErrInvalid, r.Pids, dao.MaxPids))}
		}
		opts = append(opts, oci.WithPidsLimit(r.Pids))
	}
	return opts
}

// cpuQuota returns the CFS quota in microseconds per cfsPeriod of a CPU limit, computed
// without an intermediate product that could overflow, or an error for a limit past
// dao.MaxMilliCPU, where the kernel refuses the quota.
func cpuQuota(milliCPU int64) (int64, error) {
	if milliCPU < 0 || milliCPU > dao.MaxMilliCPU {
		return 0, fmt.Errorf("%w: resources.milliCPU %d: more than the kernel's limit of %d", dao.ErrInvalid, milliCPU, dao.MaxMilliCPU)
	}
	return milliCPU * (cfsPeriod / 1000), nil
}

// failOpt is a spec option that fails with err.
func failOpt(err error) oci.SpecOpts {
	return func(context.Context, oci.Client, *containers.Container, *specs.Spec) error { return err }
}

// withCapabilities changes the runtime's default capability set (the spec's bounding set
// when the option runs) by add and drop, as docker's --cap-add and --cap-drop do: ALL in
// add gives every capability of the node's kernel but those in drop; ALL in drop leaves
// only those in add; otherwise the defaults less drop, plus add. A name that is not a
// capability, or one that the node's kernel does not have, fails the container's creation:
// runc would drop it without a word.
func withCapabilities(add, drop []string) oci.SpecOpts {
	return func(ctx context.Context, cl oci.Client, c *containers.Container, s *specs.Spec) error {
		if len(add) == 0 && len(drop) == 0 {
			return nil
		}
		adds, err := capNames(add)
		if err != nil {
			return err
		}
		drops, err := capNames(drop)
		if err != nil {
			return err
		}
		var caps []string
		switch {
		case slices.Contains(adds, "ALL"):
			for _, k := range kernelCapabilities() {
				if !slices.Contains(drops, k) {
					caps = append(caps, k)
				}
			}
		case slices.Contains(drops, "ALL"):
			caps = adds
		default:
			if s.Process != nil && s.Process.Capabilities != nil {
				for _, k := range s.Process.Capabilities.Bounding {
					if !slices.Contains(drops, k) {
						caps = append(caps, k)
					}
				}
			}
			caps = append(caps, adds...)
		}
		known := kernelCapabilities()
		caps = slices.DeleteFunc(caps, func(k string) bool { return k == "ALL" })
		for _, k := range caps {
			if !slices.Contains(known, k) {
				return fmt.Errorf("%w: capability %s: this node's kernel does not have it (it has %d capabilities, up to %s)",
					dao.ErrInvalid, k, len(known), known[len(known)-1])
			}
		}
		slices.Sort(caps)
		return oci.WithCapabilities(slices.Compact(caps))(ctx, cl, c, s)
	}
}

// capNames returns caps in the CAP_ form of the OCI spec, or an error naming one that is
// not a capability; "ALL" stays "ALL".
func capNames(caps []string) ([]string, error) {
	out := make([]string, 0, len(caps))
	for _, c := range caps {
		name, ok := dao.CapabilityName(c)
		if !ok {
			return nil, fmt.Errorf("%w: %s is not a capability", dao.ErrInvalid, dao.Quote(c))
		}
		if name != "ALL" {
			name = "CAP_" + name
		}
		out = append(out, name)
	}
	return out, nil
}

// kernelCapabilities returns the capabilities of this node's kernel, in the CAP_ form: those
// of dao.Capabilities up to /proc/sys/kernel/cap_last_cap (all of them when it cannot be
// read).
var kernelCapabilities = sync.OnceValue(func() []string {
	all := dao.Capabilities()
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if last, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && last >= 0 && last < len(all) {
			all = all[:last+1]
		}
	}
	for i, k := range all {
		all[i] = "CAP_" + k
	}
	return all
})

// stopSettings reads the stop signal and grace period a container was created with.
func stopSettings(labels map[string]string) (signal string, grace time.Duration) {
	signal = labels[LabelStopSignal]
	if signal == "" {
		signal = "SIGTERM"
	}
	grace = dao.DefaultStopGracePeriod.Std()
	if g, err := time.ParseDuration(labels[LabelStopGrace]); err == nil {
		grace = g
	}
	return signal, grace
}
