package policy

import (
	"time"

	"github.com/opendao/dao"
)

// maxFailures is how many recent failures a NodeInfo remembers per service.
const maxFailures = 8

// NodeInfo is the scheduler's view of one node: the node, what its tasks use, and how many
// tasks of each service it runs. Placement filters and scorers read it; the scheduler keeps
// it up to date in place with AddTask, RemoveTask, RecordFailure and SetNode, which also
// keep the counts of the node's ClusterInfo.
//
// Reading methods do not allocate. A NodeInfo is not safe for concurrent use: the
// scheduler updates it from one goroutine, or guards it (and its ClusterInfo) with a lock.
type NodeInfo struct {
	node      *dao.Node
	cluster   *ClusterInfo
	allocated dao.Resources
	tasks     map[string]placed
	services  map[string]*nodeService
	ports     map[uint32]int
}

// placed is what a NodeInfo remembers of one task: enough to take it off again.
type placed struct {
	service   string
	resources dao.Resources
	ports     []uint32
}

// nodeService is one service on one node.
type nodeService struct {
	tasks    int
	failures [maxFailures]time.Time // a ring of the latest failure times
	next     int
}

// NewNodeInfo returns the view of node (not nil), with no tasks, counted in c. A nil c gives
// the node a ClusterInfo of its own (spreading then sees this node only). The NodeInfo
// keeps node: change it through SetNode only.
func NewNodeInfo(c *ClusterInfo, node *dao.Node) *NodeInfo {
	if c == nil {
		c = NewClusterInfo()
	}
	return &NodeInfo{node: node, cluster: c, tasks: map[string]placed{},
		services: map[string]*nodeService{}, ports: map[uint32]int{}}
}

// Node returns the node.
func (n *NodeInfo) Node() *dao.Node { return n.node }

// Cluster returns the ClusterInfo the node is counted in.
func (n *NodeInfo) Cluster() *ClusterInfo { return n.cluster }

// Allocated returns the sum of the resources of the tasks on the node.
func (n *NodeInfo) Allocated() dao.Resources { return n.allocated }

// Available returns the node's allocatable resources less the allocated ones. A field that
// the node does not report (zero in Allocatable) is not limited: it is reported as
// math.MaxInt64.
func (n *NodeInfo) Available() dao.Resources {
	a := n.node.Allocatable
	return dao.Resources{
		MilliCPU: available(a.MilliCPU, n.allocated.MilliCPU),
		Memory:   available(a.Memory, n.allocated.Memory),
		Pids:     available(a.Pids, n.allocated.Pids),
	}
}

func available(allocatable, allocated int64) int64 {
	if allocatable == 0 {
		return 1<<63 - 1
	}
	return allocatable - allocated
}

// Tasks returns the number of tasks on the node.
func (n *NodeInfo) Tasks() int { return len(n.tasks) }

// HasTask reports whether the task with this ID is on the node.
func (n *NodeInfo) HasTask(id string) bool {
	_, ok := n.tasks[id]
	return ok
}

// ServiceTasks returns the number of tasks of the service on the node.
func (n *NodeInfo) ServiceTasks(serviceID string) int {
	if s := n.services[serviceID]; s != nil {
		return s.tasks
	}
	return 0
}

// HostPortInUse reports whether a task on the node publishes port (with protocol "tcp",
// "udp" or "sctp"; "" is tcp) on the host.
func (n *NodeInfo) HostPortInUse(port int, protocol string) bool {
	return n.ports[portKey(port, protocol)] > 0
}

// RecentFailures returns how many times the service failed on the node at or after since,
// counting at most the latest 8 failures.
func (n *NodeInfo) RecentFailures(serviceID string, since time.Time) int {
	s := n.services[serviceID]
	if s == nil {
		return 0
	}
	count := 0
	for _, at := range s.failures {
		if !at.IsZero() && !at.Before(since) {
			count++
		}
	}
	return count
}

