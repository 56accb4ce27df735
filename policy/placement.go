package policy

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opendao/dao"
)

// FilterFunc decides whether node n may run task t: nil, or an error that says why not.
// It must be a pure function of t and n (and of what it was built with), and should not
// allocate: return a preallocated error, such as one of the sentinels of this package.
type FilterFunc func(t *dao.Task, n *NodeInfo) error

// ScoreFunc rates node n for task t from 0 (worst) to 100 (best). Like FilterFunc, it
// must be pure and should not allocate. Scores outside 0-100 are clamped.
type ScoreFunc func(t *dao.Task, n *NodeInfo) int64

// Filter is a named FilterFunc.
type Filter struct {
	// Name identifies the filter in traces and tests, such as "resources-fit".
	Name string
	Func FilterFunc
}

// Scorer is a named, weighted ScoreFunc.
type Scorer struct {
	// Name identifies the scorer, such as "least-allocated".
	Name string
	// Weight multiplies the score in the placer's sum; 0 turns the scorer off.
	Weight int64
	Func   ScoreFunc

	spreadKey string // the label key of a SpreadLabel scorer
}

// SpreadKey returns the label key a SpreadLabel scorer spreads over, and whether s is one. A
// scheduler may spread over label values itself, by counts, and leave these scorers out of
// the per-node score (where, within one label value, they rate every node the same).
func (s Scorer) SpreadKey() (string, bool) { return s.spreadKey, s.spreadKey != "" }

// WithWeight returns s with weight w.
func (s Scorer) WithWeight(w int64) Scorer {
	s.Weight = w
	return s
}

// Placer places tasks, with a pipeline of placement policies: a node may run a task when
// every filter accepts it, and among those nodes the one with the highest weighted sum of
// scores is best. The zero Placer accepts every node and scores them all 0. (It was called
// Pipeline, a name now left to package pipeline's CI/CD pipelines.)
//
// A Placer does not change once built, so it is safe for concurrent use as long as the
// NodeInfos are not changed meanwhile. Its methods do not allocate when its filters and
// scorers do not.
type Placer struct {
	// Filters run in order; the first refusal ends the check of a node, so cheap and
	// selective filters go first.
	Filters []Filter
	Scorers []Scorer
}

// Filter returns nil when every filter accepts node n for task t, or the first refusal.
func (p *Placer) Filter(t *dao.Task, n *NodeInfo) error {
	for i := range p.Filters {
		if err := p.Filters[i].Func(t, n); err != nil {
			return err
		}
	}
	return nil
}

// Score returns the weighted sum of the scores of node n for task t; each score is
// clamped to 0-100 first.
func (p *Placer) Score(t *dao.Task, n *NodeInfo) int64 {
	var sum int64
	for i := range p.Scorers {
		s := &p.Scorers[i]
		if s.Weight == 0 {
			continue
		}
		sum += s.Weight * min(max(s.Func(t, n), 0), 100)
	}
	return sum
}

// MaxScore returns the greatest score the placer can give: 100 times the sum of the
// weights.
func (p *Placer) MaxScore() int64 {
	var sum int64
	for _, s := range p.Scorers {
		sum += 100 * s.Weight
	}
	return sum
}

// Select returns the node among nodes that the filters accept for task t with the highest
// score; of equal scores, the first. When no node is accepted it returns a *PlacementError
// that counts the refusals by reason.
func (p *Placer) Select(t *dao.Task, nodes []*NodeInfo) (*NodeInfo, error) {
	var best *NodeInfo
	var bestScore int64
	var refusals Refusals
	for _, n := range nodes {
		if err := p.Filter(t, n); err != nil {
			refusals.Add(err)
			continue
		}
		if s := p.Score(t, n); best == nil || s > bestScore {
			best, bestScore = n, s
		}
	}
	if best == nil {
		return nil, &PlacementError{TaskID: t.ID, Nodes: len(nodes), Refusals: refusals.Counts()}
	}
	return best, nil
}

// Refusals counts refused nodes by reason, to explain why a task could not be placed. The
// reason is the text of the refusal without the "policy: " prefix; refusals with the same
// text count together. The zero value is ready to use.
type Refusals struct {
	counts []RefusalCount
}

// RefusalCount is the number of nodes refused for one reason.
type RefusalCount struct {
	Reason string
	Nodes  int
}

// Add counts one refused node. A nil err is not counted.
func (r *Refusals) Add(err error) {
	if err == nil {
		return
	}
	reason := strings.TrimPrefix(err.Error(), "policy: ")
	for i := range r.counts {
		if r.counts[i].Reason == reason {
			r.counts[i].Nodes++
			return
		}
	}
	r.counts = append(r.counts, RefusalCount{Reason: reason, Nodes: 1})
}

// Nodes returns the number of refused nodes.
func (r *Refusals) Nodes() int {
	total := 0
	for _, c := range r.counts {
		total += c.Nodes
	}
	return total
}

// Counts returns the counts, the most frequent reason first, then by reason.
func (r *Refusals) Counts() []RefusalCount {
	counts := slices.Clone(r.counts)
	sortCounts(counts)
	return counts
}

