package main

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/opendao/dao/internal/bench/benchutil"
)

func report(samples []sample, loads []string, kills, hogs, slowest int) {
	of := func(path, load string) []sample {
		var out []sample
		for _, s := range samples {
			if s.path == path && s.load == load {
				out = append(out, s)
			}
		}
		return out
	}
	totals := func(ss []sample) []time.Duration {
		var ds []time.Duration
		for _, s := range ss {
			ds = append(ds, s.total)
		}
		return ds
	}
	p := benchutil.Percentile
	fmt.Printf("\nrecovery after SIGKILL, %d kills of each path under each load (hogs: %d `yes`), time until containerd reports the new process started\n", kills, hogs)
	fmt.Printf("  %-6s %-5s %9s %9s %9s %9s\n", "path", "load", "p50", "p90", "p99", "max")
	p99 := map[string]time.Duration{}
	for _, load := range loads {
		for _, path := range []string{"dao", "naive"} {
			ds := totals(of(path, load))
			p99[path+" "+load] = p(ds, 99)
			fmt.Printf("  %-6s %-5s %9s %9s %9s %9s\n", path, load,
				benchutil.Ms(p(ds, 50)), benchutil.Ms(p(ds, 90)), benchutil.Ms(p(ds, 99)), benchutil.Ms(p(ds, 100)))
		}
	}
	fmt.Println("\ntargets:")
	for _, load := range loads {
		r := float64(p99["dao "+load]) / float64(p99["naive "+load])
		fmt.Printf("  dao p99 / naive p99, %s: %.2f (target at most 0.50) %s\n", load, r, verdict(r <= 0.5))
	}
	if len(loads) > 1 {
		r := float64(p99["dao hogs"]) / float64(p99["dao idle"])
		fmt.Printf("  dao p99 with hogs / dao p99 idle: %.2f (target at most 1.50) %s\n", r, verdict(r <= 1.5))
	}
	for _, load := range loads {
		for _, path := range []string{"dao", "naive"} {
			ss := of(path, load)
			fmt.Printf("\n%s, %s: median of each step (ms)\n", path, load)
			names, steps := stepsOf(ss)
			for _, n := range names {
				fmt.Printf("  %-48s %7.1f\n", n, ms(benchutil.Median(steps[n])))
			}
			slices.SortFunc(ss, func(a, b sample) int { return cmp.Compare(b.total, a.total) })
			for _, s := range ss[:min(slowest, len(ss))] {
				fmt.Printf("  slow: %s:", benchutil.Ms(s.total))
				last := s.killed
				for _, m := range s.marks {
					fmt.Printf(" | %s +%.1f", m.name, ms(m.at.Sub(last)))
					last = m.at
				}
				fmt.Println()
			}
		}
	}
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// stepsOf returns, for every step "A -> B" between two successive marks of a sample (the
// first from the kill), its durations over the samples, and the steps' names in order.
func stepsOf(ss []sample) ([]string, map[string][]time.Duration) {
	var names []string
	steps := map[string][]time.Duration{}
	for _, s := range ss {
		prev, at := "kill", s.killed
		for _, m := range s.marks {
			n := prev + " -> " + m.name
			if _, ok := steps[n]; !ok {
				names = append(names, n)
			}
			steps[n] = append(steps[n], m.at.Sub(at))
			prev, at = m.name, m.at
		}
	}
	// Steps that only some samples had (marks in another order) go last.
	slices.SortStableFunc(names, func(a, b string) int { return len(steps[b]) - len(steps[a]) })
	return names, steps
}
