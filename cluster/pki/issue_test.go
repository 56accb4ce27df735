package pki_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	mathrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/opendao/dao"
	"github.com/opendao/dao/cluster/pki"
)

func TestIssueNodeCert(t *testing.T) {
	t.Parallel()
	ca, _ := newCA(t)
	_, cert := issueNode(t, ca, "node-1", 0)
	if cert.Subject.CommonName != "node-1" || len(cert.URIs) != 1 || cert.URIs[0].String() != "dao://node/node-1" {
		t.Errorf("names: CN %q, URIs %v", cert.Subject.CommonName, cert.URIs)
	}
	if got := cert.NotAfter.Sub(epoch); got != pki.DefaultNodeCertLifetime {
		t.Errorf("lifetime %v", got)
	}
	eku := map[x509.ExtKeyUsage]bool{}
	for _, u := range cert.ExtKeyUsage {
		eku[u] = true
	}
	if !eku[x509.ExtKeyUsageClientAuth] || !eku[x509.ExtKeyUsageServerAuth] || cert.IsCA {
		t.Errorf("usages %v, IsCA %v", cert.ExtKeyUsage, cert.IsCA)
	}
	if id, err := pki.NodeIDFromCert(cert); err != nil || id != "node-1" {
		t.Errorf("NodeIDFromCert: %q, %v", id, err)
	}
	if id, err := ca.Verify([]*x509.Certificate{cert}); err != nil || id != "node-1" {
		t.Errorf("Verify: %q, %v", id, err)
	}
	// Never past the CA.
	short, err := pki.NewCA(pki.WithCALifetime(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	_, c := issueNode(t, short, "n", 0)
	if !c.NotAfter.Equal(short.Certificate().NotAfter) {
		t.Errorf("node certificate outlives its CA: %v > %v", c.NotAfter, short.Certificate().NotAfter)
	}
}

func TestIssueNodeCertRefusesBadInput(t *testing.T) {
	t.Parallel()
	ca, _ := newCA(t)
	key, _ := pki.NewNodeKey()
	csr, _ := pki.NewCSR(key, "n1")
	for _, id := range []string{"", "-a", "a-", "a/b", "a b", "ünï", strings.Repeat("a", dao.MaxNodeIDBytes+1)} {
		if _, err := ca.IssueNodeCert(csr, id, 0); !errors.Is(err, pki.ErrInvalidNodeID) || !errdefs.IsInvalidArgument(err) {
			t.Errorf("node ID %q: %v", id, err)
		}
	}
	if err := pki.ValidateNodeID(strings.Repeat("a", dao.MaxNodeIDBytes)); err != nil {
		t.Errorf("longest ID: %v", err)
	}
	tampered := append([]byte(nil), csr...)
	tampered[len(tampered)-3] ^= 0xff
	for name, bad := range map[string][]byte{"garbage": []byte("x"), "bad signature": tampered} {
		if _, err := ca.IssueNodeCert(bad, "n1", 0); !errors.Is(err, pki.ErrInvalidCSR) || !errors.Is(err, dao.ErrInvalid) {
			t.Errorf("%s request: %v", name, err)
		}
	}
	if _, err := ca.IssueNodeCert(csr, "n1", time.Second); !errors.Is(err, dao.ErrInvalid) {
		t.Errorf("1s lifetime: %v", err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.IssueNodeCertForKey(&rsaKey.PublicKey, "n1", 0); !errors.Is(err, dao.ErrInvalid) {
		t.Errorf("RSA key: %v", err)
	}
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if _, err := ca.IssueNodeCertForKey(&p224.PublicKey, "n1", 0); !errors.Is(err, dao.ErrInvalid) {
		t.Errorf("P-224 key: %v", err)
	}
	ca.RemoveNode("gone")
	if _, err := ca.IssueNodeCert(csr, "gone", 0); !errors.Is(err, pki.ErrNodeRemoved) {
		t.Errorf("removed node: %v", err)
	}
}

func TestJoin(t *testing.T) {
	t.Parallel()
	ca, _ := newCA(t)
	tok, _ := ca.NewJoinToken()
	key, _ := pki.NewNodeKey()
	csr, _ := pki.NewCSR(key, "edge-7")
	der, err := ca.Join(tok, csr, "edge-7", 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	if id, err := ca.Verify([]*x509.Certificate{cert}); err != nil || id != "edge-7" {
		t.Errorf("joined node: %q, %v", id, err)
	}
	if _, err := ca.Join(tok[:len(tok)-1]+"a", csr, "edge-7", 0); !errors.Is(err, pki.ErrInvalidToken) {
		// The last character changed may still be the same; the test token ends in a random one.
		if tok[len(tok)-1] != 'a' {
			t.Errorf("wrong token: %v", err)
		}
	}
}

func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	ca, clk := newCA(t)
	other, _ := newCA(t)
	_, good := issueNode(t, ca, "good", time.Hour)
	_, foreign := issueNode(t, other, "good", time.Hour)
	_, revoked := issueNode(t, ca, "revoked", time.Hour)
	_, removed := issueNode(t, ca, "removed", time.Hour)
	if err := ca.RevokeSerial(revoked.SerialNumber); err != nil {
		t.Fatal(err)
	}
	ca.RemoveNode("removed")
	key, _ := pki.NewNodeKey()
	cpDER, err := ca.IssueServerCert(&key.PublicKey, []string{"127.0.0.1", "cp.example"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cp, _ := x509.ParseCertificate(cpDER)

	check := func(name string, cert *x509.Certificate, want, class error) {
		t.Helper()
		var chain []*x509.Certificate
		if cert != nil {
			chain = []*x509.Certificate{cert}
		}
		_, err := ca.Verify(chain)
		if !errors.Is(err, want) || !errors.Is(err, class) {
			t.Errorf("%s: %v; want %v", name, err, want)
		}
		for _, s := range []error{pki.ErrUnknownAuthority, pki.ErrExpired, pki.ErrRevoked, pki.ErrNodeRemoved, pki.ErrWrongRole} {
			if s != want && errors.Is(err, s) {
				t.Errorf("%s: %v also matches %v", name, err, s)
			}
		}
	}
	check("no certificate", nil, pki.ErrUnknownAuthority, errdefs.ErrUnauthenticated)
	check("another CA", foreign, pki.ErrUnknownAuthority, errdefs.ErrUnauthenticated)
	check("revoked serial", revoked, pki.ErrRevoked, errdefs.ErrPermissionDenied)
	check("removed node", removed, pki.ErrNodeRemoved, errdefs.ErrPermissionDenied)
	check("control plane's certificate", cp, pki.ErrWrongRole, errdefs.ErrPermissionDenied)
	if got := ca.RemovedNodes(); len(got) != 1 || got[0] != "removed" {
		t.Errorf("RemovedNodes %v", got)
	}
	if got := ca.RevokedSerials(); len(got) != 1 || got[0].Cmp(revoked.SerialNumber) != 0 {
		t.Errorf("RevokedSerials %v", got)
	}
	ca.ReadmitNode("removed")
	if _, err := ca.Verify([]*x509.Certificate{removed}); err != nil {
		t.Errorf("readmitted node: %v", err)
	}
	clk.Advance(time.Hour + time.Second)
	check("expired", good, pki.ErrExpired, errdefs.ErrUnauthenticated)

	if err := pki.VerifyControlPlane(ca.Certificate(), []*x509.Certificate{cp}, epoch); err != nil {
		t.Errorf("control plane: %v", err)
	}
	if err := pki.VerifyControlPlane(ca.Certificate(), []*x509.Certificate{removed}, epoch); !errors.Is(err, pki.ErrWrongRole) {
		t.Errorf("node posing as control plane: %v", err)
	}
}

func TestRenewAt(t *testing.T) {
	t.Parallel()
	ca, _ := newCA(t)
	_, cert := issueNode(t, ca, "n", 0)
	life := cert.NotAfter.Sub(cert.NotBefore)
	lo, hi := cert.NotBefore.Add(life/2), cert.NotBefore.Add(life-life/5)
	r := mathrand.New(mathrand.NewPCG(1, 2))
	var minSeen, maxSeen time.Time
	for i := range 1000 {
		at := pki.RenewAt(cert, r)
		if at.Before(lo) || at.After(hi) {
			t.Fatalf("RenewAt %v outside [%v, %v]", at, lo, hi)
		}
		if i == 0 || at.Before(minSeen) {
			minSeen = at
		}
		if i == 0 || at.After(maxSeen) {
			maxSeen = at
		}
	}
	// Spread over the window, not bunched.
	if minSeen.Sub(lo) > life/100 || hi.Sub(maxSeen) > life/100 {
		t.Errorf("1000 draws span [%v, %v] of [%v, %v]", minSeen, maxSeen, lo, hi)
	}
	a := pki.RenewAt(cert, mathrand.New(mathrand.NewPCG(7, 7)))
	b := pki.RenewAt(cert, mathrand.New(mathrand.NewPCG(7, 7)))
	if !a.Equal(b) {
		t.Errorf("same seed, %v and %v", a, b)
	}
	if at := pki.RenewAt(cert, nil); at.Before(lo) || at.After(hi) {
		t.Errorf("RenewAt(nil rand) %v", at)
	}
}
