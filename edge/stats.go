package edge

import (
	"context"
	"fmt"
	"time"

	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
)

// Stats is a sample of a running container's resource use, from its cgroup.
type Stats struct {
	// CPUUsage is the CPU time the container used since it started.
	CPUUsage time.Duration
	// MemoryUsage is the memory the container uses, page cache included, in bytes;
	// MemoryWorkingSet leaves out inactive file pages, as kubelet does.
	MemoryUsage      uint64
	MemoryWorkingSet uint64
	// MemoryLimit is its memory limit in bytes (a very large number when unlimited).
	MemoryLimit uint64
	// Pids is the number of processes and threads.
	Pids uint64
	// Time is when the sample was taken.
	Time time.Time
}

// Stats samples the container's resource use. It needs a running container.
func (r *Runtime) Stats(ctx context.Context, id string) (Stats, error) {
	ctx = r.ctx(ctx)
	c, err := r.load(ctx, id)
	if err != nil {
		return Stats{}, err
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		return Stats{}, wrap(err, "edge: stats of %s", id)
	}
	v, at, err := cgroupMetrics(ctx, task)
	if err != nil {
		return Stats{}, wrap(err, "edge: stats of %s", id)
	}
	s := Stats{Time: at}
	switch m := v.(type) {
	case *v1.Metrics:
		if m.CPU != nil && m.CPU.Usage != nil {
			s.CPUUsage = time.Duration(m.CPU.Usage.Total)
		}
		if m.Memory != nil && m.Memory.Usage != nil {
			s.MemoryUsage = m.Memory.Usage.Usage
			s.MemoryLimit = m.Memory.Usage.Limit
			s.MemoryWorkingSet = s.MemoryUsage - min(s.MemoryUsage, m.Memory.TotalInactiveFile)
		}
		if m.Pids != nil {
			s.Pids = m.Pids.Current
		}
	case *v2.Metrics:
		if m.CPU != nil {
			s.CPUUsage = time.Duration(m.CPU.UsageUsec) * time.Microsecond
		}
		if m.Memory != nil {
			s.MemoryUsage = m.Memory.Usage
			s.MemoryLimit = m.Memory.UsageLimit
			s.MemoryWorkingSet = s.MemoryUsage - min(s.MemoryUsage, m.Memory.InactiveFile)
		}
		if m.Pids != nil {
			s.Pids = m.Pids.Current
		}
	default:
		return Stats{}, fmt.Errorf("edge: stats of %s: unknown metrics type %T: %w", id, v, errdefs.ErrNotImplemented)
	}
	return s, nil
}

// cgroupMetrics returns the task's cgroup statistics, a *v1.Metrics or *v2.Metrics by the
// host's cgroup version, and when they were read.
func cgroupMetrics(ctx context.Context, task client.Task) (any, time.Time, error) {
	m, err := task.Metrics(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	v, err := typeurl.UnmarshalAny(m.Data)
	if err != nil {
		return nil, time.Time{}, err
	}
	return v, m.Timestamp.AsTime(), nil
}
