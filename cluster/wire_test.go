package cluster

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opendao/dao"
	"github.com/opendao/dao/internal/cborenc"
)

// The codec's shortcut for an assignment gives what encoding the message gives, and what
// the agent decodes back.
func TestCodecAssignmentShortcut(t *testing.T) {
	a := dao.Assignment{Epoch: "e", Revision: 7,
		Tasks: []dao.Task{{ID: "web.1.x", ServiceID: "web", Slot: 1, DesiredState: dao.TaskRunning}}}
	raw, err := cborenc.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	m := &controlMessage{Assignment: raw}
	got, err := codec{}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	want, err := cborenc.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("codec.Marshal = %x\nwant %x", got, want)
	}
	var back agentControlMessage
	if err := (codec{}).Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&a, back.Assignment); diff != "" {
		t.Errorf("decoded assignment (-sent +got):\n%s", diff)
	}
	// Anything else is encoded whole, with the JSON field names.
	hb, err := codec{}.Marshal(&controlMessage{Heartbeat: &heartbeat{Seq: 3}})
	var back2 map[string]map[string]uint64
	if err != nil || cborenc.Unmarshal(hb, &back2) != nil || back2["heartbeat"]["seq"] != 3 || len(back2) != 1 {
		t.Errorf("heartbeat encodes to %x (%v), %v", hb, back2, err)
	}
}
