package pki_test

import (
	"crypto/ecdsa"
	"crypto/x509"
	"testing"
	"time"

	"github.com/opendao/dao/clock"
	"github.com/opendao/dao/cluster/pki"
)

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newCA(t *testing.T) (*pki.CA, *clock.Manual) {
	t.Helper()
	clk := clock.NewManual(epoch)
	ca, err := pki.NewCA(pki.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	return ca, clk
}

// issueNode returns a node's key and certificate.
func issueNode(t *testing.T, ca *pki.CA, id string, lifetime time.Duration) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := pki.NewNodeKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, id)
	if err != nil {
		t.Fatal(err)
	}
	der, err := ca.IssueNodeCert(csr, id, lifetime)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}
