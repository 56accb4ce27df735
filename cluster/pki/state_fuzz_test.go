package pki

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzLoadState checks that the state file decoder never panics, that every error it
// returns is ErrCorruptState, and that what it accepts encodes back to a state it decodes
// the same way.
func FuzzLoadState(f *testing.F) {
	f.Add([]byte(`{"version":1,"tokens":[],"removed_nodes":[],"revoked_serials":[]}`))
	f.Add([]byte(`{"version":1,"tokens":[{"secret_sha256":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","expires":"2026-01-03T03:04:05Z"}],"removed_nodes":["n1"],"revoked_serials":["abc"]}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":1,"revoked_serials":["0abc"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := decodeState(data, StateFile)
		if err != nil {
			if !errors.Is(err, ErrCorruptState) {
				t.Fatalf("error %v is not ErrCorruptState", err)
			}
			return
		}
		ca := &CA{tokens: st.tokens, removed: st.removed, revoked: st.revoked}
		enc, err := ca.encodeState()
		if err != nil {
			t.Fatal(err)
		}
		st2, err := decodeState(enc, StateFile)
		if err != nil {
			t.Fatalf("decoding the re-encoded state: %v\n%s", err, enc)
		}
		ca2 := &CA{tokens: st2.tokens, removed: st2.removed, revoked: st2.revoked}
		enc2, err := ca2.encodeState()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("re-encoding changed the state:\n%s\nthen\n%s", enc, enc2)
		}
	})
}