// AddTask counts t on the node: its resources, its host ports and its service. It returns
// false, and changes nothing, when a task with t's ID is already there. t's fields are
// copied; t is not kept.
func (n *NodeInfo) AddTask(t *dao.Task) bool {
	if _, ok := n.tasks[t.ID]; ok {
		return false
	}
	p := placed{service: t.ServiceID, resources: t.Spec.Resources}
	for _, pm := range t.Spec.Ports {
		if pm.HostPort != 0 {
			k := portKey(pm.HostPort, pm.Protocol)
			p.ports = append(p.ports, k)
			n.ports[k]++
		}
	}
	n.tasks[t.ID] = p
	n.allocated = n.allocated.Add(p.resources)
	if p.service != "" {
		s := n.service(p.service)
		n.cluster.moveNode(p.service, s.tasks, s.tasks+1)
		s.tasks++
		n.cluster.countLabels(p.service, n.node, +1)
	}
	return true
}

// RemoveTask takes the task with this ID off the node, and reports whether it was there.
func (n *NodeInfo) RemoveTask(id string) bool {
	p, ok := n.tasks[id]
	if !ok {
		return false
	}
	delete(n.tasks, id)
	n.allocated = n.allocated.Sub(p.resources)
	for _, k := range p.ports {
		if n.ports[k]--; n.ports[k] <= 0 {
			delete(n.ports, k)
		}
	}
	if p.service != "" {
		s := n.services[p.service]
		n.cluster.moveNode(p.service, s.tasks, s.tasks-1)
		s.tasks--
		n.cluster.countLabels(p.service, n.node, -1)
		if s.tasks == 0 && s.failures == ([maxFailures]time.Time{}) {
			delete(n.services, p.service)
		}
	}
	return true
}

// Clear takes every task off the node, as when the node leaves the cluster.
func (n *NodeInfo) Clear() {
	for id := range n.tasks {
		n.RemoveTask(id)
	}
	clear(n.services)
}

// RecordFailure remembers that a task of the service failed on the node at at. The node
// remembers the latest 8 failures of each service.
func (n *NodeInfo) RecordFailure(serviceID string, at time.Time) {
	s := n.service(serviceID)
	s.failures[s.next] = at
	s.next = (s.next + 1) % maxFailures
}

// SetNode replaces the node, as when its labels, resources or status change, and moves
// the counts of its tasks to its new label values.
func (n *NodeInfo) SetNode(node *dao.Node) {
	for id, s := range n.services {
		for range s.tasks {
			n.cluster.countLabels(id, n.node, -1)
			n.cluster.countLabels(id, node, +1)
		}
	}
	n.node = node
}

func (n *NodeInfo) service(id string) *nodeService {
	s := n.services[id]
	if s == nil {
		s = &nodeService{}
		n.services[id] = s
	}
	return s
}

// portKey packs a host port and its protocol into one map key.
func portKey(port int, protocol string) uint32 {
	var p uint32
	switch protocol {
	case "udp":
		p = 1
	case "sctp":
		p = 2
	}
	return uint32(port)&0xffff | p<<16
}

// ClusterInfo holds what placement needs to know beyond one node: how many tasks of each
// service run in the whole cluster, on the busiest node, and per value of each node label,
// so that spreading scorers compare a node with the others without visiting them. The
// NodeInfos of one scheduler share one ClusterInfo, and keep its counts as tasks are added
// and removed; the scheduler also sets the time of each scheduling pass with SetNow.
//
// Like NodeInfo, it is not safe for concurrent use.
type ClusterInfo struct {
	now      time.Time
	services map[string]*clusterService
}

type clusterService struct {
	tasks   int
	perNode histogram // nodes by their number of tasks of the service
	labels  map[string]*labelCounts
}

