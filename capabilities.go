package dao

import "strings"

// capabilities are the names of the Linux capabilities, without CAP_, in the kernel's
// order: a capability's index is its number (include/uapi/linux/capability.h, Linux 5.9
// and later).
var capabilities = [...]string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
	"IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
	"SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
	"LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
	"WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
}

// Capabilities returns the names of the Linux capabilities, without the CAP_ prefix, in
// the kernel's order: a name's index is the capability's number, from CHOWN (0) to
// CHECKPOINT_RESTORE (40). ContainerSpec.CapAdd and CapDrop accept these names, and "ALL".
func Capabilities() []string { return append([]string(nil), capabilities[:]...) }

// CapabilityName returns the canonical name of the capability c, as ContainerSpec.CapAdd
// and CapDrop read it, the way docker does: without case, with or without the CAP_ prefix
// ("net_admin", "CAP_NET_ADMIN" and "NET_ADMIN" are "NET_ADMIN"); "ALL" (without a prefix,
// any case) stands for every capability. ok is false for a name the kernel does not
// know.
func CapabilityName(c string) (name string, ok bool) {
	name = strings.ToUpper(c)
	if name == "ALL" {
		return name, true
	}
	name = strings.TrimPrefix(name, "CAP_")
	for _, k := range capabilities {
		if k == name {
			return name, true
		}
	}
	return "", false
}
