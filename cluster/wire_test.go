package cluster

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opendao/dao"
)

// The codec's shortcut for an assignment gives what json.Marshal gives, and what the
// agent decodes back.
func TestCodecAssignmentShortcut(t *testing.T) {
	a := dao.Assignment{Epoch: "e", Revision: 7,
		Tasks: []dao.Task{{ID: "web.1.x", ServiceID: "web", Slot: 1, DesiredState: dao.TaskRunning}}}
	raw, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	m := &controlMessage{Assignment: raw}
	got, err := codec{}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("codec.Marshal = %s\nwant %s", got, want)
	}
	var back agentControlMessage
	if err := (codec{}).Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&a, back.Assignment); diff != "" {
		t.Errorf("decoded assignment (-sent +got):\n%s", diff)
	}
	// Anything else goes through json.Marshal.
	hb, err := codec{}.Marshal(&controlMessage{Heartbeat: &heartbeat{Seq: 3}})
	if err != nil || string(hb) != `{"heartbeat":{"seq":3}}` {
		t.Errorf("heartbeat encodes to %s, %v", hb, err)
	}
}
