package policy

import (
	"time"

	"github.com/opendao/dao"
)

// NodeReady returns the filter "node-ready": the node's status is ready and its
// availability active (or unset). It refuses with ErrNodeNotReady, ErrNodePaused or
// ErrNodeDraining.
func NodeReady() Filter { return Filter{Name: "node-ready", Func: nodeReady} }

func nodeReady(_ *dao.Task, n *NodeInfo) error {
	node := n.node
	if node.Status.State != dao.NodeReady {
		return ErrNodeNotReady
	}
	switch node.Availability {
	case "", dao.Active:
		return nil
	case dao.Drain:
		return ErrNodeDraining
	}
	// Pause, and any availability this version does not know, take no new tasks.
	return ErrNodePaused
}

// ResourcesFit returns the filter "resources-fit": the task's CPU, memory and pids limits
// fit in what the node's tasks have not been allocated, and no task on the node publishes
// one of its host ports. A resource the task does not limit (zero) needs nothing; a
// resource the node does not report (zero in Allocatable) is not limited. It refuses with
// ErrInsufficientCPU, ErrInsufficientMemory, ErrInsufficientPids or ErrHostPortInUse.
func ResourcesFit() Filter { return Filter{Name: "resources-fit", Func: resourcesFit} }

func resourcesFit(t *dao.Task, n *NodeInfo) error {
	req := &t.Spec.Resources
	a := &n.node.Allocatable
	used := &n.allocated
	if req.MilliCPU > 0 && a.MilliCPU > 0 && req.MilliCPU > a.MilliCPU-used.MilliCPU {
		return ErrInsufficientCPU
	}
	if req.Memory > 0 && a.Memory > 0 && req.Memory > a.Memory-used.Memory {
		return ErrInsufficientMemory
	}
	if req.Pids > 0 && a.Pids > 0 && req.Pids > a.Pids-used.Pids {
		return ErrInsufficientPids
	}
	if len(n.ports) > 0 {
		for i := range t.Spec.Ports {
			pm := &t.Spec.Ports[i]
			if pm.HostPort != 0 && n.ports[portKey(pm.HostPort, pm.Protocol)] > 0 {
				return ErrHostPortInUse
			}
		}
	}
	return nil
}

// Platforms returns the filter "platforms": the node's platform is one of ps. A platform
// field left empty in ps matches anything; architectures compare by their OCI names, so
// "x86_64" is "amd64" and "aarch64" is "arm64". With no ps, every node passes. It refuses
// with ErrPlatform.
func Platforms(ps ...dao.Platform) Filter {
	want := make([]dao.Platform, len(ps))
	for i, p := range ps {
		p.Architecture = normalizeArch(p.Architecture)
		want[i] = p
	}
	return Filter{Name: "platforms", Func: func(_ *dao.Task, n *NodeInfo) error {
		if len(want) == 0 {
			return nil
		}
		have := &n.node.Platform
		arch := normalizeArch(have.Architecture)
		for i := range want {
			w := &want[i]
			if (w.OS == "" || w.OS == have.OS) &&
				(w.Architecture == "" || w.Architecture == arch) &&
				(w.Variant == "" || w.Variant == have.Variant) {
				return nil
			}
		}
		return ErrPlatform
	}}
}

// MaxReplicasPerNode returns the filter "max-replicas-per-node": the node runs fewer than
// limit tasks of the task's service. Tasks without a service, and a limit of 0 or less,
// are not limited. It refuses with ErrMaxReplicasPerNode.
func MaxReplicasPerNode(limit int) Filter {
	return Filter{Name: "max-replicas-per-node", Func: func(t *dao.Task, n *NodeInfo) error {
		if limit <= 0 || t.ServiceID == "" {
			return nil
		}
		if n.ServiceTasks(t.ServiceID) >= limit {
			return ErrMaxReplicasPerNode
		}
		return nil
	}}
}

// AvoidRecentFailures returns the filter "avoid-recent-failures": the task's service failed
// on the node fewer than limit times within window before the ClusterInfo's Now (every
// recorded failure counts while Now is unset). A node remembers the latest 8 failures of
// a service, so a limit above 8 never refuses. It refuses with ErrRecentFailures.
//
// As a filter it can leave a service with no node at all; FewestRecentFailures, a scorer,
// only prefers other nodes, and is what DefaultPlacer uses.
func AvoidRecentFailures(limit int, window time.Duration) Filter {
	return Filter{Name: "avoid-recent-failures", Func: func(t *dao.Task, n *NodeInfo) error {
		if limit <= 0 {
			return nil
		}
		if n.RecentFailures(t.ServiceID, n.cluster.now.Add(-window)) >= limit {
			return ErrRecentFailures
		}
		return nil
	}}
}
