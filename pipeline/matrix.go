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

// expand returns the instances of a matrix: every combination of its values, the keys in
// sorted order and the values of the last key changing fastest. A step without a matrix has
// one instance with no values.
func expand(m map[string][]string) []instance {
	if len(m) == 0 {
		return []instance{{}}
	}
	keys := slices.Sorted(maps.Keys(m))
	out := []instance{{values: map[string]string{}}}
	for _, k := range keys {
		var next []instance
		for _, in := range out {
			for _, v := range m[k] {
				vals := maps.Clone(in.values)
				vals[k] = v
				next = append(next, instance{values: vals})
			}
		}
		out = next
	}
	for i := range out {
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, k+"="+out[i].values[k])
		}
		out[i].label = strings.Join(parts, ", ")
	}
	return out
}
