package orchestrator

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/opendao/dao"
)

// These tests fill every field of the stored types by reflection, so that a field added
// to a dao type without its line in copy.go fails them: a slice, map or pointer that a
// copy would share, or a spec field that equalContainerSpec would not compare.

var timeType = reflect.TypeFor[time.Time]()

// fill sets every field reachable from v to a distinct non-zero value: slices and maps get
// two elements, pointers a filled value.
func fill(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", *n))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(*n) / 1000)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), n)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(v.Index(i), n)
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		for range 2 {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(k, n)
			fill(e, n)
			v.SetMapIndex(k, e)
		}
	case reflect.Struct:
		if v.Type() == timeType {
			v.Set(reflect.ValueOf(time.Unix(int64(*n), 0)))
			return
		}
		for i := range v.NumField() {
			fill(v.Field(i), n)
		}
	default:
		panic("fill: unhandled kind " + v.Kind().String())
	}
}

// shared returns the path of the first slice, map or pointer that a and b share.
func shared(a, b reflect.Value, path string) string {
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() {
			return ""
		}
		if a.Pointer() == b.Pointer() {
			return path
		}
		return shared(a.Elem(), b.Elem(), path)
	case reflect.Slice:
		if a.Len() > 0 && a.Pointer() == b.Pointer() {
			return path
		}
		for i := range a.Len() {
			if p := shared(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i)); p != "" {
				return p
			}
		}
	case reflect.Map:
		if a.Len() > 0 && a.Pointer() == b.Pointer() {
			return path
		}
	case reflect.Struct:
		if a.Type() == timeType {
			return ""
		}
		for i := range a.NumField() {
			if p := shared(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); p != "" {
				return p
			}
		}
	}
	return ""
}

func filled[T any]() *T {
	var v T
	n := 0
	fill(reflect.ValueOf(&v).Elem(), &n)
	return &v
}

// storedTask makes a record of t as CreateTask does.
func storedTask(t *Task) *taskRec {
	spec := cloneContainerSpec(&t.Spec)
	return newTaskRec(t, &spec, nil)
}

func TestClonesAreDeep(t *testing.T) {
	tests := []struct {
		name       string
		orig, copy any
	}{
		{"taskRec", filled[Task](), func() any { c := storedTask(filled[Task]()).value(); return &c }()},
		{"cloneService", filled[Service](), cloneService(filled[Service]())},
		{"cloneNode", filled[Node](), cloneNode(filled[Node](), nil)},
		{"cloneNodeValue", filled[Node](), func() any { c := cloneNodeValue(filled[Node]()); return &c }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.orig, tt.copy) {
				t.Errorf("the copy differs from the original:\n%+v\n%+v", tt.orig, tt.copy)
			}
		})
	}
	// Sharing: copy a value and compare it with the very value it was copied from.
	check := func(name string, orig any, copy any) {
		if p := shared(reflect.ValueOf(orig), reflect.ValueOf(copy), name); p != "" {
			t.Errorf("%s shares %s with its original", name, p)
		}
	}
	task := filled[Task]()
	rec := storedTask(task)
	recValue := rec.shallow()
	check("newTaskRec", task, &recValue)
	tv := rec.value()
	check("taskRec.value", &recValue, &tv)
	svc := filled[Service]()
	check("cloneService", svc, cloneService(svc))
	node := filled[Node]()
	check("cloneNode", node, cloneNode(node, nil))
	nv := cloneNodeValue(node)
	check("cloneNodeValue", node, &nv)
}

// leaves calls visit with every settable leaf reachable from v, and its path: every
// element of slices, and slices and maps themselves (to change their length).
func leaves(v reflect.Value, path string, visit func(path string, v reflect.Value)) {
	switch v.Kind() {
	case reflect.Pointer:
		visit(path, v) // set to nil
		if !v.IsNil() {
			leaves(v.Elem(), path, visit)
		}
	case reflect.Slice:
		visit(path, v)
		for i := range v.Len() {
			leaves(v.Index(i), fmt.Sprintf("%s[%d]", path, i), visit)
		}
	case reflect.Map:
		visit(path, v)
	case reflect.Struct:
		if v.Type() == timeType {
			visit(path, v)
			return
		}
		for i := range v.NumField() {
			leaves(v.Field(i), path+"."+v.Type().Field(i).Name, visit)
		}
	default:
		visit(path, v)
	}
}

// alter changes a leaf that fill set.
func alter(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(v.Uint() + 1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(v.Float() + 1)
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Pointer:
		v.Set(reflect.Zero(v.Type()))
	case reflect.Slice:
		v.Set(v.Slice(0, 1))
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		it := v.MapRange()
		it.Next()
		m.SetMapIndex(it.Key(), it.Value())
		v.Set(m)
	case reflect.Struct: // time.Time
		v.Set(reflect.ValueOf(v.Interface().(time.Time).Add(time.Second)))
	default:
		panic("alter: unhandled kind " + v.Kind().String())
	}
}

func TestEqualContainerSpecComparesEveryField(t *testing.T) {
	a := filled[dao.ContainerSpec]()
	if b := cloneContainerSpec(a); !equalContainerSpec(a, &b) {
		t.Fatal("a spec and its copy are not equal")
	}
	var paths []string
	leaves(reflect.ValueOf(a).Elem(), "spec", func(path string, _ reflect.Value) { paths = append(paths, path) })
	for i, path := range paths {
		b := cloneContainerSpec(a)
		j := 0
		leaves(reflect.ValueOf(&b).Elem(), "spec", func(_ string, v reflect.Value) {
			if j == i {
				alter(v)
			}
			j++
		})
		if equalContainerSpec(a, &b) || equalContainerSpec(&b, a) {
			t.Errorf("specs that differ in %s are equal", path)
		}
	}
	if len(paths) < 30 {
		t.Errorf("only %d leaves found", len(paths))
	}
}