// String summarises the refusals: "3 nodes: insufficient memory; 2 nodes: zone != a".
func (r *Refusals) String() string { return summarize(r.Counts()) }

func sortCounts(counts []RefusalCount) {
	slices.SortFunc(counts, func(a, b RefusalCount) int {
		if c := cmp.Compare(b.Nodes, a.Nodes); c != 0 {
			return c
		}
		return strings.Compare(a.Reason, b.Reason)
	})
}

func summarize(counts []RefusalCount) string {
	var b strings.Builder
	for i, c := range counts {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(strconv.Itoa(c.Nodes))
		if c.Nodes == 1 {
			b.WriteString(" node: ")
		} else {
			b.WriteString(" nodes: ")
		}
		b.WriteString(c.Reason)
	}
	return b.String()
}

// PlacementError says that no node may run a task, and why, node by node counted by
// reason. errors.Is(err, ErrUnschedulable) holds for it.
type PlacementError struct {
	TaskID string
	// Nodes is the number of nodes that were considered.
	Nodes int
	// Refusals are the reasons, the most frequent first.
	Refusals []RefusalCount
}

func (e *PlacementError) Error() string {
	s := "policy: no suitable node for task " + dao.Quote(e.TaskID)
	if e.Nodes == 0 {
		return s + ": no nodes"
	}
	return s + " (" + strconv.Itoa(e.Nodes) + " considered): " + summarize(e.Refusals)
}

// Is reports whether target is ErrUnschedulable or one of its classes.
func (e *PlacementError) Is(target error) bool { return errors.Is(ErrUnschedulable, target) }

// Default weights of the scorers of DefaultPlacer.
const (
	// WeightLabelSpread is the weight of the spread over the last key of
	// dao.Placement.Spread; each earlier key weighs 1 more.
	WeightLabelSpread = 3
	// WeightNodeSpread is the weight of the spread over nodes.
	WeightNodeSpread = 2
	// WeightRecentFailures is the weight of avoiding nodes where the service failed recently.
	WeightRecentFailures = 2
	// WeightLeastAllocated is the weight of preferring the least allocated nodes.
	WeightLeastAllocated = 1
)

// DefaultFailureWindow is how far back DefaultPlacer looks for failures of a service
// on a node.
const DefaultFailureWindow = 5 * time.Minute

// DefaultPlacer returns the built-in placer for the tasks of a service with
// placement p. Its filters, in order:
//
//   - NodeReady: the node is ready and active;
//   - ResourcesFit: CPU, memory, pids and host ports;
//   - Platforms, when p.Platforms is set;
//   - one constraint filter per p.Constraints, parsed once here;
//   - MaxReplicasPerNode, when p.MaxReplicasPerNode is set.
//
// Its scorers: SpreadLabel for each p.Spread key (the first one weighing most),
// SpreadNodes, FewestRecentFailures over DefaultFailureWindow, and LeastAllocated (see the
// Weight constants). Swap LeastAllocated for BinPack to pack nodes instead.
//
// A malformed constraint or spread key returns a *SyntaxError naming it. The scheduler
// builds the placer once per version of a service and keeps it.
func DefaultPlacer(p dao.Placement) (*Placer, error) {
	pl := &Placer{Filters: []Filter{NodeReady(), ResourcesFit()}}
	if len(p.Platforms) > 0 {
		pl.Filters = append(pl.Filters, Platforms(p.Platforms...))
	}
	for _, text := range p.Constraints {
		c, err := ParseConstraint(text)
		if err != nil {
			return nil, err
		}
		pl.Filters = append(pl.Filters, c.Filter())
	}
	if p.MaxReplicasPerNode > 0 {
		pl.Filters = append(pl.Filters, MaxReplicasPerNode(p.MaxReplicasPerNode))
	}
	for i, attr := range p.Spread {
		key, err := ParseSpread(attr)
		if err != nil {
			return nil, err
		}
		pl.Scorers = append(pl.Scorers, SpreadLabel(key).WithWeight(int64(WeightLabelSpread+len(p.Spread)-1-i)))
	}
	pl.Scorers = append(pl.Scorers,
		SpreadNodes().WithWeight(WeightNodeSpread),
		FewestRecentFailures(DefaultFailureWindow).WithWeight(WeightRecentFailures),
		LeastAllocated().WithWeight(WeightLeastAllocated),
	)
	return pl, nil
}

// ParseSpread reads a spread attribute of dao.Placement.Spread, "node.labels.<key>", and
// returns the label key.
func ParseSpread(attr string) (string, error) {
	if !strings.HasPrefix(attr, AttrLabelPrefix) {
		return "", &SyntaxError{Text: attr, Column: 1, Msg: "want a spread attribute node.labels.<key>"}
	}
	key := attr[len(AttrLabelPrefix):]
	if key == "" {
		return "", &SyntaxError{Text: attr, Column: len(attr) + 1, Msg: "want a label key after " + AttrLabelPrefix}
	}
	for i := 0; i < len(key); i++ {
		if isDelim(key[i], true) {
			return "", &SyntaxError{Text: attr, Column: len(AttrLabelPrefix) + i + 1,
				Msg: "unexpected " + strconv.Quote(key[i:i+1]) + " in a label key"}
		}
	}
	return key, nil
}
