package cluster

import (
	"encoding/json"
	"testing"

	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/cborenc"
)

// FuzzAgentMessage: whatever a peer sends, decoding it and judging it neither panics nor
// lets through a status the control plane would not store.
func FuzzAgentMessage(f *testing.F) {
	for _, seed := range []string{
		`{"hello":{"node":{"id":"edge-1"},"tasks":[{"taskID":"web.1.x","status":{"state":"running"}}]}}`,
		`{"updates":{"seq":3,"updates":[{"taskID":"web.1.x","status":{"state":"failed","err":"boom"}}]}}`,
		`{"heartbeat":{"seq":1}}`,
		`{"assigned":{"epoch":"e","revision":7,"error":"no"}}`,
		`{"updates":{"seq":1,"updates":[{"taskID":"","status":{"state":"pending"}}]}}`,
		`{}`, `null`, `[]`, `{"hello":null}`,
	} {
		// The wire is CBOR; JSON seeds are for reading here.
		var v any
		if err := json.Unmarshal([]byte(seed), &v); err != nil {
			f.Fatal(err)
		}
		var m agentMessage
		if json.Unmarshal([]byte(seed), &m) == nil && v != nil {
			v = &m // states as the protocol encodes them
		}
		b, err := cborenc.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m agentMessage
		if err := (codec{}).Unmarshal(data, &m); err != nil {
			return
		}
		if m.Hello != nil {
			n := m.Hello.Node
			n.Status, n.Availability = dao.NodeStatus{}, ""
			_ = n.Validate()
			for _, u := range m.Hello.Tasks {
				judge(t, u)
			}
		}
		if m.Updates != nil {
			for _, u := range m.Updates.Updates {
				judge(t, u)
			}
		}
	})
}

func judge(t *testing.T, u dao.TaskUpdate) {
	if err := checkStatus(u.Status); err == nil {
		st := u.Status
		if !st.State.Valid() || st.State < dao.TaskPreparing || st.State == dao.TaskOrphaned ||
			len(st.Message) > dao.MaxStringBytes || len(st.Err) > dao.MaxStringBytes || len(st.Addresses) > dao.MaxItems {
			t.Fatalf("checkStatus let through %+v", st)
		}
	}
}
