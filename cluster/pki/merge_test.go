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

// What only shrinks a state spreads too: a join token revoked at one replica, or all of
// them rotated, is refused at the other after a merge, whichever way; a node readmitted
// at one is readmitted at the other; and a node removed at one while readmitted at the
// other stays removed. The replicas end with the same state in any order of merging.
func TestMergeStateRevocations(t *testing.T) {
	a, err := pki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := a.Save(dir); err != nil {
		t.Fatal(err)
	}
	b, err := pki.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	exchange := func() {
		t.Helper()
		sa, _ := a.MarshalState()
		sb, _ := b.MarshalState()
		if _, err := a.MergeState(sb); err != nil {
			t.Fatal(err)
		}
		if _, err := b.MergeState(sa); err != nil {
			t.Fatal(err)
		}
		ma, _ := a.MarshalState()
		mb, _ := b.MarshalState()
		if string(ma) != string(mb) {
			t.Fatalf("merged states differ:\n%s\n%s", ma, mb)
		}
	}
	tok1, _ := a.NewJoinToken()
	tok2, _ := a.NewJoinToken()
	a.RemoveNode("n1")
	a.RemoveNode("n2")
	exchange()
	if b.CheckJoinToken(tok1) != nil || !b.IsRemoved("n1") {
		t.Fatal("the first exchange did not spread a's state")
	}

	// b revokes tok1, readmits n1 and removes n3; a readmits n2.
	if err := b.RevokeJoinToken(tok1); err != nil {
		t.Fatal(err)
	}
	b.ReadmitNode("n1")
	a.ReadmitNode("n2")
	b.RemoveNode("n3")
	exchange()
	if err := a.CheckJoinToken(tok1); !errors.Is(err, pki.ErrInvalidToken) {
		t.Errorf("a token revoked at b, at a: %v, want ErrInvalidToken", err)
	}
	if err := a.CheckJoinToken(tok2); err != nil {
		t.Errorf("a token not revoked: %v", err)
	}
	for _, ca := range []*pki.CA{a, b} {
		if ca.IsRemoved("n1") || ca.IsRemoved("n2") || !ca.IsRemoved("n3") {
			t.Errorf("removed nodes after readmissions: %v, want [n3]", ca.RemovedNodes())
		}
	}

	// At once: a removes n1 again; a readmits n3 while b readmits and removes it again:
	// the later change (b's removal) wins at both.
	a.RemoveNode("n1")
	a.ReadmitNode("n3")
	b.ReadmitNode("n3")
	b.RemoveNode("n3")
	exchange()
	for _, ca := range []*pki.CA{a, b} {
		if !ca.IsRemoved("n1") || !ca.IsRemoved("n3") {
			t.Errorf("removed nodes: %v, want [n1 n3]", ca.RemovedNodes())
		}
	}

	// Rotation at b revokes every token a holds, after a merge.
	tok3, _ := a.NewJoinToken()
	exchange()
	tok4, err := b.RotateJoinTokens()
	if err != nil {
		t.Fatal(err)
	}
	exchange()
	for _, tok := range []string{tok2, tok3} {
		if err := a.CheckJoinToken(tok); !errors.Is(err, pki.ErrInvalidToken) {
			t.Errorf("a token rotated away at b, at a: %v", err)
		}
	}
	if err := a.CheckJoinToken(tok4); err != nil {
		t.Errorf("the rotated-in token at a: %v", err)
	}
	// A state saved and loaded keeps the revocations: merging an old copy back brings
	// nothing back.
	if err := a.Save(dir); err != nil {
		t.Fatal(err)
	}
	c, err := pki.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	old := []byte(`{"version":1,"tokens":[],"removed_nodes":["n9"],"revoked_serials":[]}`)
	if _, err := c.MergeState(old); err != nil {
		t.Fatalf("a version 1 state: %v", err)
	}
	if !c.IsRemoved("n9") || c.CheckJoinToken(tok3) == nil {
		t.Errorf("after merging a version 1 state: removed %v, tok3 %v", c.RemovedNodes(), c.CheckJoinToken(tok3))
	}
}
