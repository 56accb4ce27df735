package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	mathrand "math/rand/v2"
	"net"
	"net/url"
	"time"

	"github.com/opendao/dao"
)

// Names in certificates.
//
// A node certificate's subject common name is the node ID, and it carries exactly one URI
// subject alternative name, dao://node/<id>; the URI is what NodeIDFromCert reads, and the
// common name must agree with it. The control plane's serving certificate carries the URI
// ControlPlaneURI instead, so that a node certificate (which may also serve TLS, for
// node-to-node traffic later) cannot stand in for the control plane.
const (
	URIScheme       = "dao"
	nodeURIHost     = "node"
	ControlPlaneURI = "dao://control-plane"
)

// NodeURI returns the URI subject alternative name of the node's certificate.
func NodeURI(nodeID string) string { return URIScheme + "://" + nodeURIHost + "/" + nodeID }

// ValidateNodeID checks that id may name a node in a certificate: it must pass dao's rule for
// Node.ID (not empty, at most dao.MaxNodeIDBytes bytes) and, so that it stands unescaped in
// a URI and a common name, consist of ASCII letters, digits, '.', '_' and '-', beginning and
// ending with a letter or digit. It returns an error of class ErrInvalidNodeID (and so
// dao.ErrInvalid).
func ValidateNodeID(id string) error {
	if err := (&dao.Node{ID: id}).Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidNodeID, err)
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !alnum(c) && c != '.' && c != '_' && c != '-' {
			return fmt.Errorf("%w: %s: byte %d is %q; want letters, digits, '.', '_' or '-'", ErrInvalidNodeID, dao.Quote(id), i, c)
		}
	}
	if !alnum(id[0]) || !alnum(id[len(id)-1]) {
		return fmt.Errorf("%w: %s must begin and end with a letter or digit", ErrInvalidNodeID, dao.Quote(id))
	}
	return nil
}

// NewNodeKey returns a fresh ECDSA P-256 key for a node.
func NewNodeKey() (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate node key: %w", err)
	}
	return k, nil
}

// NewCSR returns a certificate request in DER for key, naming nodeID, which a joining node
// sends with its join token. The CA names the certificate itself: the request proves that
// the node holds the key.
func NewCSR(key crypto.Signer, nodeID string) ([]byte, error) {
	if err := ValidateNodeID(nodeID); err != nil {
		return nil, err
	}
	u, _ := url.Parse(NodeURI(nodeID))
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: nodeID},
		URIs:    []*url.URL{u},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("pki: create certificate request: %w", err)
	}
	return der, nil
}

// Join is the CA's half of the join protocol: it checks the join token (CheckJoinToken) and,
// if the CA accepts it, issues a certificate for the request's key naming nodeID
// (IssueNodeCert). The node must then check the CA it was shown with VerifyCAPin before it
// trusts the certificate.
func (ca *CA) Join(token string, csrDER []byte, nodeID string, lifetime time.Duration) ([]byte, error) {
	if err := ca.CheckJoinToken(token); err != nil {
		return nil, err
	}
	return ca.IssueNodeCert(csrDER, nodeID, lifetime)
}

// IssueNodeCert issues a certificate in DER for the public key of the certificate request
// csrDER (whose signature must verify; its subject is ignored), naming nodeID as described
// at NodeURI, for client and server authentication. lifetime 0 means
// DefaultNodeCertLifetime (90 days); otherwise it must be at least MinCertLifetime. The
// certificate never outlives the CA. It refuses an invalid node ID (ErrInvalidNodeID), a
// bad request (ErrInvalidCSR) and a removed node (ErrNodeRemoved).
func (ca *CA) IssueNodeCert(csrDER []byte, nodeID string, lifetime time.Duration) ([]byte, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("pki: issue node certificate: %w: %v", ErrInvalidCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("pki: issue node certificate: %w: %v", ErrInvalidCSR, err)
	}
	return ca.IssueNodeCertForKey(csr.PublicKey, nodeID, lifetime)
}

// IssueNodeCertForKey is IssueNodeCert for a public key the caller already trusts the node to
// hold (a renewal over the node's authenticated connection). The key must be ECDSA P-256 or
// P-384 or Ed25519.
func (ca *CA) IssueNodeCertForKey(pub crypto.PublicKey, nodeID string, lifetime time.Duration) ([]byte, error) {
	if err := ValidateNodeID(nodeID); err != nil {
		return nil, err
	}
	if ca.IsRemoved(nodeID) {
		return nil, fmt.Errorf("pki: issue node certificate: %w: %s", ErrNodeRemoved, dao.Quote(nodeID))
	}
	u, _ := url.Parse(NodeURI(nodeID))
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: nodeID},
		URIs:        []*url.URL{u},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	return ca.issue(tmpl, pub, lifetime, DefaultNodeCertLifetime)
}

