package pipeline

import (
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// vkind is the type of a value of an expression.
type vkind uint8

const (
	kNull vkind = iota
	kBool
	kNum
	kStr
	kArr
	kObj
)

// value is the result of an expression. Arrays and objects are pointers: as in GitHub
// Actions, they are equal only to themselves.
type value struct {
	k   vkind
	b   bool
	n   float64
	s   string
	arr *[]value
	obj *objectValue
}

// objectValue is an object: its properties, looked up ignoring case as GitHub does.
type objectValue struct {
	keys []string
	vals map[string]value
}

func (o *objectValue) set(k string, v value) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func (o *objectValue) get(k string) (value, bool) {
	if v, ok := o.vals[k]; ok {
		return v, true
	}
	for _, key := range o.keys {
		if strings.EqualFold(key, k) {
			return o.vals[key], true
		}
	}
	return value{}, false
}

func str(s string) value       { return value{k: kStr, s: s} }
func boolean(b bool) value     { return value{k: kBool, b: b} }
func number(n float64) value   { return value{k: kNum, n: n} }
func (v value) String() string { return v.text() }

func array(vs []value) value { return value{k: kArr, arr: &vs} }

func object(m map[string]value) value {
	o := &objectValue{vals: map[string]value{}}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		o.set(k, m[k])
	}
	return value{k: kObj, obj: o}
}

// strObject is an object of strings, its keys sorted.
func strObject(m map[string]string) value {
	o := &objectValue{vals: make(map[string]value, len(m))}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		o.set(k, str(m[k]))
	}
	return value{k: kObj, obj: o}
}

// text converts a value to a string, as GitHub does.
func (v value) text() string {
	switch v.k {
	case kNull:
		return ""
	case kBool:
		return strconv.FormatBool(v.b)
	case kNum:
		return formatNumber(v.n)
	case kArr:
		return "Array"
	case kObj:
		return "Object"
	}
	return v.s
}

// formatNumber writes n in its shortest form: 2, 0.5, 1e+21, Infinity, NaN.
func formatNumber(n float64) string {
	switch {
	case math.IsNaN(n):
		return "NaN"
	case math.IsInf(n, 1):
		return "Infinity"
	case math.IsInf(n, -1):
		return "-Infinity"
	case n == 0:
		return "0" // and -0
	case math.Abs(n) < 1e21 && math.Abs(n) >= 1e-6:
		return strconv.FormatFloat(n, 'f', -1, 64)
	}
	return strconv.FormatFloat(n, 'g', -1, 64)
}

// num converts a value to a number, as GitHub does: null is 0, true 1, false 0, a string its
// number ("" 0, not a number NaN), an array or an object NaN.
func (v value) num() float64 {
	switch v.k {
	case kNull:
		return 0
	case kBool:
		if v.b {
			return 1
		}
		return 0
	case kNum:
		return v.n
	case kStr:
		if strings.TrimSpace(v.s) == "" {
			return 0
		}
		if n, ok := parseNumber(v.s); ok {
			return n
		}
	}
	return math.NaN()
}

// truth is GitHub's: false, 0, -0, NaN, "" and null are false.
func (v value) truth() bool {
	switch v.k {
	case kNull:
		return false
	case kBool:
		return v.b
	case kNum:
		return v.n != 0 && !math.IsNaN(v.n)
	case kStr:
		return v.s != ""
	}
	return true
}

// equal is GitHub's "==": values of different types compare as numbers, strings ignoring
// case, arrays and objects by identity.
func equal(x, y value) bool {
	if x.k != y.k {
		return x.num() == y.num()
	}
	switch x.k {
	case kNull:
		return true
	case kBool:
		return x.b == y.b
	case kNum:
		return x.n == y.n
	case kStr:
		return strings.EqualFold(x.s, y.s)
	case kArr:
		return x.arr == y.arr
	}
	return x.obj == y.obj
}

// compare orders x and y as GitHub's "<" does: strings ignoring case, anything else as
// numbers. It reports false when they do not compare (NaN, arrays, objects).
func compare(x, y value) (int, bool) {
	if x.k == kStr && y.k == kStr {
		return strings.Compare(strings.ToUpper(x.s), strings.ToUpper(y.s)), true
	}
	if x.k == y.k && (x.k == kArr || x.k == kObj) {
		return 0, false
	}
	a, b := x.num(), y.num()
	switch {
	case math.IsNaN(a) || math.IsNaN(b):
		return 0, false
	case a < b:
		return -1, true
	case a > b:
		return 1, true
	}
	return 0, true
}

// index is x[i]: an object's property (ignoring case), an array's element; null otherwise.
func (v value) index(i value) value {
	switch v.k {
	case kObj:
		if r, ok := v.obj.get(i.text()); ok {
			return r
		}
	case kArr:
		n := i.num()
		if i.k == kNum || i.k == kStr {
			if n >= 0 && n < float64(len(*v.arr)) && n == math.Trunc(n) {
				return (*v.arr)[int(n)]
			}
		}
	}
	return value{}
}
