package pki

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"slices"
	"strings"
	"time"
)

// StateFile is the file, next to CACertFile and CAKeyFile, in which Save keeps the CA's
// join tokens and revocations and from which LoadCA restores them.
//
// It is JSON, written with mode 0600:
//
//	{
//	  "version": 2,
//	  "tokens": [{"secret_sha256": "<64 hex digits>", "expires": "<RFC 3339>"}],
//	  "revoked_tokens": [{"secret_sha256": "<64 hex digits>", "expires": "<RFC 3339>"}],
//	  "nodes": [{"id": "node-1", "changes": 1}],
//	  "revoked_serials": ["<serial in lower-case hexadecimal>"]
//	}
//
// A token record holds the SHA-256 digest of the token's secret, never the secret, and its
// expiry ("expires" is left out for a token that never expires). A join token revoked by
// RevokeJoinToken or RotateJoinTokens is in "revoked_tokens" until it would have expired
// (PruneJoinTokens), so that merging the state of a replica that still holds it
// (MergeState) does not bring it back. "nodes" counts, for each node ID, the times it was
// removed (RemoveNode) and readmitted (ReadmitNode): an odd count is a removed node. Unknown
// fields, a version StateVersion does not read, a malformed value or data after the JSON
// object make LoadCA fail with ErrCorruptState. Version 1 (before "revoked_tokens" and
// "nodes", with "removed_nodes": ["node-1"]) still loads.
const StateFile = "state.json"

// StateVersion is the version of StateFile's format that Save writes. LoadCA reads it and
// version 1.
const StateVersion = 2

type stateJSON struct {
	Version        int              `json:"version"`
	Tokens         []tokenStateJSON `json:"tokens"`
	RevokedTokens  []tokenStateJSON `json:"revoked_tokens,omitempty"`
	Nodes          []nodeStateJSON  `json:"nodes,omitempty"`
	RemovedNodes   []string         `json:"removed_nodes,omitempty"` // version 1
	RevokedSerials []string         `json:"revoked_serials"`
}

type tokenStateJSON struct {
	SecretSHA256 string `json:"secret_sha256"`
	Expires      string `json:"expires,omitempty"`
}

type nodeStateJSON struct {
	ID      string `json:"id"`
	Changes uint64 `json:"changes"`
}

// caState is the CA's mutable state, as StateFile holds it.
type caState struct {
	tokens  []tokenEntry
	dropped []tokenEntry
	removed map[string]uint64
	revoked map[string]struct{}
}

// encodeState returns the CA's state as StateFile holds it.
func (ca *CA) encodeState() ([]byte, error) {
	ca.mu.Lock()
	s := stateJSON{
		Version:        StateVersion,
		Tokens:         encodeTokens(ca.tokens),
		RevokedTokens:  encodeTokens(ca.dropped),
		Nodes:          make([]nodeStateJSON, 0, len(ca.removed)),
		RevokedSerials: make([]string, 0, len(ca.revoked)),
	}
	for id, c := range ca.removed {
		s.Nodes = append(s.Nodes, nodeStateJSON{ID: id, Changes: c})
	}
	for serial := range ca.revoked {
		s.RevokedSerials = append(s.RevokedSerials, serial)
	}
	ca.mu.Unlock()
	slices.SortFunc(s.Nodes, func(a, b nodeStateJSON) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(s.RevokedSerials, func(a, b string) int {
		if len(a) != len(b) {
			return len(a) - len(b)
		}
		return strings.Compare(a, b)
	})
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("pki: save CA state: %w", err)
	}
	return append(data, '\n'), nil
}

func encodeTokens(es []tokenEntry) []tokenStateJSON {
	rs := make([]tokenStateJSON, 0, len(es))
	for _, e := range es {
		r := tokenStateJSON{SecretSHA256: hex.EncodeToString(e.hash[:])}
		if !e.expires.IsZero() {
			r.Expires = e.expires.UTC().Format(time.RFC3339Nano)
		}
		rs = append(rs, r)
	}
	// In one order whatever the order they were made or merged in, so that replicas with
	// the same state write the same bytes.
	slices.SortFunc(rs, func(a, b tokenStateJSON) int { return strings.Compare(a.SecretSHA256, b.SecretSHA256) })
	return rs
}

