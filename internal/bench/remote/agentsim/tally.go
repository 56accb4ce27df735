package agentsim

import (
	"sync"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/orchestrator"
	"github.com/opendao/dao/orchestrator/simnode"
)

// Tally counts the tasks wanted running in the last assignment each of a set of nodes took,
// when that total last changed, and how many assignments they took. It is safe for
// simultaneous use.
type Tally struct {
	mu      sync.Mutex
	total   int
	at      time.Time
	assigns int
}

func (t *Tally) add(d int) {
	now := time.Now()
	t.mu.Lock()
	t.assigns++
	if d != 0 {
		t.total += d
		t.at = now
	}
	t.mu.Unlock()
}

// Get returns the total and when it last changed.
func (t *Tally) Get() (int, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total, t.at
}

// Assigns returns how many assignments the nodes took.
func (t *Tally) Assigns() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.assigns
}

// Counted is a simulated node that counts, in a Tally, the tasks of each assignment it
// takes. It is the node's orchestrator.NodeAgent (and cluster.LocalNode), and lists the
// node's tasks (cluster.TaskLister) through the embedded Node.
type Counted struct {
	*simnode.Node
	tally *Tally

	mu   sync.Mutex
	held int
}

var _ orchestrator.NodeAgent = (*Counted)(nil)

// Count returns n counting into t.
func Count(n *simnode.Node, t *Tally) *Counted { return &Counted{Node: n, tally: t} }

// Assign gives the node a, and counts its tasks wanted running once the node took it.
func (c *Counted) Assign(a orchestrator.Assignment) error {
	if err := c.Node.Assign(a); err != nil {
		return err
	}
	n := 0
	for i := range a.Tasks {
		if a.Tasks[i].DesiredState <= dao.TaskRunning {
			n++
		}
	}
	c.mu.Lock()
	d := n - c.held
	c.held = n
	c.mu.Unlock()
	c.tally.add(d)
	return nil
}

// NodeInfo is the description of the benchmark's node id: 4 cores and 8 GiB.
func NodeInfo(id string) dao.Node {
	r := dao.Resources{MilliCPU: 4000, Memory: 8 * dao.GiB}
	return dao.Node{ID: id, Capacity: r, Allocatable: r}
}
