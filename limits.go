package dao

import "time"

// Limits that Validate enforces. Each keeps a spec within what the kernel, containerd and
// the control plane can honour: a value past one of them is refused with the field, the
// value and the limit, instead of overflowing, being cut silently or taking a node or the
// orchestrator down.
const (
	// MaxReplicas is the most replicas a replicated service may have: a million, the scale
	// the orchestrator is measured at (one million tasks through the whole control plane;
	// each task costs the orchestrator about 2 KB of memory). An operator sets a lower
	// limit with the admission rule policy.MaxReplicas.
	MaxReplicas = 1_000_000

	// MaxMilliCPU is the greatest CPU limit of a container, 175,921,860,444 millicores: the
	// kernel refuses a CFS quota above 2^44-1 microseconds per period, and Dao's period is
	// 100ms.
	MaxMilliCPU int64 = ((1 << 44) - 1) / 100
	// MaxMemory is the greatest memory limit of a container and the greatest tmpfs size:
	// 1 PiB, more than any machine has, and small enough that the scheduler's sums of
	// limits cannot overflow.
	MaxMemory int64 = 1 << 50
	// MaxPids is the greatest pids limit of a container: the kernel's PID_MAX_LIMIT
	// (4,194,304); its pids controller refuses more.
	MaxPids int64 = 1 << 22

	// MaxArgBytes is the longest one argument or environment entry ("KEY=VALUE") may be:
	// the kernel's MAX_ARG_STRLEN (128 KiB) less its terminating NUL; exec refuses longer
	// ones with E2BIG.
	MaxArgBytes = 128<<10 - 1
	// MaxExecBytes is the most bytes Command, Args and Env may take together (each entry
	// counted with its NUL). The kernel allows a quarter of the stack limit, 2 MiB by
	// default, for these and the image's own environment; 1 MiB leaves room for the latter.
	MaxExecBytes = 1 << 20
	// MaxPathBytes is the longest path (working directory, mount source and target): the
	// kernel's PATH_MAX less its terminating NUL.
	MaxPathBytes = 4095
	// MaxItems is the most entries of any other list or map of a spec: mounts, ports,
	// capabilities, labels, placement constraints, spread attributes and platforms.
	MaxItems = 1024
	// MaxLabelBytes is the most bytes of one label, key and value together: containerd
	// refuses longer labels.
	MaxLabelBytes = 4096
	// MaxNodeIDBytes is the longest node ID: that of a DNS name.
	MaxNodeIDBytes = 253
	// MaxStringBytes is the longest any other free-form string of a spec may be: a user, a
	// port name, a placement constraint or spread attribute, a health check's argument.
	MaxStringBytes = 4096

	// MaxDuration is the longest duration of a spec (delays, windows, periods, timeouts,
	// grace periods): a year. Longer ones mean "never" and are better said with the
	// field's own way of saying it; bounding them keeps the sums of the control loops from
	// overflowing.
	MaxDuration = Duration(365 * 24 * time.Hour)
	// MaxRestartMultiplier is the greatest RestartPolicy.Multiplier.
	MaxRestartMultiplier = 100.0
)