// decodeState parses StateFile's content; name is the file's name, for errors. Every error
// wraps ErrCorruptState and names the file and the field.
func decodeState(data []byte, name string) (caState, error) {
	bad := func(field, format string, args ...any) (caState, error) {
		return caState{}, fmt.Errorf("pki: load CA: %s: %w: %s: %s", name, ErrCorruptState, field, fmt.Sprintf(format, args...))
	}
	var s stateJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		field := "(document)"
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			field = te.Field
		}
		return bad(field, "%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("(document)", "data after the JSON object")
	}
	switch {
	case s.Version == 1 && (s.RevokedTokens != nil || s.Nodes != nil):
		return bad("version", "1, with fields of version 2")
	case s.Version == StateVersion && s.RemovedNodes != nil:
		return bad("removed_nodes", "a field of version 1 in version %d (it is \"nodes\" now)", StateVersion)
	case s.Version != 1 && s.Version != StateVersion:
		return bad("version", "%d, want %d (or 1)", s.Version, StateVersion)
	}
	st := caState{
		removed: make(map[string]uint64, len(s.Nodes)+len(s.RemovedNodes)),
		revoked: make(map[string]struct{}, len(s.RevokedSerials)),
	}
	var err error
	if st.tokens, err = decodeTokens(s.Tokens, "tokens"); err != nil {
		return caState{}, fmt.Errorf("pki: load CA: %s: %w: %v", name, ErrCorruptState, err)
	}
	if st.dropped, err = decodeTokens(s.RevokedTokens, "revoked_tokens"); err != nil {
		return caState{}, fmt.Errorf("pki: load CA: %s: %w: %v", name, ErrCorruptState, err)
	}
	for i, id := range s.RemovedNodes {
		if id == "" {
			return bad(fmt.Sprintf("removed_nodes[%d]", i), "empty node ID")
		}
		st.removed[id] = 1
	}
	for i, n := range s.Nodes {
		if n.ID == "" {
			return bad(fmt.Sprintf("nodes[%d].id", i), "empty node ID")
		}
		if n.Changes == 0 {
			return bad(fmt.Sprintf("nodes[%d].changes", i), "0: a node never removed has no record")
		}
		if _, dup := st.removed[n.ID]; dup {
			return bad(fmt.Sprintf("nodes[%d].id", i), "%q named twice", truncate(n.ID, 80))
		}
		st.removed[n.ID] = n.Changes
	}
	for i, serial := range s.RevokedSerials {
		n, ok := new(big.Int).SetString(serial, 16)
		if !ok || n.Sign() <= 0 || n.Text(16) != serial {
			return bad(fmt.Sprintf("revoked_serials[%d]", i), "%q is not a positive serial number in lower-case hexadecimal without leading zeros", truncate(serial, 80))
		}
		st.revoked[serial] = struct{}{}
	}
	return st, nil
}

