package pipeline

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Shapes of large pipelines: n steps in YAML.
var shapes = []struct {
	name string
	yaml func(n int) []byte
}{
	// s0 <- s1 <- s2 ...: each step needs the one before.
	{"chain", func(n int) []byte { return chainYAML(n, false, "") }},
	// The same as a list of steps with names.
	{"chain of a list", func(n int) []byte { return chainYAML(n, true, "") }},
	// A chain where every step reads an output of the first, which it needs indirectly.
	{"chain reading the first", func(n int) []byte { return chainYAML(n, false, "s0") }},
	// s0 <- s1, s0 <- s2, ...: every step needs the first.
	{"wide", func(n int) []byte {
		var b strings.Builder
		b.WriteString("steps:\n  s0:\n    image: busybox\n")
		for i := 1; i < n; i++ {
			fmt.Fprintf(&b, "  s%d:\n    image: busybox\n    needs: [s0]\n    commands: [\"echo ${{ steps.s0.outputs.x }}\"]\n", i)
		}
		return []byte(b.String())
	}},
}

func chainYAML(n int, list bool, reads string) []byte {
	var b strings.Builder
	b.WriteString("steps:\n")
	for i := 0; i < n; i++ {
		if list {
			fmt.Fprintf(&b, "  - name: s%d\n    image: busybox\n", i)
		} else {
			fmt.Fprintf(&b, "  s%d:\n    image: busybox\n", i)
		}
		if i > 0 {
			fmt.Fprintf(&b, "    needs: [s%d]\n", i-1)
			if reads != "" {
				fmt.Fprintf(&b, "    if: steps.%s.outputs.x == 'y'\n", reads)
			}
		}
	}
	return []byte(b.String())
}

// cost parses and validates data and returns the least time of a few tries and the bytes it
// allocated.
func cost(t *testing.T, data []byte) (time.Duration, uint64) {
	t.Helper()
	best := time.Duration(1<<63 - 1)
	var allocated uint64
	for try := 0; try < 3; try++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		p, err := Parse(data)
		if err == nil {
			err = p.Validate()
		}
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		best = min(best, took)
		allocated = after.TotalAlloc - before.TotalAlloc
	}
	return best, allocated
}

// TestParseAndValidateAreLinear guards the cost of Parse and Validate for large DAGs: a
// pipeline four times as large costs about four times as much, where a quadratic cost would
// be sixteen times. Memory allocated does not depend on the machine's load; time does, so it
// is the least of a few tries, with a wide margin, and measured again before it fails.
func TestParseAndValidateAreLinear(t *testing.T) {
	const n = 500
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			small, large := sh.yaml(n), sh.yaml(4*n)
			cost(t, small) // warm up
			for try := 1; ; try++ {
				t1, a1 := cost(t, small)
				t4, a4 := cost(t, large)
				t.Logf("%d steps: %s, %d bytes; %d steps: %s, %d bytes", n, t1, a1, 4*n, t4, a4)
				if r := float64(a4) / float64(a1); r > 6 {
					t.Fatalf("4 times the steps allocate %.1f times the memory, want about 4", r)
				}
				r := float64(t4) / float64(t1)
				if r <= 10 {
					break
				}
				if try == 3 {
					t.Fatalf("4 times the steps take %.1f times as long, want about 4", r)
				}
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	for _, sh := range shapes {
		for _, n := range []int{1000, 10_000} {
			data := sh.yaml(n)
			b.Run(fmt.Sprintf("%s/%d", sh.name, n), func(b *testing.B) {
				for b.Loop() {
					if _, err := Parse(data); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	for _, sh := range shapes {
		for _, n := range []int{1000, 10_000} {
			p, err := Parse(sh.yaml(n))
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("%s/%d", sh.name, n), func(b *testing.B) {
				for b.Loop() {
					if err := p.Validate(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
