package edge

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
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

	r := spec.Resources
	if r.Memory > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(r.Memory)), oci.WithMemorySwap(r.Memory))
	}
	if r.MilliCPU > 0 {
		opts = append(opts, oci.WithCPUCFS(r.MilliCPU*cfsPeriod/1000, cfsPeriod))
	}
	if r.Pids > 0 {
		opts = append(opts, oci.WithPidsLimit(r.Pids))
	}
	if mounts := ociMounts(spec.Mounts); len(mounts) > 0 {
		opts = append(opts, oci.WithMounts(mounts))
	}
	if spec.ReadOnlyRootfs {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	if spec.Privileged {
		opts = append(opts, oci.WithPrivileged, oci.WithAllDevicesAllowed, oci.WithHostDevices)
	} else {
		opts = append(opts, oci.WithNoNewPrivileges)
		if drop := capNames(spec.CapDrop); len(drop) > 0 {
			if len(drop) == 1 && drop[0] == "CAP_ALL" {
				opts = append(opts, oci.WithCapabilities(nil))
			} else {
				opts = append(opts, oci.WithDroppedCapabilities(drop))
			}
		}
		if add := capNames(spec.CapAdd); len(add) > 0 {
			opts = append(opts, oci.WithAddedCapabilities(add))
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

// capNames normalises capability names to the CAP_ form the OCI spec uses.
func capNames(caps []string) []string {
	out := make([]string, 0, len(caps))
	for _, c := range caps {
		c = strings.ToUpper(c)
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		out = append(out, c)
	}
	return out
}

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
