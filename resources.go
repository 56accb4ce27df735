package dao

import (
	"fmt"
	"math"
)

// Byte sizes, for readable memory figures: 64 * dao.MiB.
const (
	KiB int64 = 1 << 10
	MiB int64 = 1 << 20
	GiB int64 = 1 << 30
)

// MinMemory is the smallest memory limit a container may have. Smaller limits make runc or the
// kernel fail in ways that are hard to read, so they are refused up front.
const MinMemory = 4 * MiB

// Resources is an amount of compute: a container's limits, or a node's capacity. Zero in a
// field means "not set": no limit for a container; for a node, not reported, which placement
// treats as not limited.
type Resources struct {
	// MilliCPU is CPU time in thousandths of a core: 1500 is one and a half cores. For a
	// container it becomes a CFS quota, at most MaxMilliCPU; for a node it is what it offers.
	MilliCPU int64 `json:"milliCPU,omitempty"`
	// Memory is bytes of memory. For a container it is a hard cgroup limit, from MinMemory
	// to MaxMemory.
	Memory int64 `json:"memory,omitempty"`
	// Pids is the greatest number of processes and threads; for a container at most MaxPids.
	Pids int64 `json:"pids,omitempty"`
}

// IsZero reports whether no field is set.
func (r Resources) IsZero() bool { return r == Resources{} }

// Add returns r + o, field by field. A sum past the range of int64 stops at its end
// instead of wrapping around.
func (r Resources) Add(o Resources) Resources {
	return Resources{MilliCPU: addSat(r.MilliCPU, o.MilliCPU), Memory: addSat(r.Memory, o.Memory), Pids: addSat(r.Pids, o.Pids)}
}

// Sub returns r - o, field by field. A difference past the range of int64 stops at its end
// instead of wrapping around.
func (r Resources) Sub(o Resources) Resources {
	return Resources{MilliCPU: subSat(r.MilliCPU, o.MilliCPU), Memory: subSat(r.Memory, o.Memory), Pids: subSat(r.Pids, o.Pids)}
}

// addSat returns a + b, or the end of int64's range it would pass.
func addSat(a, b int64) int64 {
	s := a + b
	switch {
	case b > 0 && s < a:
		return math.MaxInt64
	case b < 0 && s > a:
		return math.MinInt64
	}
	return s
}

// subSat returns a - b, or the end of int64's range it would pass.
func subSat(a, b int64) int64 {
	s := a - b
	switch {
	case b < 0 && s < a:
		return math.MaxInt64
	case b > 0 && s > a:
		return math.MinInt64
	}
	return s
}

// Fits reports whether r fits within available, field by field.
func (r Resources) Fits(available Resources) bool {
	return r.MilliCPU <= available.MilliCPU && r.Memory <= available.Memory && r.Pids <= available.Pids
}

func (r Resources) validate(p *problems, path string, limits bool) {
	if r.MilliCPU < 0 {
		p.add(join(path, "milliCPU"), "must be >= 0, got %d", r.MilliCPU)
	} else if limits && r.MilliCPU > 0 && r.MilliCPU < 10 {
		p.add(join(path, "milliCPU"), "must be 0 (no limit) or >= 10, got %d", r.MilliCPU)
	} else if limits && r.MilliCPU > MaxMilliCPU {
		p.add(join(path, "milliCPU"), "%d is more than the kernel's limit of %d (a CFS quota of 2^44-1µs per 100ms period)", r.MilliCPU, MaxMilliCPU)
	}
	if r.Memory < 0 {
		p.add(join(path, "memory"), "must be >= 0, got %d", r.Memory)
	} else if limits && r.Memory > 0 && r.Memory < MinMemory {
		p.add(join(path, "memory"), "must be >= 4MiB, got %s", exactBytes(r.Memory))
	} else if limits && r.Memory > MaxMemory {
		p.add(join(path, "memory"), "%d is more than the limit of %s", r.Memory, exactBytes(MaxMemory))
	}
	if r.Pids < 0 {
		p.add(join(path, "pids"), "must be >= 0, got %d", r.Pids)
	} else if limits && r.Pids > MaxPids {
		p.add(join(path, "pids"), "%d is more than the kernel's limit of %d", r.Pids, MaxPids)
	}
}

// FormatBytes writes n in binary units: 512B, 4MiB, 1.5GiB.
func FormatBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	v, i := float64(n), 0
	for math.Abs(math.Round(v*10)/10) >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if r := math.Round(v*10) / 10; r == math.Trunc(r) {
		return fmt.Sprintf("%d%s", int64(r), units[i])
	}
	return fmt.Sprintf("%.1f%s", v, units[i])
}

// exactBytes writes n in the largest binary unit that divides it (4MiB, 1536KiB), or in
// bytes: a limit in an error message must be exact.
func exactBytes(n int64) string {
	for _, u := range []struct {
		size int64
		name string
	}{{GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d%s", n/u.size, u.name)
		}
	}
	if n >= KiB {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%dB", n)
}
