package cluster

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/opendao/dao"
	"github.com/opendao/dao/clock"
	"github.com/opendao/dao/cluster/pki"
	"github.com/opendao/dao/internal/atomicfile"
)

// Files of an identity in a node's state directory.
const (
	// IdentityCAFile holds the cluster CA's certificate (PEM).
	IdentityCAFile = "ca.crt"
	// IdentityFile holds the node's certificate and its private key (PEM, mode 0600), in
	// one file so that a renewal replaces both at once.
	IdentityFile = "node.pem"
)

// Identity is what a node proves itself with: its certificate and key, issued by the
// cluster's CA, and the CA's certificate, which is the only authority it trusts for the
// control plane.
type Identity struct {
	// NodeID is the ID the certificate names.
	NodeID string
	// Certificate is the node's certificate and key, with its Leaf set.
	Certificate tls.Certificate
	// CA is the cluster CA's certificate.
	CA *x509.Certificate
}

// NewIdentity checks that cert (with its key) names a node and was issued by ca, and
// returns the identity they make.
func NewIdentity(cert tls.Certificate, ca *x509.Certificate) (*Identity, error) {
	if cert.Leaf == nil {
		if len(cert.Certificate) == 0 {
			return nil, fmt.Errorf("%w: no certificate", ErrCorruptIdentity)
		}
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorruptIdentity, err)
		}
		cert.Leaf = leaf
	}
	if ca == nil {
		return nil, fmt.Errorf("%w: no CA certificate", ErrCorruptIdentity)
	}
	if err := cert.Leaf.CheckSignatureFrom(ca); err != nil {
		return nil, fmt.Errorf("%w: the node certificate was not issued by the CA: %v", ErrCorruptIdentity, err)
	}
	id, err := pki.NodeIDFromCert(cert.Leaf)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptIdentity, err)
	}
	return &Identity{NodeID: id, Certificate: cert, CA: ca}, nil
}

// Expires returns when the node certificate expires.
func (id *Identity) Expires() time.Time { return id.Certificate.Leaf.NotAfter }

// Save writes the identity into dir (made if missing, mode 0700): IdentityCAFile and
// IdentityFile, each replaced whole.
func (id *Identity) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cluster: save identity: %w", err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: id.CA.Raw})
	keyDER, err := x509.MarshalPKCS8PrivateKey(id.Certificate.PrivateKey)
	if err != nil {
		return fmt.Errorf("cluster: save identity: %w", err)
	}
	var node bytes.Buffer
	for _, der := range id.Certificate.Certificate {
		_ = pem.Encode(&node, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	_ = pem.Encode(&node, &pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := atomicfile.WriteFile(filepath.Join(dir, IdentityCAFile), caPEM, 0o644); err != nil {
		return fmt.Errorf("cluster: save identity: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, IdentityFile), node.Bytes(), 0o600); err != nil {
		return fmt.Errorf("cluster: save identity: %w", err)
	}
	return nil
}

// LoadIdentity reads the identity Save wrote in dir. It fails with ErrNoIdentity when dir
// holds none, and with ErrCorruptIdentity, naming the file, when the files do not decode,
// do not belong together, or the key file is readable by others.
func LoadIdentity(dir string) (*Identity, error) {
	caPath, nodePath := filepath.Join(dir, IdentityCAFile), filepath.Join(dir, IdentityFile)
	nodePEM, err := os.ReadFile(nodePath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s: join the cluster first", ErrNoIdentity, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: load identity: %w", err)
	}
	if fi, err := os.Stat(nodePath); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s: mode %s: the key must be readable by its owner only", ErrCorruptIdentity, nodePath, fi.Mode().Perm())
	}
	caPEM, err := os.ReadFile(caPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorruptIdentity, caPath, err)
	}
	caBlock, _ := pem.Decode(caPEM)
	if caBlock == nil || caBlock.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%w: %s: no PEM certificate", ErrCorruptIdentity, caPath)
	}
	ca, err := x509.ParseCertificate(caBlock.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorruptIdentity, caPath, err)
	}
	var cert tls.Certificate
	rest := nodePEM
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case "CERTIFICATE":
			cert.Certificate = append(cert.Certificate, b.Bytes)
		case "PRIVATE KEY":
			key, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: key: %v", ErrCorruptIdentity, nodePath, err)
			}
			cert.PrivateKey = key
		default:
			return nil, fmt.Errorf("%w: %s: unexpected PEM block %q", ErrCorruptIdentity, nodePath, b.Type)
		}
	}
	if len(cert.Certificate) == 0 || cert.PrivateKey == nil {
		return nil, fmt.Errorf("%w: %s: wants a certificate and a private key", ErrCorruptIdentity, nodePath)
	}
	signer, ok := cert.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: %s: the key cannot sign", ErrCorruptIdentity, nodePath)
	}
	pair, err := pki.TLSCertificate(cert.Certificate[0], signer)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorruptIdentity, nodePath, err)
	}
	pair.Certificate = cert.Certificate
	id, err := NewIdentity(pair, ca)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", nodePath, err)
	}
	return id, nil
}

