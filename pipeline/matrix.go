package pipeline

import (
	"maps"
	"slices"
	"strings"
)

// instance is one combination of a matrix's values.
type instance struct {
	values map[string]string // nil for a step without a matrix
	label  string            // "go=1.26, os=linux"
}

// hasMatrix reports whether the step fans out over a matrix.
func (s *Step) hasMatrix() bool { return len(s.Matrix) > 0 || len(s.MatrixInclude) > 0 }

// hasMatrixKey reports whether some instance of the step's matrix has key.
func (s *Step) hasMatrixKey(key string) bool {
	if _, ok := s.Matrix[key]; ok {
		return true
	}
	for _, in := range s.MatrixInclude {
		if _, ok := in[key]; ok {
			return true
		}
	}
	return false
}

// expand returns the instances of a step's matrix, as GitHub Actions makes them: every
// combination of the values of Matrix, the keys in sorted order and the values of the last
// key changing fastest; less those that MatrixExclude matches (an exclusion matches a
// combination that has all its values); then each of MatrixInclude added to every
// combination whose values of Matrix's keys it does not change, or, when it fits none, as a
// combination of its own. A step without a matrix has one instance with no values.
func (s *Step) expand() []instance {
	if !s.hasMatrix() {
		return []instance{{}}
	}
	var combos []map[string]string
	if len(s.Matrix) > 0 {
		combos = []map[string]string{{}}
		for _, k := range slices.Sorted(maps.Keys(s.Matrix)) {
			var next []map[string]string
			for _, c := range combos {
				for _, v := range s.Matrix[k] {
					vals := maps.Clone(c)
					vals[k] = v
					next = append(next, vals)
				}
			}
			combos = next
		}
	}
	combos = slices.DeleteFunc(combos, func(c map[string]string) bool {
		return slices.ContainsFunc(s.MatrixExclude, func(ex map[string]string) bool { return matches(c, ex) })
	})
	original := len(combos)
	for _, in := range s.MatrixInclude {
		fitted := false
		for _, c := range combos[:original] {
			if fits(c, in, s.Matrix) {
				maps.Copy(c, in)
				fitted = true
			}
		}
		if !fitted {
			combos = append(combos, maps.Clone(in))
		}
	}
	out := make([]instance, len(combos))
	for i, c := range combos {
		parts := make([]string, 0, len(c))
		for _, k := range slices.Sorted(maps.Keys(c)) {
			parts = append(parts, k+"="+c[k])
		}
		out[i] = instance{values: c, label: strings.Join(parts, ", ")}
	}
	return out
}

// matches reports whether combination c has every value of ex.
func matches(c, ex map[string]string) bool {
	for k, v := range ex {
		if cv, ok := c[k]; !ok || cv != v {
			return false
		}
	}
	return true
}

// fits reports whether include changes none of c's values of the matrix's own keys.
func fits(c, include map[string]string, matrix map[string][]string) bool {
	for k, v := range include {
		if _, own := matrix[k]; own && c[k] != v {
			return false
		}
	}
	return true
}

// instanceCount returns how many instances the step's matrix makes, or MaxMatrixInstances+1
// for more than MaxMatrixInstances, without making them when there would be too many.
func (s *Step) instanceCount() int {
	n := 1
	for _, v := range s.Matrix {
		n *= max(len(v), 1)
		if n > MaxMatrixInstances {
			return MaxMatrixInstances + 1
		}
	}
	if n+len(s.MatrixInclude) > MaxMatrixInstances {
		return MaxMatrixInstances + 1
	}
	return len(s.expand())
}
