package edge

import (
	"context"
	"time"

	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/containerd/containerd/v2/client"
)

// sigkillExit is the exit status containerd reports for a process killed by SIGKILL, as the
// kernel's OOM killer does.
const sigkillExit = 128 + 9

// oomMark is an OOM kill the Runtime knows of.
type oomMark struct {
	at time.Time
	// inferred is set when the kill was read from the cgroup at the exit, because no
	// /tasks/oom event came (see cgroupOOMKilled).
	inferred bool
	// announced is set once an inferred kill has been published as an EventOOM.
	announced bool
}

// announceInferredOOM reports whether the container has an inferred OOM kill not yet
// published, and takes it as published.
func (r *Runtime) announceInferredOOM(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.oom[id]
	if !ok || !m.inferred || m.announced {
		return false
	}
	m.announced = true
	r.oom[id] = m
	return true
}

// markOOM records an OOM kill in memory and, in the background, on the container, so that a
// new Runtime still knows it. A Close meanwhile may cut the label off: a new Runtime then
// reads the kill from the cgroup again, while the container's exited task is there (see
// cgroupOOMKilled).
func (r *Runtime) markOOM(id string, inferred bool) {
	now := time.Now()
	r.mu.Lock()
	r.oom[id] = oomMark{at: now, inferred: inferred}
	r.mu.Unlock()
	r.background(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(r.ctx(ctx), 10*time.Second)
		defer cancel()
		if c, err := r.client.LoadContainer(ctx, id); err == nil {
			_, _ = c.SetLabels(ctx, map[string]string{LabelOOMKilled: now.UTC().Format(time.RFC3339Nano)})
		}
	})
}

// clearOOM forgets an OOM kill before the container starts again.
func (r *Runtime) clearOOM(ctx context.Context, c client.Container) {
	r.mu.Lock()
	_, had := r.oom[c.ID()]
	delete(r.oom, c.ID())
	r.mu.Unlock()
	labels, err := c.Labels(ctx)
	if had || err == nil && labels[LabelOOMKilled] != "" {
		_, _ = c.SetLabels(ctx, map[string]string{LabelOOMKilled: ""})
	}
}

// oomAtExit asks the cgroup of a container whose task just exited whether the kernel
// OOM-killed it.
func (r *Runtime) oomAtExit(id string) bool {
	ctx, cancel := context.WithTimeout(r.ctx(r.bg), 2*time.Second)
	defer cancel()
	c, err := r.load(ctx, id)
	if err != nil {
		return false
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		return false
	}
	return cgroupOOMKilled(ctx, task)
}

// cgroupOOMKilled reports whether the kernel's OOM killer has killed a process in the task's
// cgroup. containerd's shim starts watching for OOM kills only after the task has started,
// so a process that goes over its limit at once is killed before the shim looks, and no
// /tasks/oom event ever comes (on a loaded machine, most of the time). The cgroup's own
// counter (oom_kill in memory.oom_control on cgroup v1, in memory.events on v2) is still
// there after the exit, until the task is deleted.
func cgroupOOMKilled(ctx context.Context, task client.Task) bool {
	v, _, err := cgroupMetrics(ctx, task)
	if err != nil {
		return false
	}
	switch m := v.(type) {
	case *v1.Metrics:
		return m.MemoryOomControl.GetOomKill() > 0
	case *v2.Metrics:
		return m.MemoryEvents.GetOomKill() > 0
	}
	return false
}
