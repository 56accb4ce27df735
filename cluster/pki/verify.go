package pki

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/opendao/dao"
	"github.com/opendao/dao/clock"
)

// RemoveNode removes a node from the cluster: the CA refuses every certificate naming it
// (ErrNodeRemoved), whatever its serial, and issues it no new one, until ReadmitNode. The
// ID is not validated, so that any ID a certificate could carry can be removed.
func (ca *CA) RemoveNode(nodeID string) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if c := ca.removed[nodeID]; c%2 == 0 {
		ca.removed[nodeID] = c + 1
	}
}

// ReadmitNode undoes RemoveNode: the node may join again (with a join token) and get a new
// certificate. Its certificates revoked by serial stay revoked.
func (ca *CA) ReadmitNode(nodeID string) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if c := ca.removed[nodeID]; c%2 == 1 {
		ca.removed[nodeID] = c + 1
	}
}

// IsRemoved reports whether RemoveNode removed the node.
func (ca *CA) IsRemoved(nodeID string) bool {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	return ca.removed[nodeID]%2 == 1
}

// RemovedNodes returns the IDs of the removed nodes, sorted, for the control plane to
// persist.
func (ca *CA) RemovedNodes() []string {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	ids := make([]string, 0, len(ca.removed))
	for id, c := range ca.removed {
		if c%2 == 1 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// RevokeSerial makes the CA refuse the certificate with this serial number (ErrRevoked), as
// when one node's key leaked but the node stays.
func (ca *CA) RevokeSerial(serial *big.Int) error {
	if serial == nil || serial.Sign() <= 0 {
		return fmt.Errorf("pki: revoke serial: %w: the serial number must be positive", dao.ErrInvalid)
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	ca.revoked[serial.Text(16)] = struct{}{}
	return nil
}

// IsRevoked reports whether RevokeSerial revoked the serial number.
func (ca *CA) IsRevoked(serial *big.Int) bool {
	if serial == nil {
		return false
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	_, ok := ca.revoked[serial.Text(16)]
	return ok
}

// RevokedSerials returns the revoked serial numbers, in ascending order, for the control
// plane to persist.
func (ca *CA) RevokedSerials() []*big.Int {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	out := make([]*big.Int, 0, len(ca.revoked))
	for s := range ca.revoked {
		n, _ := new(big.Int).SetString(s, 16)
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b *big.Int) int { return a.Cmp(b) })
	return out
}

// Verify checks a node's certificate chain, leaf first, as presented to the control plane,
// and returns the node ID it names. It refuses, in this order: a chain that is empty or whose
// leaf this CA did not sign (ErrUnknownAuthority); a leaf outside its validity period by the
// CA's clock (ErrExpired); a certificate of this CA that names no node (ErrWrongRole) or is
// not for client authentication (ErrUnknownAuthority); a revoked serial (ErrRevoked); a
// removed node (ErrNodeRemoved). Certificates after the leaf are ignored: the CA signs node
// certificates directly.
func (ca *CA) Verify(chain []*x509.Certificate) (nodeID string, err error) {
	if len(chain) == 0 || chain[0] == nil {
		return "", fmt.Errorf("pki: verify: %w: no certificate", ErrUnknownAuthority)
	}
	leaf := chain[0]
	now := ca.clock.Now()
	var id string
	role := func() error {
		var err error
		if id, err = NodeIDFromCert(leaf); err != nil {
			return fmt.Errorf("pki: verify: %w", err)
		}
		return nil
	}
	if err := verifyLeaf(ca.cert, leaf, now, x509.ExtKeyUsageClientAuth, role); err != nil {
		return "", err
	}
	if ca.IsRevoked(leaf.SerialNumber) {
		return "", fmt.Errorf("pki: verify: %w: serial %s of node %s", ErrRevoked, leaf.SerialNumber.Text(16), dao.Quote(id))
	}
	if ca.IsRemoved(id) {
		return "", fmt.Errorf("pki: verify: %w: %s", ErrNodeRemoved, dao.Quote(id))
	}
	return id, nil
}

// verifyLeaf checks that root signed leaf, that both are valid at now, and that leaf may be
// used for usage; role, called after the signature and validity checks and before the
// usage check, checks that leaf is of the role expected.
func verifyLeaf(root, leaf *x509.Certificate, now time.Time, usage x509.ExtKeyUsage, role func() error) error {
	if err := leaf.CheckSignatureFrom(root); err != nil {
		return fmt.Errorf("pki: verify: %w: certificate %s (issuer %s): %v", ErrUnknownAuthority,
			dao.Quote(leaf.Subject.CommonName), dao.Quote(leaf.Issuer.CommonName), err)
	}
	for _, c := range []*x509.Certificate{leaf, root} {
		if now.Before(c.NotBefore) || now.After(c.NotAfter) {
			return fmt.Errorf("pki: verify: %w: certificate %s is valid from %s until %s, and it is %s", ErrExpired,
				dao.Quote(c.Subject.CommonName), c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339),
				now.UTC().Format(time.RFC3339))
		}
	}
	if err := role(); err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return fmt.Errorf("pki: verify: %w: %v", ErrUnknownAuthority, err)
	}
	return nil
}

// VerifyPeerCertificate is Verify in the form of tls.Config.VerifyPeerCertificate, for a
// server that requests client certificates with tls.RequireAnyClientCert.
func (ca *CA) VerifyPeerCertificate(rawCerts [][]byte, _ [][]*x509.Certificate) error {
	chain, err := parseChain(rawCerts)
	if err != nil {
		return err
	}
	_, err = ca.Verify(chain)
	return err
}

func parseChain(rawCerts [][]byte) ([]*x509.Certificate, error) {
	if len(rawCerts) == 0 {
		return nil, fmt.Errorf("pki: verify: %w: the peer presented no certificate", ErrUnknownAuthority)
	}
	chain := make([]*x509.Certificate, 0, len(rawCerts))
	for _, raw := range rawCerts {
		c, err := x509.ParseCertificate(raw)
		if err != nil {
			return nil, fmt.Errorf("pki: verify: %w: %v", ErrUnknownAuthority, err)
		}
		chain = append(chain, c)
	}
	return chain, nil
}

// VerifyControlPlane checks the control plane's certificate chain, leaf first, as a node sees
// it: signed by caCert (ErrUnknownAuthority), valid at now (ErrExpired), for server
// authentication and carrying ControlPlaneURI (ErrWrongRole: a node's certificate cannot
// stand in for the control plane). A node knows no revocations; it trusts its pinned CA.
func VerifyControlPlane(caCert *x509.Certificate, chain []*x509.Certificate, now time.Time) error {
	if caCert == nil {
		return fmt.Errorf("pki: verify control plane: %w: no CA certificate", dao.ErrInvalid)
	}
	if len(chain) == 0 || chain[0] == nil {
		return fmt.Errorf("pki: verify: %w: no certificate", ErrUnknownAuthority)
	}
	leaf := chain[0]
	role := func() error {
		for _, u := range leaf.URIs {
			if u.String() == ControlPlaneURI {
				return nil
			}
		}
		return fmt.Errorf("pki: verify control plane: %w: certificate %s does not carry %s", ErrWrongRole,
			dao.Quote(leaf.Subject.CommonName), ControlPlaneURI)
	}
	return verifyLeaf(caCert, leaf, now, x509.ExtKeyUsageServerAuth, role)
}

// ServerTLSConfig returns the control plane's mutual-TLS configuration: TLS 1.3 at least,
// serving cert (from IssueServerCert), requiring a client certificate that Verify accepts
// (this CA's, valid by the CA's clock, not revoked, of a node not removed). The handshake
// fails with Verify's error. After the handshake, NodeIDFromCert of
// ConnectionState().PeerCertificates[0] names the node. To rotate the serving certificate,
// set GetCertificate on the result.
func (ca *CA) ServerTLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:            tls.VersionTLS13,
		Certificates:          []tls.Certificate{cert},
		ClientAuth:            tls.RequireAnyClientCert,
		VerifyPeerCertificate: ca.VerifyPeerCertificate,
		Time:                  ca.clock.Now,
	}
}