// decodeTokens decodes the token records of field; its error names the record and field
// (the caller adds the file).
func decodeTokens(rs []tokenStateJSON, field string) ([]tokenEntry, error) {
	es := make([]tokenEntry, 0, len(rs))
	for i, r := range rs {
		var e tokenEntry
		if len(r.SecretSHA256) != 2*len(e.hash) {
			return nil, fmt.Errorf("%s[%d].secret_sha256: %d characters, want %d hexadecimal digits", field, i, len(r.SecretSHA256), 2*len(e.hash))
		}
		if _, err := hex.Decode(e.hash[:], []byte(r.SecretSHA256)); err != nil {
			return nil, fmt.Errorf("%s[%d].secret_sha256: not hexadecimal: %v", field, i, err)
		}
		if r.Expires != "" {
			t, err := time.Parse(time.RFC3339Nano, r.Expires)
			if err != nil {
				return nil, fmt.Errorf("%s[%d].expires: not an RFC 3339 time: %q", field, i, truncate(r.Expires, 80))
			}
			if t.IsZero() {
				return nil, fmt.Errorf("%s[%d].expires: the zero time; leave it out for a token that never expires", field, i)
			}
			e.expires = t
		}
		es = append(es, e)
	}
	return es, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// loadState reads StateFile at name. A missing file (a CA saved before the file existed)
// gives an empty state; a file others may read or write gives ErrInsecureKeyFile.
func loadState(name string) (caState, error) {
	fi, err := os.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return caState{removed: map[string]uint64{}, revoked: map[string]struct{}{}}, nil
	}
	if err != nil {
		return caState{}, fmt.Errorf("pki: load CA: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return caState{}, fmt.Errorf("pki: load CA: %s: %w: not a regular file", name, ErrCorruptState)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return caState{}, fmt.Errorf("pki: load CA: %s has mode %04o, want 0600 or stricter: %w", name, perm, ErrInsecureKeyFile)
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return caState{}, fmt.Errorf("pki: load CA: %w", err)
	}
	return decodeState(data, name)
}

// MarshalState returns the CA's join tokens (digests), removed nodes and revoked serials,
// in StateFile's format: what control-plane replicas that share a CA exchange (through
// their shared store) so that a token made by one is good at all of them, and a node that
// one removed is refused by all.
func (ca *CA) MarshalState() ([]byte, error) { return ca.encodeState() }

// MergeState takes into the CA's state that of data (StateFile's format, from
// MarshalState), so that control-plane replicas that share a CA end with the same state
// whatever the order they merge in, and no change is lost when two merge at once: the
// join tokens of either (a token in both keeps the later expiry) but those either revoked
// (RevokeJoinToken, RotateJoinTokens), the revoked serials of either, and for each node
// the later of its removals and readmissions (RemoveNode, ReadmitNode; a node removed at
// one replica while readmitted at another stays removed). It reports whether the CA's
// state changed. A damaged data changes nothing and gives ErrCorruptState.
func (ca *CA) MergeState(data []byte) (changed bool, err error) {
	st, err := decodeState(data, "the shared state")
	if err != nil {
		return false, err
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	for _, e := range st.dropped {
		i := slices.IndexFunc(ca.dropped, func(c tokenEntry) bool { return c.hash == e.hash })
		switch {
		case i < 0:
			ca.dropped = append(ca.dropped, e)
			changed = true
		case !ca.dropped[i].expires.IsZero() && (e.expires.IsZero() || e.expires.After(ca.dropped[i].expires)):
			ca.dropped[i].expires = e.expires
			changed = true
		}
	}
	dropped := func(e tokenEntry) bool {
		return slices.ContainsFunc(ca.dropped, func(d tokenEntry) bool { return d.hash == e.hash })
	}
	for _, e := range st.tokens {
		if dropped(e) {
			continue
		}
		i := slices.IndexFunc(ca.tokens, func(c tokenEntry) bool { return c.hash == e.hash })
		switch {
		case i < 0:
			ca.tokens = append(ca.tokens, e)
			changed = true
		case !ca.tokens[i].expires.IsZero() && (e.expires.IsZero() || e.expires.After(ca.tokens[i].expires)):
			ca.tokens[i].expires = e.expires
			changed = true
		}
	}
	// A revoked token stays revoked.
	n := len(ca.tokens)
	ca.tokens = slices.DeleteFunc(ca.tokens, dropped)
	changed = changed || len(ca.tokens) != n
	if ca.removed == nil {
		ca.removed = map[string]uint64{}
	}
	if ca.revoked == nil {
		ca.revoked = map[string]struct{}{}
	}
	for id, c := range st.removed {
		if c > ca.removed[id] {
			ca.removed[id] = c
			changed = true
		}
	}
	for s := range st.revoked {
		if _, ok := ca.revoked[s]; !ok {
			ca.revoked[s] = struct{}{}
			changed = true
		}
	}
	return changed, nil
}
