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
//	  "version": 1,
//	  "tokens": [{"secret_sha256": "<64 hex digits>", "expires": "<RFC 3339>"}],
//	  "removed_nodes": ["node-1"],
//	  "revoked_serials": ["<serial in lower-case hexadecimal>"]
//	}
//
// A token record holds the SHA-256 digest of the token's secret, never the secret, and its
// expiry ("expires" is left out for a token that never expires). A revoked join token (by
// RevokeJoinToken or RotateJoinTokens) has no record: the CA forgets it, so it stays refused
// after LoadCA. Unknown fields, a version other than StateVersion, a malformed value or data
// after the JSON object make LoadCA fail with ErrCorruptState.
const StateFile = "state.json"

// StateVersion is the version of StateFile's format that Save writes and LoadCA reads.
const StateVersion = 1

type stateJSON struct {
	Version        int              `json:"version"`
	Tokens         []tokenStateJSON `json:"tokens"`
	RemovedNodes   []string         `json:"removed_nodes"`
	RevokedSerials []string         `json:"revoked_serials"`
}

type tokenStateJSON struct {
	SecretSHA256 string `json:"secret_sha256"`
	Expires      string `json:"expires,omitempty"`
}

// caState is the CA's mutable state, as StateFile holds it.
type caState struct {
	tokens  []tokenEntry
	removed map[string]struct{}
	revoked map[string]struct{}
}

// encodeState returns the CA's state as StateFile holds it.
func (ca *CA) encodeState() ([]byte, error) {
	ca.mu.Lock()
	s := stateJSON{
		Version:        StateVersion,
		Tokens:         make([]tokenStateJSON, 0, len(ca.tokens)),
		RemovedNodes:   make([]string, 0, len(ca.removed)),
		RevokedSerials: make([]string, 0, len(ca.revoked)),
	}
	for _, e := range ca.tokens {
		r := tokenStateJSON{SecretSHA256: hex.EncodeToString(e.hash[:])}
		if !e.expires.IsZero() {
			r.Expires = e.expires.UTC().Format(time.RFC3339Nano)
		}
		s.Tokens = append(s.Tokens, r)
	}
	for id := range ca.removed {
		s.RemovedNodes = append(s.RemovedNodes, id)
	}
	for serial := range ca.revoked {
		s.RevokedSerials = append(s.RevokedSerials, serial)
	}
	ca.mu.Unlock()
	slices.Sort(s.RemovedNodes)
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
	if s.Version != StateVersion {
		return bad("version", "%d, want %d", s.Version, StateVersion)
	}
	st := caState{
		tokens:  make([]tokenEntry, 0, len(s.Tokens)),
		removed: make(map[string]struct{}, len(s.RemovedNodes)),
		revoked: make(map[string]struct{}, len(s.RevokedSerials)),
	}
	for i, r := range s.Tokens {
		var e tokenEntry
		if len(r.SecretSHA256) != 2*len(e.hash) {
			return bad(fmt.Sprintf("tokens[%d].secret_sha256", i), "%d characters, want %d hexadecimal digits", len(r.SecretSHA256), 2*len(e.hash))
		}
		if _, err := hex.Decode(e.hash[:], []byte(r.SecretSHA256)); err != nil {
			return bad(fmt.Sprintf("tokens[%d].secret_sha256", i), "not hexadecimal: %v", err)
		}
		if r.Expires != "" {
			t, err := time.Parse(time.RFC3339Nano, r.Expires)
			if err != nil {
				return bad(fmt.Sprintf("tokens[%d].expires", i), "not an RFC 3339 time: %q", truncate(r.Expires, 80))
			}
			if t.IsZero() {
				return bad(fmt.Sprintf("tokens[%d].expires", i), "the zero time; leave it out for a token that never expires")
			}
			e.expires = t
		}
		st.tokens = append(st.tokens, e)
	}
	for i, id := range s.RemovedNodes {
		if id == "" {
			return bad(fmt.Sprintf("removed_nodes[%d]", i), "empty node ID")
		}
		st.removed[id] = struct{}{}
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
		return caState{removed: map[string]struct{}{}, revoked: map[string]struct{}{}}, nil
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

// MergeState adds to the CA's state the join tokens, removed nodes and revoked serials of
// data (StateFile's format, from MarshalState): the union, so that no revocation is lost
// when two replicas merge at once. A token in both keeps the later expiry. It reports
// whether the CA's state grew. A damaged data changes nothing and gives ErrCorruptState.
// (What only shrinks a state, RevokeJoinToken and ReadmitNode, does not spread so.)
func (ca *CA) MergeState(data []byte) (grew bool, err error) {
	st, err := decodeState(data, "the shared state")
	if err != nil {
		return false, err
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	for _, e := range st.tokens {
		i := slices.IndexFunc(ca.tokens, func(c tokenEntry) bool { return c.hash == e.hash })
		switch {
		case i < 0:
			ca.tokens = append(ca.tokens, e)
			grew = true
		case !ca.tokens[i].expires.IsZero() && (e.expires.IsZero() || e.expires.After(ca.tokens[i].expires)):
			ca.tokens[i].expires = e.expires
			grew = true
		}
	}
	if ca.removed == nil {
		ca.removed = map[string]struct{}{}
	}
	if ca.revoked == nil {
		ca.revoked = map[string]struct{}{}
	}
	for id := range st.removed {
		if _, ok := ca.removed[id]; !ok {
			ca.removed[id] = struct{}{}
			grew = true
		}
	}
	for s := range st.revoked {
		if _, ok := ca.revoked[s]; !ok {
			ca.revoked[s] = struct{}{}
			grew = true
		}
	}
	return grew, nil
}
