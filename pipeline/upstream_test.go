package pipeline

import (
	"fmt"
	"testing"
)

// finishedRun is a run of p whose steps ended with the given statuses (success when not
// given), for what conditions see of them.
func finishedRun(p *Pipeline, statuses map[string]Status) *run {
	ru := &run{p: p, groups: map[string][]*node{}, index: map[string]int{}, up: map[string]upstream{}}
	for i := range p.Steps {
		s := &p.Steps[i]
		st := statuses[s.Name]
		if st == "" {
			st = StatusSuccess
		}
		n := &node{def: s, name: s.Name, rec: StepRecord{Status: st, ContinueOnError: s.ContinueOnError && st.failed()}}
		ru.index[s.Name] = i
		ru.groups[s.Name] = []*node{n}
		ru.nodes = append(ru.nodes, n)
	}
	return ru
}

func TestUpstream(t *testing.T) {
	t.Parallel()
	p := &Pipeline{Steps: []Step{
		{Name: "a", ContinueOnError: true},
		{Name: "b", Needs: []string{"a"}},
		{Name: "c", Needs: []string{"a"}},
		{Name: "d", Needs: []string{"c", "b"}},
		{Name: "e", Needs: []string{"c"}},
		{Name: "f", Needs: []string{"d"}},
		{Name: "g", Needs: []string{"e"}},
	}}
	ru := finishedRun(p, map[string]Status{"a": StatusFailure, "b": StatusFailure, "d": StatusSkipped, "f": StatusSkipped})
	for _, tc := range []struct {
		step string
		want upstream
	}{
		{"a", upstream{ok: true}},
		{"b", upstream{ok: true}}, // a failed, but may
		{"d", upstream{ok: false, bad: true, culprit: "b"}},
		{"e", upstream{ok: true}},
		{"f", upstream{ok: false, bad: true, culprit: "d"}},
		{"g", upstream{ok: true}},
	} {
		if got := ru.upstream(tc.step); got != tc.want {
			t.Errorf("upstream(%s) = %+v, want %+v", tc.step, got, tc.want)
		}
	}
	if got, want := ru.whyNotSuccess(ru.nodes[5]), `needed step "d" was skipped`; got != want {
		t.Errorf("whyNotSuccess(f) = %q, want %q", got, want)
	}
}

// TestUpstreamOfALongChain: what the last step of a chain of 100,000 sees is worked out from
// its need's, without walking the chain for every step.
func TestUpstreamOfALongChain(t *testing.T) {
	t.Parallel()
	const n = 100_000
	p := &Pipeline{Steps: make([]Step, n)}
	for i := range p.Steps {
		p.Steps[i].Name = fmt.Sprintf("s%d", i)
		if i > 0 {
			p.Steps[i].Needs = []string{p.Steps[i-1].Name}
		}
	}
	statuses := map[string]Status{"s0": StatusFailure}
	for i := 1; i < n-1; i++ {
		statuses[p.Steps[i].Name] = StatusSkipped
	}
	ru := finishedRun(p, statuses)
	// Asked first for the last step, then for every step as a run asks.
	if got, want := ru.upstream(p.Steps[n-1].Name), (upstream{bad: true, culprit: p.Steps[n-2].Name}); got != want {
		t.Errorf("upstream of the last = %+v, want %+v", got, want)
	}
	for i := range p.Steps {
		if u := ru.upstream(p.Steps[i].Name); i > 0 && (u.ok || !u.bad) {
			t.Fatalf("upstream(%s) = %+v", p.Steps[i].Name, u)
		}
	}
}
