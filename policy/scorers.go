package policy

import (
	"time"

	"github.com/opendao/dao"
)

// LeastAllocated returns the scorer "least-allocated" with weight 1: the share of the
// node's CPU and memory left unallocated once the task is placed, from 100 (all free) to
// 0, averaged over the resources the node reports. It spreads load; a node that reports
// neither resource scores 0.
func LeastAllocated() Scorer {
	return Scorer{Name: "least-allocated", Weight: 1, Func: func(t *dao.Task, n *NodeInfo) int64 {
		return allocation(t, n, false)
	}}
}

// BinPack returns the scorer "bin-pack" with weight 1: the share of the node's CPU and
// memory allocated once the task is placed, from 0 to 100 (full), averaged over the
// resources the node reports. It packs tasks onto the fewest nodes, leaving others free
// for large tasks or to be turned off.
func BinPack() Scorer {
	return Scorer{Name: "bin-pack", Weight: 1, Func: func(t *dao.Task, n *NodeInfo) int64 {
		return allocation(t, n, true)
	}}
}

func allocation(t *dao.Task, n *NodeInfo, most bool) int64 {
	a := &n.node.Allocatable
	var sum, dims int64
	if a.MilliCPU > 0 {
		sum += share(n.allocated.MilliCPU+t.Spec.Resources.MilliCPU, a.MilliCPU, most)
		dims++
	}
	if a.Memory > 0 {
		sum += share(n.allocated.Memory+t.Spec.Resources.Memory, a.Memory, most)
		dims++
	}
	if dims == 0 {
		return 0
	}
	return sum / dims
}

// share returns used/total (most) or (total-used)/total as 0-100.
func share(used, total int64, most bool) int64 {
	used = min(max(used, 0), total)
	if most {
		return used * 100 / total
	}
	return (total - used) * 100 / total
}

// SpreadNodes returns the scorer "spread-nodes" with weight 1: nodes with fewer tasks of
// the task's service score higher. The score is 100 * (most - here) / most, where here
// is the number of the service's tasks on the node and most the largest number on any node
// (kept by the ClusterInfo): 100 where the service has no task, 0 on its busiest nodes.
// Tasks without a service score 100 everywhere.
func SpreadNodes() Scorer {
	return Scorer{Name: "spread-nodes", Weight: 1, Func: func(t *dao.Task, n *NodeInfo) int64 {
		if t.ServiceID == "" {
			return 100
		}
		most := n.cluster.MaxTasksPerNode(t.ServiceID)
		if most == 0 {
			return 100
		}
		return int64(100 * (most - n.ServiceTasks(t.ServiceID)) / most)
	}}
}

// SpreadLabel returns the scorer "spread:<key>" with weight 1: nodes whose value of the
// label key has fewer tasks of the task's service score higher, so that the tasks spread
// evenly over zones, racks or whatever the label says. The nodes without the label count
// as one more value. The score is 100 * (most - here) / most, where here is the number of
// the service's tasks on nodes with the node's value and most the largest number for any
// value (kept by the ClusterInfo).
//
// Like Docker Swarm's spread preference, it balances over the values that have nodes: a
// zone with no ready node does not hold the others back.
func SpreadLabel(key string) Scorer {
	return Scorer{Name: "spread:" + key, Weight: 1, spreadKey: key, Func: func(t *dao.Task, n *NodeInfo) int64 {
		if t.ServiceID == "" {
			return 100
		}
		v, ok := n.node.Labels[key]
		here, most := n.cluster.spread(t.ServiceID, key, v, ok)
		if most == 0 {
			return 100
		}
		return int64(100 * (most - here) / most)
	}}
}

// FewestRecentFailures returns the scorer "recent-failures" with weight 1: 100 / (1 + f),
// where f is the number of failures of the task's service on the node within window
// before the ClusterInfo's Now. A node where the service keeps failing (a bad disk, a
// missing device) is tried last, but still tried when it is the only one.
func FewestRecentFailures(window time.Duration) Scorer {
	return Scorer{Name: "recent-failures", Weight: 1, Func: func(t *dao.Task, n *NodeInfo) int64 {
		if len(n.services) == 0 {
			return 100
		}
		return int64(100 / (1 + n.RecentFailures(t.ServiceID, n.cluster.now.Add(-window))))
	}}
}
