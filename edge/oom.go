package edge

import (
	"context"
	"fmt"
	"time"

	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
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

// clearOOM forgets an OOM kill before the container starts again. The labels are those
// of c as loaded: the label is cleared only when it was there, or the kill known here.
func (r *Runtime) clearOOM(ctx context.Context, c client.Container) {
	r.mu.Lock()
	_, had := r.oom[c.ID()]
	delete(r.oom, c.ID())
	delete(r.noOOM, c.ID())
	r.mu.Unlock()
	info, err := c.Info(ctx, client.WithoutRefreshedMetadata)
	if had || err == nil && info.Labels[LabelOOMKilled] != "" {
		_, _ = c.SetLabels(ctx, map[string]string{LabelOOMKilled: ""})
	}
}

// oomAtExit asks the cgroup of a container whose task just exited at exitedAt whether the
// kernel OOM-killed it. When it did not, status does not ask again for this exit: the
// cgroup's counter was final once the process had exited.
func (r *Runtime) oomAtExit(id string, exitedAt time.Time) bool {
	ctx, cancel := context.WithTimeout(r.ctx(r.bg), 2*time.Second)
	defer cancel()
	oom, err := r.cgroupOOMKilled(ctx, id)
	if err == nil && !oom {
		r.mu.Lock()
		r.noOOM[id] = exitedAt
		r.mu.Unlock()
	}
	return oom
}

// checkedNoOOM reports whether the event loop found no OOM kill at the exit of exitedAt.
func (r *Runtime) checkedNoOOM(id string, exitedAt time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.noOOM[id]
	return ok && !exitedAt.IsZero() && at.Equal(exitedAt)
}

// cgroupOOMKilled reports whether the kernel's OOM killer has killed a process in the cgroup
// of the container's task, in one call to containerd. containerd's shim starts watching for
// OOM kills only after the task has started, so a process that goes over its limit at once
// is killed before the shim looks, and no /tasks/oom event ever comes (on a loaded machine,
// most of the time). The cgroup's own counter (oom_kill in memory.oom_control on cgroup v1,
// in memory.events on v2) is still there after the exit, until the task is deleted.
func (r *Runtime) cgroupOOMKilled(ctx context.Context, id string) (bool, error) {
	resp, err := r.client.TaskService().Metrics(ctx, &tasksapi.MetricsRequest{Filters: []string{"id==" + id}})
	if err != nil {
		return false, native(err)
	}
	if len(resp.Metrics) == 0 || resp.Metrics[0].Data == nil {
		return false, fmt.Errorf("edge: metrics of %s: none: %w", id, errdefs.ErrNotFound)
	}
	v, err := typeurl.UnmarshalAny(resp.Metrics[0].Data)
	if err != nil {
		return false, err
	}
	switch m := v.(type) {
	case *v1.Metrics:
		return m.MemoryOomControl.GetOomKill() > 0, nil
	case *v2.Metrics:
		return m.MemoryEvents.GetOomKill() > 0, nil
	}
	return false, nil
}