// labelCounts counts one service's tasks per value of one node label key.
type labelCounts struct {
	tasks  int // on nodes that have the key
	values map[string]int
	hist   histogram // values by their number of tasks
}

// histogram counts things (nodes, label values) by a count that moves by one at a time, and
// keeps the largest count.
type histogram struct {
	n   map[int]int
	max int
}

func (h *histogram) move(from, to int) {
	if h.n == nil {
		h.n = map[int]int{}
	}
	if from > 0 {
		if h.n[from]--; h.n[from] <= 0 {
			delete(h.n, from)
		}
	}
	if to > 0 {
		h.n[to]++
	}
	if to > h.max {
		h.max = to
	} else if from == h.max && h.n[from] == 0 {
		h.max = to
	}
}

// NewClusterInfo returns an empty ClusterInfo.
func NewClusterInfo() *ClusterInfo {
	return &ClusterInfo{services: map[string]*clusterService{}}
}

// SetNow sets the time of the current scheduling pass, which filters and scorers that
// look at recent events compare with.
func (c *ClusterInfo) SetNow(now time.Time) { c.now = now }

// Now returns the time set by SetNow; the zero time until then, which makes every recorded
// failure recent.
func (c *ClusterInfo) Now() time.Time { return c.now }

// ServiceTasks returns the number of tasks of the service in the cluster.
func (c *ClusterInfo) ServiceTasks(serviceID string) int {
	if s := c.services[serviceID]; s != nil {
		return s.tasks
	}
	return 0
}

// MaxTasksPerNode returns the largest number of tasks of the service on one node.
func (c *ClusterInfo) MaxTasksPerNode(serviceID string) int {
	if s := c.services[serviceID]; s != nil {
		return s.perNode.max
	}
	return 0
}

// LabelTasks returns the number of tasks of the service on nodes whose label key has the
// value.
func (c *ClusterInfo) LabelTasks(serviceID, key, value string) int {
	here, _ := c.spread(serviceID, key, value, true)
	return here
}

// UnlabeledTasks returns the number of tasks of the service on nodes without the label key.
func (c *ClusterInfo) UnlabeledTasks(serviceID, key string) int {
	here, _ := c.spread(serviceID, key, "", false)
	return here
}

// spread returns the tasks of the service on nodes with this value of the label key (or
// without the label), and the largest such number over the values of the key, the nodes
// without the label counting as one more value.
func (c *ClusterInfo) spread(serviceID, key, value string, ok bool) (count, most int) {
	s := c.services[serviceID]
	if s == nil {
		return 0, 0
	}
	l := s.labels[key]
	missing := s.tasks
	if l != nil {
		missing -= l.tasks
		most = l.hist.max
		if ok {
			count = l.values[value]
		}
	}
	if !ok {
		count = missing
	}
	return count, max(most, missing)
}

func (c *ClusterInfo) moveNode(serviceID string, from, to int) {
	s := c.services[serviceID]
	if s == nil {
		s = &clusterService{labels: map[string]*labelCounts{}}
		c.services[serviceID] = s
	}
	s.perNode.move(from, to)
	s.tasks += to - from
	if s.tasks == 0 {
		delete(c.services, serviceID)
	}
}

// countLabels adds delta (+1 or -1) to the counts of the service for each label of node.
// It runs after moveNode, which creates the service when delta is +1.
func (c *ClusterInfo) countLabels(serviceID string, node *dao.Node, delta int) {
	s := c.services[serviceID]
	if s == nil || node == nil {
		return
	}
	for k, v := range node.Labels {
		l := s.labels[k]
		if l == nil {
			l = &labelCounts{values: map[string]int{}}
			s.labels[k] = l
		}
		old := l.values[v]
		l.hist.move(old, old+delta)
		l.tasks += delta
		if old+delta <= 0 {
			delete(l.values, v)
		} else {
			l.values[v] = old + delta
		}
		if l.tasks <= 0 {
			delete(s.labels, k)
		}
	}
}
