package orchestrator

import (
	"encoding/json"
	"testing"

	"github.com/opendao/dao/internal/cborenc"
)

// FuzzEtcdValue: whatever a key under the store's prefix holds (written by anyone with
// access to etcd), reading it neither panics nor yields an object stored under another ID.
func FuzzEtcdValue(f *testing.F) {
	for _, seed := range []string{
		`{"id":"web","version":1,"spec":{"name":"web","replicas":2,"container":{"image":"a"}},"revision":3}`,
		`{"id":"web.1","serviceID":"web","slot":1,"spec":{"image":"a"},"desiredState":"running","status":{"state":"running"},"revision":4}`,
		`{"id":"n1","capacity":{"milliCPU":1000},"status":{"state":"ready"},"revision":5}`,
		`{"revision":7,"cause":"x","fence":"/dao/leader/1"}`,
		`{}`, `null`, `[]`, `{"id":""}`, "\xff",
	} {
		f.Add("t/web.1", []byte(seed))
		f.Add("s/web", []byte(seed))
		f.Add("n/n1", []byte(seed))
		// The same in CBOR, the store's default encoding, as the store writes each type.
		for key, v := range map[string]any{"t/web.1": new(Task), "s/web": new(Service), "n/n1": new(Node)} {
			if json.Unmarshal([]byte(seed), v) == nil {
				if b, err := cborenc.Marshal(v); err == nil {
					f.Add(key, b)
				}
			}
		}
	}
	s := &EtcdStore{prefix: "/dao/", warned: map[string]bool{}}
	f.Fuzz(func(t *testing.T, key string, v []byte) {
		var r etcdRevision
		_ = json.Unmarshal(v, &r)
		typ, id, ok := s.parseKey([]byte("/dao/" + key))
		if !ok {
			return
		}
		st := newState(0)
		obj, err := s.decodeObject(&st, typ, id, v, nil)
		if err != nil {
			return
		}
		var got string
		switch o := obj.(type) {
		case *Service:
			got = o.ID
		case *taskRec:
			got = o.ID
		case *Node:
			got = o.ID
		}
		if got != id {
			t.Fatalf("key %q decoded to the object %q", key, got)
		}
	})
}
