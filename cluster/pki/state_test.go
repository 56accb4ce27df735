package pki_test

import (
	"crypto/x509"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/opendao/dao/clock"
	"github.com/opendao/dao/cluster/pki"
)

// TestSaveLoadKeepsState restarts a CA (Save, then LoadCA) and checks that it still refuses
// what it refused and accepts what it accepted.
func TestSaveLoadKeepsState(t *testing.T) {
	t.Parallel()
	ca, clk := newCA(t)
	_, revokedCert := issueNode(t, ca, "leaky", 0)
	_, removedCert := issueNode(t, ca, "gone", 0)
	_, goodCert := issueNode(t, ca, "good", 0)
	if err := ca.RevokeSerial(revokedCert.SerialNumber); err != nil {
		t.Fatal(err)
	}
	ca.RemoveNode("gone")
	valid, err := ca.NewJoinToken(pki.WithoutTokenExpiry())
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := ca.NewJoinToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.RevokeJoinToken(revoked); err != nil {
		t.Fatal(err)
	}
	short, err := ca.NewJoinToken(pki.WithTokenTTL(time.Hour))
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	if err := ca.Save(dir); err != nil {
		t.Fatal(err)
	}
	stateFile := filepath.Join(dir, pki.StateFile)
	fi, err := os.Stat(stateFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode())
	}
	data, err := os.ReadFile(stateFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{valid, revoked, short} {
		secret := tok[strings.LastIndexByte(tok, '-')+1:]
		if strings.Contains(string(data), secret) {
			t.Errorf("the state file holds a token's secret:\n%s", data)
		}
	}

	clk2 := clock.NewManual(clk.Now())
	loaded, err := pki.LoadCA(dir, pki.WithClock(clk2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := loaded.Verify([]*x509.Certificate{revokedCert}); !errors.Is(err, pki.ErrRevoked) {
		t.Errorf("revoked serial after load: %v, want ErrRevoked", err)
	}
	if _, err := loaded.Verify([]*x509.Certificate{removedCert}); !errors.Is(err, pki.ErrNodeRemoved) {
		t.Errorf("removed node after load: %v, want ErrNodeRemoved", err)
	}
	if id, err := loaded.Verify([]*x509.Certificate{goodCert}); err != nil || id != "good" {
		t.Errorf("good node after load: %q, %v", id, err)
	}
	if err := loaded.CheckJoinToken(valid); err != nil {
		t.Errorf("valid token after load: %v", err)
	}
	if err := loaded.CheckJoinToken(revoked); !errors.Is(err, pki.ErrInvalidToken) || errors.Is(err, pki.ErrTokenExpired) {
		t.Errorf("revoked token after load: %v, want ErrInvalidToken", err)
	}
	if err := loaded.CheckJoinToken(short); err != nil {
		t.Errorf("unexpired token after load: %v", err)
	}
	clk2.Advance(time.Hour)
	if err := loaded.CheckJoinToken(short); !errors.Is(err, pki.ErrTokenExpired) {
		t.Errorf("expired token after load: %v, want ErrTokenExpired", err)
	}
	if err := loaded.CheckJoinToken(valid); err != nil {
		t.Errorf("token without expiry after load: %v", err)
	}
	if got := loaded.RemovedNodes(); len(got) != 1 || got[0] != "gone" {
		t.Errorf("RemovedNodes after load: %v", got)
	}
	if got := loaded.RevokedSerials(); len(got) != 1 || got[0].Cmp(revokedCert.SerialNumber) != 0 {
		t.Errorf("RevokedSerials after load: %v", got)
	}

	// Save of the loaded CA writes the same state.
	dir2 := t.TempDir()
	if err := loaded.Save(dir2); err != nil {
		t.Fatal(err)
	}
	data2, err := os.ReadFile(filepath.Join(dir2, pki.StateFile))
	if err != nil {
		t.Fatal(err)
	}
	if string(data2) != string(data) {
		t.Errorf("state changed across a load:\n%s\nthen\n%s", data, data2)
	}
}

// TestLoadCAWithoutState loads a CA saved before the state file existed.
func TestLoadCAWithoutState(t *testing.T) {
	t.Parallel()
	ca, _ := newCA(t)
	ca.RemoveNode("n1")
	dir := t.TempDir()
	if err := ca.Save(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, pki.StateFile)); err != nil {
		t.Fatal(err)
	}
	loaded, err := pki.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.JoinTokens() != 0 || len(loaded.RemovedNodes()) != 0 || len(loaded.RevokedSerials()) != 0 {
		t.Errorf("CA without a state file has state: %d tokens, %v, %v", loaded.JoinTokens(), loaded.RemovedNodes(), loaded.RevokedSerials())
	}
	// It still works.
	_, cert := issueNode(t, loaded, "n1", 0)
	if _, err := loaded.Verify([]*x509.Certificate{cert}); err != nil {
		t.Error(err)
	}
}

func TestLoadCARefusesInsecureState(t *testing.T) {
	t.Parallel()
	ca, _ := newCA(t)
	dir := t.TempDir()
	if err := ca.Save(dir); err != nil {
		t.Fatal(err)
	}
	stateFile := filepath.Join(dir, pki.StateFile)
	for _, mode := range []os.FileMode{0o644, 0o640, 0o602} {
		if err := os.Chmod(stateFile, mode); err != nil {
			t.Fatal(err)
		}
		_, err := pki.LoadCA(dir)
		if !errors.Is(err, pki.ErrInsecureKeyFile) || !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), stateFile) {
			t.Errorf("LoadCA with a %04o state file: %v", mode, err)
		}
	}
	if err := os.Chmod(stateFile, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.LoadCA(dir); err != nil {
		t.Errorf("LoadCA with a 0400 state file: %v", err)
	}
}

