package orchestrator

import (
	"encoding"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/opendao/dao/internal/cborenc"
)

// valid sets to zero what fill made that no program could write: an enum whose text
// method refuses the value.
func valid(v reflect.Value) {
	if v.CanAddr() {
		if m, ok := v.Addr().Interface().(encoding.TextMarshaler); ok && v.Kind() != reflect.Struct {
			if _, err := m.MarshalText(); err != nil {
				v.SetZero()
			}
			return
		}
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			valid(v.Elem())
		}
	case reflect.Slice:
		for i := range v.Len() {
			valid(v.Index(i))
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			valid(e)
			v.SetMapIndex(k, e)
		}
	case reflect.Struct:
		if v.Type() == timeType {
			return
		}
		for i := range v.NumField() {
			valid(v.Field(i))
		}
	}
}

func validFilled[T any]() *T {
	v := filled[T]()
	valid(reflect.ValueOf(v).Elem())
	return v
}

// Every field of the stored types, filled, reads back from CBOR as it does from JSON, so
// that the two encodings hold the same: a field the CBOR encoder would drop, or type
// differently, fails this.
func TestCBORAsJSON(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    any
		new  func() any
	}{
		{"Service", validFilled[Service](), func() any { return new(Service) }},
		{"Task", validFilled[Task](), func() any { return new(Task) }},
		{"Node", validFilled[Node](), func() any { return new(Node) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, err := marshalValue(EtcdJSON, tc.v)
			if err != nil {
				t.Fatal(err)
			}
			c, err := marshalValue(EtcdCBOR, tc.v)
			if err != nil {
				t.Fatal(err)
			}
			fromJSON, fromCBOR := tc.new(), tc.new()
			if err := unmarshalValue(j, fromJSON); err != nil {
				t.Fatal(err)
			}
			if err := unmarshalValue(c, fromCBOR); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(fromJSON, fromCBOR, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("CBOR reads back otherwise than JSON (-json +cbor):\n%s", d)
			}
			if d := cmp.Diff(tc.v, fromCBOR, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("CBOR round trip (-wrote +read):\n%s", d)
			}
			t.Logf("%s: JSON %d bytes, CBOR %d", tc.name, len(j), len(c))
		})
	}
}

// A value that is neither JSON nor CBOR says so, and a task whose state is out of range
// is left out, in either encoding.
func TestUnmarshalValueErrors(t *testing.T) {
	var tk Task
	if err := unmarshalValue([]byte("\xff\x00"), &tk); err == nil || !strings.Contains(err.Error(), "not CBOR") {
		t.Errorf("garbage: %v", err)
	}
	// An integer where a state's name belongs (a value written by another program): the
	// store leaves the task out.
	b, err := cborenc.Marshal(map[string]any{"id": "t1", "desiredState": 99})
	if err != nil {
		t.Fatal(err)
	}
	s := &EtcdStore{prefix: "/dao/", warned: map[string]bool{}}
	st := newState(0)
	for _, v := range [][]byte{b, []byte(`{"id":"t1","desiredState":99}`)} {
		if obj, err := s.decodeObject(&st, TaskObject, "t1", v, nil); err == nil {
			t.Errorf("a state given as the number 99 decoded: %+v", obj)
		}
	}
}
