package simnode

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/orchestrator"
)

// Cluster is a set of simulated nodes made together, for tests and benchmarks: so many
// nodes, shaped by label and capacity distributions, with the same options, reporting to
// one function.
type Cluster struct {
	nodes []*Node
	byID  map[string]*Node
}

// ClusterOption configures NewCluster.
type ClusterOption func(*clusterOptions) error

type clusterOptions struct {
	shapes      []Shape
	nodeOpts    []Option
	onStatus    func(nodeID string, u orchestrator.TaskUpdate)
	heartbeat   time.Duration
	onHeartbeat func(nodeID string, at time.Time)
	seed        uint64
	seeded      bool
}

// Shape sets part of the description of node i (from 0) of a cluster, which starts as the
// default one (see NewCluster). r is the cluster's random source: with WithClusterSeed,
// the same cluster comes out every time.
type Shape func(i int, r *rand.Rand, n *dao.Node)

// WithShapes applies shapes, in order, to the description of each node. The default is
// none: every node has the default description.
func WithShapes(shapes ...Shape) ClusterOption {
	return func(o *clusterOptions) error {
		for _, s := range shapes {
			if s == nil {
				return invalid("WithShapes", "nil shape")
			}
		}
		o.shapes = append(o.shapes, shapes...)
		return nil
	}
}

// WithNodeOptions gives every node these options, which NewCluster checks as New does.
// The default is none.
func WithNodeOptions(opts ...Option) ClusterOption {
	return func(o *clusterOptions) error {
		o.nodeOpts = append(o.nodeOpts, opts...)
		return nil
	}
}

// WithClusterStatusFunc sets the function every node reports its status changes to, with
// its ID; it replaces a WithStatusFunc given to the nodes. See WithStatusFunc for how it is
// called. The default does nothing.
func WithClusterStatusFunc(f func(nodeID string, u orchestrator.TaskUpdate)) ClusterOption {
	return func(o *clusterOptions) error {
		if f == nil {
			return invalid("WithClusterStatusFunc", "nil func")
		}
		o.onStatus = f
		return nil
	}
}

// WithClusterHeartbeat makes every node call f with its ID every interval while it is up
// and connected; it replaces a WithHeartbeat given to the nodes. The default is none.
func WithClusterHeartbeat(every time.Duration, f func(nodeID string, at time.Time)) ClusterOption {
	return func(o *clusterOptions) error {
		if every <= 0 {
			return invalid("WithClusterHeartbeat", "interval %s: must be positive", every)
		}
		if f == nil {
			return invalid("WithClusterHeartbeat", "nil func")
		}
		o.heartbeat, o.onHeartbeat = every, f
		return nil
	}
}

// WithClusterSeed seeds the shapes' random source and, one from the other, the nodes' (a
// WithSeed given to the nodes is replaced), so that a cluster and what happens in it
// repeat exactly. The default is a random seed.
func WithClusterSeed(seed uint64) ClusterOption {
	return func(o *clusterOptions) error {
		o.seed, o.seeded = seed, true
		return nil
	}
}