// Join obtains a node certificate from the control plane at addr with a join token, for
// the node ID nodeID, and returns the identity; Save it. The connection is TLS without a
// client certificate, and the control plane is trusted only if it presents the CA the
// token pins (pki.VerifyCAPin), so a join over an untrusted network is safe. A bad token
// fails with an error of class errdefs.ErrUnauthenticated (pki.ErrInvalidToken over the
// wire), a node ID another node holds with ErrNodeIDInUse's class (AlreadyExists).
func Join(ctx context.Context, addr, token, nodeID string) (*Identity, error) {
	if _, err := pki.ParseJoinToken(token); err != nil {
		return nil, err
	}
	if err := pki.ValidateNodeID(nodeID); err != nil {
		return nil, err
	}
	key, err := pki.NewNodeKey()
	if err != nil {
		return nil, err
	}
	csr, err := pki.NewCSR(key, nodeID)
	if err != nil {
		return nil, err
	}
	// addr may list the replicas of a control plane: the first that answers takes the
	// join; one that refuses it for a reason of its own (a bad token, a node ID in use)
	// ends it.
	var last error
	for a := range strings.SplitSeq(addr, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		id, err := joinAt(ctx, a, token, nodeID, key, csr)
		if err == nil || !errdefs.IsUnavailable(err) && !errdefs.IsDeadlineExceeded(err) && !errors.Is(err, context.DeadlineExceeded) {
			return id, err
		}
		last = err
	}
	if last == nil {
		return nil, fmt.Errorf("cluster: join: %w: empty address", dao.ErrInvalid)
	}
	return nil, last
}

// joinAt is Join at one address.
func joinAt(ctx context.Context, addr, token, nodeID string, key *ecdsa.PrivateKey, csr []byte) (*Identity, error) {
	// Why the handshake failed, if it did: gRPC reports it as the connection being
	// unavailable, which it is not.
	var verifyErr atomic.Pointer[error]
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		// No CA is known yet: the one the server shows must match the token's pin, and
		// then the server's certificate must be the control plane's, issued by it.
		InsecureSkipVerify: true, //nolint:gosec // verified below against the token's pin
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) (err error) {
			defer func() {
				if err != nil {
					verifyErr.Store(&err)
				}
			}()
			var pinned *x509.Certificate
			var chain []*x509.Certificate
			for _, der := range raw {
				c, err := x509.ParseCertificate(der)
				if err != nil {
					return fmt.Errorf("cluster: join: the control plane's certificate: %v", err)
				}
				chain = append(chain, c)
				if pki.VerifyCAPin(token, der) == nil {
					pinned = c
				}
			}
			if pinned == nil {
				return fmt.Errorf("%w: the control plane at %s shows no CA with the token's pin", pki.ErrCAPinMismatch, addr)
			}
			return pki.VerifyControlPlane(pinned, chain, time.Now())
		},
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	var resp joinResponse
	// A standby replica names the leader (ErrNotLeader): the join goes there.
	for hops := 0; ; hops++ {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)),
			grpc.WithDefaultCallOptions(grpc.ForceCodec(codec{})))
		if err != nil {
			return nil, fmt.Errorf("cluster: join %s: %w", addr, err)
		}
		var trailer metadata.MD
		err = cc.Invoke(ctx, methodJoin, &joinRequest{Token: token, NodeID: nodeID, CSR: csr}, &resp, grpc.Trailer(&trailer))
		cc.Close()
		if err == nil {
			break
		}
		if verr := verifyErr.Load(); verr != nil {
			return nil, fmt.Errorf("cluster: join %s: %w", addr, *verr)
		}
		if to := trailer.Get(LeaderTrailer); len(to) > 0 && to[0] != "" && to[0] != addr && hops < 3 {
			addr = to[0]
			continue
		}
		return nil, fmt.Errorf("cluster: join %s as %s: %w", addr, nodeID, errgrpc.ToNative(err))
	}
	if err := pki.VerifyCAPin(token, resp.CA); err != nil {
		return nil, fmt.Errorf("cluster: join %s: %w", addr, err)
	}
	ca, err := x509.ParseCertificate(resp.CA)
	if err != nil {
		return nil, fmt.Errorf("cluster: join %s: the CA certificate: %w", addr, err)
	}
	pair, err := pki.TLSCertificate(resp.Certificate, key)
	if err != nil {
		return nil, fmt.Errorf("cluster: join %s: %w", addr, err)
	}
	id, err := NewIdentity(pair, ca)
	if err != nil {
		return nil, fmt.Errorf("cluster: join %s: %w", addr, err)
	}
	if id.NodeID != nodeID {
		return nil, fmt.Errorf("cluster: join %s: %w: the certificate names node %s, not %s", addr, ErrCorruptIdentity, id.NodeID, nodeID)
	}
	return id, nil
}

// clientTLS is the mutual-TLS configuration of a node's connections: the current
// certificate of cur, and only a control plane the identity's CA vouches for.
func clientTLS(ca *x509.Certificate, cur func() *tls.Certificate, c clock.Clock) *tls.Config {
	cfg := pki.ClientTLSConfig(ca, tls.Certificate{}, c)
	cfg.Certificates = nil
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cur(), nil }
	return cfg
}
