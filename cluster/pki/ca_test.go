package pki_test

import (
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/opendao/dao"
	"github.com/opendao/dao/cluster/pki"
)

func TestNewCADefaults(t *testing.T) {
	t.Parallel()
	ca, _ := newCA(t)
	c := ca.Certificate()
	if !c.IsCA || c.Subject.CommonName != pki.DefaultCommonName {
		t.Errorf("CA %v, IsCA %v", c.Subject, c.IsCA)
	}
	if got := c.NotAfter.Sub(epoch); got != pki.DefaultCALifetime {
		t.Errorf("lifetime %v, want %v", got, pki.DefaultCALifetime)
	}
	if c.PublicKeyAlgorithm.String() != "ECDSA" {
		t.Errorf("key %v", c.PublicKeyAlgorithm)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
}

func TestNewCAOptions(t *testing.T) {
	t.Parallel()
	ca, err := pki.NewCA(pki.WithCALifetime(time.Hour), pki.WithSubject("edge CA", "acme"))
	if err != nil {
		t.Fatal(err)
	}
	c := ca.Certificate()
	if c.Subject.CommonName != "edge CA" || len(c.Subject.Organization) != 1 || c.Subject.Organization[0] != "acme" {
		t.Errorf("subject %v", c.Subject)
	}
	if d := c.NotAfter.Sub(c.NotBefore); d != time.Hour+5*time.Minute {
		t.Errorf("validity %v", d)
	}

	_, err = pki.NewCA(pki.WithClock(nil), pki.WithCALifetime(time.Second), pki.WithSubject("", "x"), nil)
	for _, want := range []string{"WithClock(nil)", "WithCALifetime(1s)", "WithSubject", "nil option"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
	if !errors.Is(err, pki.ErrInvalidOption) || !errors.Is(err, dao.ErrInvalid) || !errdefs.IsInvalidArgument(err) {
		t.Errorf("error %v is not of class ErrInvalidOption/dao.ErrInvalid", err)
	}
}

func TestSaveLoad(t *testing.T) {
	t.Parallel()
	ca, clk := newCA(t)
	dir := filepath.Join(t.TempDir(), "ca")
	if err := ca.Save(dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, pki.CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", fi.Mode())
	}
	loaded, err := pki.LoadCA(dir, pki.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Pin() != ca.Pin() {
		t.Error("loaded CA has another certificate")
	}
	// The loaded key signs certificates the original CA accepts.
	_, cert := issueNode(t, loaded, "n1", 0)
	if _, err := ca.Verify([]*x509.Certificate{cert}); err != nil {
		t.Errorf("original CA refuses the loaded CA's certificate: %v", err)
	}
}

func TestLoadCARefusesInsecureKey(t *testing.T) {
	t.Parallel()
	ca, _ := newCA(t)
	dir := t.TempDir()
	if err := ca.Save(dir); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, pki.CAKeyFile)
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := pki.LoadCA(dir)
	if !errors.Is(err, pki.ErrInsecureKeyFile) || !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), keyFile) {
		t.Errorf("LoadCA with a 0644 key: %v", err)
	}
}

func TestLoadCARefusesMismatchedKey(t *testing.T) {
	t.Parallel()
	a, _ := newCA(t)
	b, _ := newCA(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	if err := a.Save(dirA); err != nil {
		t.Fatal(err)
	}
	if err := b.Save(dirB); err != nil {
		t.Fatal(err)
	}
	// A's certificate with B's key.
	keyB, err := os.ReadFile(filepath.Join(dirB, pki.CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dirA, pki.CAKeyFile)
	if err := os.WriteFile(keyFile, keyB, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = pki.LoadCA(dirA)
	if !errors.Is(err, pki.ErrInvalidCA) || !errors.Is(err, dao.ErrInvalid) || !strings.Contains(err.Error(), keyFile) ||
		!strings.Contains(err.Error(), "does not match") {
		t.Errorf("LoadCA with another CA's key: %v", err)
	}
}

func TestLoadCARefusesGarbage(t *testing.T) {
	t.Parallel()
	ca, _ := newCA(t)
	for name, tc := range map[string]struct {
		file, data string
	}{
		"no PEM in cert":  {pki.CACertFile, "hello"},
		"key as cert":     {pki.CACertFile, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"},
		"bad cert DER":    {pki.CACertFile, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
		"no PEM in key":   {pki.CAKeyFile, ""},
		"bad key DER":     {pki.CAKeyFile, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"},
		"trailing in key": {pki.CAKeyFile, "x"}, // replaced below
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := ca.Save(dir); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, tc.file)
			data := []byte(tc.data)
			if name == "trailing in key" {
				old, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				data = append(old, "junk"...)
			}
			if err := os.WriteFile(file, data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := pki.LoadCA(dir)
			if !errors.Is(err, pki.ErrInvalidCA) || !strings.Contains(err.Error(), file) {
				t.Errorf("LoadCA: %v; want ErrInvalidCA naming %s", err, file)
			}
		})
	}
	if _, err := pki.LoadCA(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadCA of a missing directory: %v", err)
	}
}