// NewCluster makes n simulated nodes. Node i starts with the default description: ID
// "node-0001" and so on (numbered from 1, with at least 4 digits), hostname the same,
// address 10.x.y.z, platform linux/amd64, 4 CPUs and 8 GiB of capacity, all of it
// allocatable, ready and active; the shapes then change it. A node whose shapes set a
// capacity but no allocatable resources gets its capacity as allocatable.
func NewCluster(n int, opts ...ClusterOption) (*Cluster, error) {
	if n < 0 {
		return nil, fmt.Errorf("simnode: cluster of %d nodes: must be at least 0: %w", n, dao.ErrInvalid)
	}
	var o clusterOptions
	for _, opt := range opts {
		if opt == nil {
			return nil, invalid("ClusterOption", "nil option")
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if !o.seeded {
		o.seed = rand.Uint64()
	}
	r := rand.New(rand.NewPCG(o.seed, 0))
	width := max(4, len(strconv.Itoa(n)))
	c := &Cluster{nodes: make([]*Node, 0, n), byID: make(map[string]*Node, n)}
	for i := range n {
		info := defaultNode(i, width)
		for _, shape := range o.shapes {
			shape(i, r, &info)
		}
		if info.Allocatable.IsZero() {
			info.Allocatable = info.Capacity
		}
		if _, dup := c.byID[info.ID]; dup {
			c.Close()
			return nil, fmt.Errorf("simnode: cluster: two nodes have ID %q: %w", info.ID, dao.ErrInvalid)
		}
		nodeOpts := append(slices.Clip(o.nodeOpts), WithSeed(o.seed, uint64(i)+1))
		id := info.ID
		if o.onStatus != nil {
			f := o.onStatus
			nodeOpts = append(nodeOpts, WithStatusFunc(func(u orchestrator.TaskUpdate) { f(id, u) }))
		}
		if o.onHeartbeat != nil {
			f := o.onHeartbeat
			nodeOpts = append(nodeOpts, WithHeartbeat(o.heartbeat, func(at time.Time) { f(id, at) }))
		}
		node, err := New(info, nodeOpts...)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.nodes = append(c.nodes, node)
		c.byID[id] = node
	}
	return c, nil
}

func defaultNode(i, width int) dao.Node {
	id := fmt.Sprintf("node-%0*d", width, i+1)
	res := dao.Resources{MilliCPU: 4000, Memory: 8 * dao.GiB}
	return dao.Node{
		ID:           id,
		Hostname:     id,
		Address:      fmt.Sprintf("10.%d.%d.%d", (i>>16)&255, (i>>8)&255, i&255),
		Platform:     dao.Platform{OS: "linux", Architecture: "amd64"},
		Capacity:     res,
		Allocatable:  res,
		Availability: dao.Active,
		Status:       dao.NodeStatus{State: dao.NodeReady},
	}
}

// Nodes returns the nodes, in order of creation. The slice is the caller's.
func (c *Cluster) Nodes() []*Node { return slices.Clone(c.nodes) }

// Node returns the node with this ID, or nil.
func (c *Cluster) Node(id string) *Node { return c.byID[id] }

// Len returns the number of nodes.
func (c *Cluster) Len() int { return len(c.nodes) }

// Infos returns the description of every node (see Node.Info), in order of creation, to
// register them with a control plane.
func (c *Cluster) Infos() []dao.Node {
	out := make([]dao.Node, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.Info()
	}
	return out
}

// Close closes every node.
func (c *Cluster) Close() {
	for _, n := range c.nodes {
		n.Close()
	}
}

// Capacity gives node i the capacity rs[i%len(rs)], all of it allocatable: an even mix
// of machine sizes.
func Capacity(rs ...dao.Resources) Shape {
	rs = slices.Clone(rs)
	return func(i int, _ *rand.Rand, n *dao.Node) {
		if len(rs) > 0 {
			n.Capacity = rs[i%len(rs)]
			n.Allocatable = n.Capacity
		}
	}
}

// Label gives node i the label key=values[i%len(values)]: an even spread, such as zones.
func Label(key string, values ...string) Shape {
	values = slices.Clone(values)
	return func(i int, _ *rand.Rand, n *dao.Node) {
		if len(values) > 0 {
			setLabel(n, key, values[i%len(values)])
		}
	}
}

// WeightedLabel gives each node the label key=value with a probability proportional to
// the value's weight: WeightedLabel("disk", map[string]int{"ssd": 9, "hdd": 1}) makes about
// nine nodes in ten ssd ones. A value of weight 0 is never given.
func WeightedLabel(key string, weights map[string]int) Shape {
	type choice struct {
		value string
		upTo  int
	}
	var choices []choice
	total := 0
	for _, v := range slices.Sorted(maps.Keys(weights)) {
		if w := weights[v]; w > 0 {
			total += w
			choices = append(choices, choice{v, total})
		}
	}
	return func(_ int, r *rand.Rand, n *dao.Node) {
		if total == 0 {
			return
		}
		x := r.IntN(total)
		for _, c := range choices {
			if x < c.upTo {
				setLabel(n, key, c.value)
				return
			}
		}
	}
}

func setLabel(n *dao.Node, key, value string) {
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	n.Labels[key] = value
}