// ClientTLSConfig returns a node's mutual-TLS configuration: TLS 1.3 at least, presenting
// cert (its node certificate and key), and accepting only a server that VerifyControlPlane
// accepts against caCert at c's time (nil: clock.System()). Host names are not checked: the
// pinned CA and ControlPlaneURI identify the control plane, whatever address it is dialled
// at. To rotate the node certificate, set GetClientCertificate on the result.
func ClientTLSConfig(caCert *x509.Certificate, cert tls.Certificate, c clock.Clock) *tls.Config {
	if c == nil {
		c = clock.System()
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		// The standard verification checks a host name the control plane may not have a
		// certificate for; VerifyPeerCertificate below does all the rest, and more.
		InsecureSkipVerify: true, //nolint:gosec // verified by VerifyPeerCertificate
		VerifyPeerCertificate: func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
			chain, err := parseChain(rawCerts)
			if err != nil {
				return err
			}
			return VerifyControlPlane(caCert, chain, c.Now())
		},
		Time: c.Now,
	}
}

// TLSCertificate pairs a certificate in DER with its private key for a tls.Config, and
// checks that they match.
func TLSCertificate(certDER []byte, key crypto.Signer) (tls.Certificate, error) {
	leaf, err := x509.ParseCertificate(certDER)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: TLS certificate: %w: %v", dao.ErrInvalid, err)
	}
	if key == nil {
		return tls.Certificate{}, fmt.Errorf("pki: TLS certificate: %w: no key", dao.ErrInvalid)
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(leaf.PublicKey) {
		return tls.Certificate{}, fmt.Errorf("pki: TLS certificate: %w: the key does not match the certificate", dao.ErrInvalid)
	}
	return tls.Certificate{Certificate: [][]byte{certDER}, PrivateKey: key, Leaf: leaf}, nil
}