func TestLoadCARefusesCorruptState(t *testing.T) {
	t.Parallel()
	ca, _ := newCA(t)
	if _, err := ca.NewJoinToken(); err != nil {
		t.Fatal(err)
	}
	ca.RemoveNode("n1")
	if err := ca.RevokeSerial(big.NewInt(0xabc)); err != nil {
		t.Fatal(err)
	}
	good := t.TempDir()
	if err := ca.Save(good); err != nil {
		t.Fatal(err)
	}
	saved, err := os.ReadFile(filepath.Join(good, pki.StateFile))
	if err != nil {
		t.Fatal(err)
	}
	const hash = `"` + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + `"`
	for name, tc := range map[string]struct {
		data, field string
	}{
		"empty":            {"", "(document)"},
		"truncated":        {string(saved[:len(saved)/2]), "(document)"},
		"garbage":          {"\x00\xffnot json", "(document)"},
		"array":            {"[]", "(document)"},
		"trailing":         {string(saved) + "{}", "(document)"},
		"unknown field":    {`{"version":1,"secrets":[]}`, "secrets"},
		"no version":       {`{"tokens":[]}`, "version"},
		"version 3":        {`{"version":3}`, "version"},
		"v1 with nodes":    {`{"version":1,"nodes":[{"id":"a","changes":1}]}`, "version"},
		"v2 removed_nodes": {`{"version":2,"removed_nodes":["a"]}`, "removed_nodes"},
		"node no id":       {`{"version":2,"nodes":[{"id":"","changes":1}]}`, "nodes[0].id"},
		"node 0 changes":   {`{"version":2,"nodes":[{"id":"a","changes":0}]}`, "nodes[0].changes"},
		"node twice":       {`{"version":2,"nodes":[{"id":"a","changes":1},{"id":"a","changes":2}]}`, "nodes[1].id"},
		"node changes neg": {`{"version":2,"nodes":[{"id":"a","changes":-1}]}`, "nodes.changes"},
		"revoked tok hash": {`{"version":2,"revoked_tokens":[{"secret_sha256":"ab"}]}`, "revoked_tokens[0].secret_sha256"},
		"version string":   {`{"version":"1"}`, "version"},
		"tokens object":    {`{"version":1,"tokens":{}}`, "tokens"},
		"hash number":      {`{"version":1,"tokens":[{"secret_sha256":5}]}`, "tokens.secret_sha256"},
		"hash short":       {`{"version":1,"tokens":[{"secret_sha256":"abcd"}]}`, "tokens[0].secret_sha256"},
		"hash not hex":     {`{"version":1,"tokens":[{"secret_sha256":"` + strings.Repeat("z", 64) + `"}]}`, "tokens[0].secret_sha256"},
		"expires bad":      {`{"version":1,"tokens":[{"secret_sha256":` + hash + `,"expires":"tomorrow"}]}`, "tokens[0].expires"},
		"expires number":   {`{"version":1,"tokens":[{"secret_sha256":` + hash + `,"expires":12}]}`, "tokens.expires"},
		"expires zero":     {`{"version":1,"tokens":[{"secret_sha256":` + hash + `,"expires":"0001-01-01T00:00:00Z"}]}`, "tokens[0].expires"},
		"removed empty":    {`{"version":1,"removed_nodes":[""]}`, "removed_nodes[0]"},
		"removed number":   {`{"version":1,"removed_nodes":[1]}`, "removed_nodes"},
		"serial not hex":   {`{"version":1,"revoked_serials":["xyz"]}`, "revoked_serials[0]"},
		"serial zero":      {`{"version":1,"revoked_serials":["0"]}`, "revoked_serials[0]"},
		"serial negative":  {`{"version":1,"revoked_serials":["-1"]}`, "revoked_serials[0]"},
		"serial upper":     {`{"version":1,"revoked_serials":["ABC"]}`, "revoked_serials[0]"},
		"serial leading 0": {`{"version":1,"revoked_serials":["0abc"]}`, "revoked_serials[0]"},
		"serial number":    {`{"version":1,"revoked_serials":[2748]}`, "revoked_serials"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := ca.Save(dir); err != nil {
				t.Fatal(err)
			}
			stateFile := filepath.Join(dir, pki.StateFile)
			if err := os.WriteFile(stateFile, []byte(tc.data), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := pki.LoadCA(dir)
			if !errors.Is(err, pki.ErrCorruptState) || !errdefs.IsDataLoss(err) {
				t.Fatalf("LoadCA: %v; want ErrCorruptState (DataLoss)", err)
			}
			if msg := err.Error(); !strings.Contains(msg, stateFile) || !strings.Contains(msg, tc.field) {
				t.Errorf("LoadCA: %v; want an error naming %s and %s", err, stateFile, tc.field)
			}
		})
	}
}