// IssueServerCert issues the control plane's serving certificate in DER for pub, carrying
// ControlPlaneURI and, for clients that check host names, the DNS names and IP addresses in
// hosts. lifetime 0 means DefaultNodeCertLifetime.
func (ca *CA) IssueServerCert(pub crypto.PublicKey, hosts []string, lifetime time.Duration) ([]byte, error) {
	u, _ := url.Parse(ControlPlaneURI)
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "dao control plane"},
		URIs:        []*url.URL{u},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.issue(tmpl, pub, lifetime, DefaultNodeCertLifetime)
}

func (ca *CA) issue(tmpl *x509.Certificate, pub crypto.PublicKey, lifetime, def time.Duration) ([]byte, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return nil, fmt.Errorf("pki: issue certificate: %w: ECDSA key on curve %s, want P-256 or P-384", dao.ErrInvalid, k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("pki: issue certificate: %w: %T key, want ECDSA P-256 or P-384 or Ed25519", dao.ErrInvalid, pub)
	}
	switch {
	case lifetime == 0:
		lifetime = def
	case lifetime < MinCertLifetime:
		return nil, fmt.Errorf("pki: issue certificate: %w: lifetime %v is shorter than %v", dao.ErrInvalid, lifetime, MinCertLifetime)
	}
	now := ca.clock.Now()
	if !now.Before(ca.cert.NotAfter) {
		return nil, fmt.Errorf("pki: issue certificate: %w: the CA itself expired at %s", ErrExpired, ca.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-backdate)
	tmpl.NotAfter = now.Add(lifetime)
	if tmpl.NotAfter.After(ca.cert.NotAfter) {
		tmpl.NotAfter = ca.cert.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		return nil, fmt.Errorf("pki: issue certificate: %w", err)
	}
	return der, nil
}

// NodeIDFromCert returns the node ID a node certificate names: the path of its one URI
// subject alternative name dao://node/<id>, which must agree with its common name and pass
// ValidateNodeID. It does not check who signed the certificate (CA.Verify does). A
// certificate naming no node returns ErrWrongRole.
func NodeIDFromCert(cert *x509.Certificate) (string, error) {
	if cert == nil {
		return "", fmt.Errorf("pki: node ID from certificate: %w: no certificate", ErrUnknownAuthority)
	}
	var ids []string
	for _, u := range cert.URIs {
		if u.Scheme == URIScheme && u.Host == nodeURIHost && len(u.Path) > 1 && u.RawQuery == "" && u.Fragment == "" {
			ids = append(ids, u.Path[1:])
		}
	}
	switch len(ids) {
	case 0:
		return "", fmt.Errorf("pki: node ID from certificate: %w: no %s URI", ErrWrongRole, NodeURI("<id>"))
	case 1:
	default:
		return "", fmt.Errorf("pki: node ID from certificate: %w: %d node URIs, want one", ErrWrongRole, len(ids))
	}
	id := ids[0]
	if err := ValidateNodeID(id); err != nil {
		return "", fmt.Errorf("pki: node ID from certificate: %w", err)
	}
	if cert.Subject.CommonName != id {
		return "", fmt.Errorf("pki: node ID from certificate: %w: common name %s disagrees with the URI's node %s",
			ErrInvalidNodeID, dao.Quote(cert.Subject.CommonName), dao.Quote(id))
	}
	return id, nil
}

// RenewAt returns when a node should renew cert: a random point between 50 % and 80 % of
// its lifetime (NotBefore to NotAfter), as swarmkit does, so that nodes joined together do
// not all renew together. r supplies the randomness (a seeded one in tests); nil means a
// generator seeded from crypto/rand.
func RenewAt(cert *x509.Certificate, r *mathrand.Rand) time.Time {
	if r == nil {
		var seed [32]byte
		_, _ = rand.Read(seed[:])
		r = mathrand.New(mathrand.NewChaCha8(seed))
	}
	life := cert.NotAfter.Sub(cert.NotBefore)
	if life <= 0 {
		return cert.NotBefore
	}
	lo := life / 2
	span := life - life/5 - lo
	return cert.NotBefore.Add(lo + time.Duration(r.Int64N(int64(span)+1)))
}
