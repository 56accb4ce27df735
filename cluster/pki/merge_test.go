package pki_test

import (
	"errors"
	"math/big"
	"testing"

	"github.com/opendao/dao/cluster/pki"
)

// Two replicas' states merge into the union: a token made at one joins at the other, and
// a node removed at one is refused at the other.
func TestMergeState(t *testing.T) {
	a, err := pki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := a.Save(dir); err != nil {
		t.Fatal(err)
	}
	b, err := pki.LoadCA(dir) // the same root, as replicas share it
	if err != nil {
		t.Fatal(err)
	}
	tokA, err := a.NewJoinToken()
	if err != nil {
		t.Fatal(err)
	}
	b.RemoveNode("gone")
	if err := b.RevokeSerial(big.NewInt(77)); err != nil {
		t.Fatal(err)
	}
	sa, _ := a.MarshalState()
	sb, _ := b.MarshalState()
	if grew, err := b.MergeState(sa); err != nil || !grew {
		t.Fatalf("b.MergeState(a) = %v, %v; want grown", grew, err)
	}
	if grew, err := a.MergeState(sb); err != nil || !grew {
		t.Fatalf("a.MergeState(b) = %v, %v; want grown", grew, err)
	}
	if err := b.CheckJoinToken(tokA); err != nil {
		t.Errorf("a's token at b: %v", err)
	}
	ma, _ := a.MarshalState()
	mb, _ := b.MarshalState()
	if string(ma) != string(mb) {
		t.Errorf("merged states differ:\n%s\n%s", ma, mb)
	}
	if grew, _ := a.MergeState(mb); grew {
		t.Error("merging the same state again grew it")
	}
	if _, err := a.MergeState([]byte(`{"version":1,"tokens":[{"secret_sha256":"zz"}]}`)); !errors.Is(err, pki.ErrCorruptState) {
		t.Errorf("a damaged state: %v, want ErrCorruptState", err)
	}
}
