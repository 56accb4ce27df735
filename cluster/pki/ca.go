package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/opendao/dao/clock"
	"github.com/opendao/dao/internal/atomicfile"
)

// Defaults of the CA and of the certificates it issues.
const (
	// DefaultCALifetime is the root certificate's lifetime: 10 years, as k3s's. (swarmkit's
	// root lives 20 years; there is no rotation of the root yet, and 10 years is already
	// longer than any machine this will run on.)
	DefaultCALifetime = 10 * 365 * 24 * time.Hour
	// DefaultNodeCertLifetime is a node certificate's lifetime: 90 days, as swarmkit's.
	DefaultNodeCertLifetime = 90 * 24 * time.Hour
	// DefaultCommonName is the root certificate's subject common name.
	DefaultCommonName = "dao cluster CA"
	// MinCertLifetime is the shortest lifetime the CA accepts, for itself or a certificate.
	MinCertLifetime = time.Minute
)

// File names of Save and LoadCA, in the directory given.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
)

// backdate is how far before now a certificate's NotBefore is set, so that a peer whose
// clock is a little behind accepts it.
const backdate = 5 * time.Minute

// CA is a cluster's certificate authority: an ECDSA P-256 self-signed root, the join tokens
// it accepts (only a hash of each secret), and the serial numbers and node IDs it revoked.
// It is safe for simultaneous use.
//
// The root key and certificate, the join tokens (digests of their secrets) and the
// revocations are persisted with Save and LoadCA; between calls of Save they live in memory.
type CA struct {
	clock   clock.Clock
	cert    *x509.Certificate
	certDER []byte
	key     *ecdsa.PrivateKey
	pin     [32]byte

	mu      sync.Mutex
	tokens  []tokenEntry
	dropped []tokenEntry        // revoked join tokens, until they would have expired
	revoked map[string]struct{} // serial numbers, in hexadecimal
	// removed counts the removals and readmissions of each node ID it names: an odd
	// count is removed. The count only grows, so that replicas that merge their states
	// agree on the latest (see MergeState).
	removed map[string]uint64
}

type caOptions struct {
	clock    clock.Clock
	lifetime time.Duration
	cn       string
	org      string
}

// CAOption configures NewCA or LoadCA.
type CAOption func(*caOptions) error

// WithClock makes the CA read the time from c: for validity periods, token expiry and
// verification. Default: clock.System().
func WithClock(c clock.Clock) CAOption {
	return func(o *caOptions) error {
		if c == nil {
			return fmt.Errorf("pki: WithClock(nil): %w: the clock must not be nil", ErrInvalidOption)
		}
		o.clock = c
		return nil
	}
}

// WithCALifetime sets the root certificate's lifetime, for NewCA only. Default:
// DefaultCALifetime (10 years); at least MinCertLifetime.
func WithCALifetime(d time.Duration) CAOption {
	return func(o *caOptions) error {
		if d < MinCertLifetime {
			return fmt.Errorf("pki: WithCALifetime(%v): %w: must be at least %v", d, ErrInvalidOption, MinCertLifetime)
		}
		o.lifetime = d
		return nil
	}
}

// WithSubject sets the root certificate's common name and organization, for NewCA only.
// Default: DefaultCommonName and no organization. The common name must not be empty.
func WithSubject(commonName, organization string) CAOption {
	return func(o *caOptions) error {
		if commonName == "" {
			return fmt.Errorf("pki: WithSubject(%q, %q): %w: the common name must not be empty", commonName, organization, ErrInvalidOption)
		}
		o.cn, o.org = commonName, organization
		return nil
	}
}

func applyCAOptions(opts []CAOption) (caOptions, error) {
	o := caOptions{clock: clock.System(), lifetime: DefaultCALifetime, cn: DefaultCommonName}
	var errs []error
	for _, opt := range opts {
		if opt == nil {
			errs = append(errs, fmt.Errorf("pki: nil option: %w", ErrInvalidOption))
			continue
		}
		if err := opt(&o); err != nil {
			errs = append(errs, err)
		}
	}
	return o, errors.Join(errs...)
}

// NewCA makes a new CA with a fresh ECDSA P-256 key and a self-signed root certificate valid
// from now (less 5 minutes of clock skew) for its lifetime.
func NewCA(opts ...CAOption) (*CA, error) {
	o, err := applyCAOptions(opts)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := o.clock.Now()
	subject := pkix.Name{CommonName: o.cn}
	if o.org != "" {
		subject.Organization = []string{o.org}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(o.lifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: create CA certificate: %w", err)
	}
	return newCA(o.clock, der, key)
}

func newCA(c clock.Clock, der []byte, key *ecdsa.PrivateKey) (*CA, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse CA certificate: %w", err)
	}
	return &CA{
		clock:   c,
		cert:    cert,
		certDER: der,
		key:     key,
		pin:     sha256.Sum256(der),
		revoked: make(map[string]struct{}),
		removed: make(map[string]uint64),
	}, nil
}

// Certificate returns the root certificate. The caller must not modify it.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertificateDER returns a copy of the root certificate in DER, as a joining node is shown it.
func (ca *CA) CertificateDER() []byte { return bytes.Clone(ca.certDER) }

// CertificatePEM returns the root certificate in PEM.
func (ca *CA) CertificatePEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.certDER})
}

// Pin returns the SHA-256 digest of the root certificate's DER, which join tokens carry.
func (ca *CA) Pin() [32]byte { return ca.pin }

// Save writes the root certificate to dir/ca.crt (mode 0644), its key to dir/ca.key (mode
// 0600, PKCS #8 PEM) and its join tokens (digests of their secrets, never the secrets),
// removed node IDs and revoked serial numbers to dir/state.json (StateFile, mode 0600),
// creating dir with mode 0700 if it does not exist. Each file is written to a temporary file
// and renamed, so a crash leaves the old file or the new one. The state is a snapshot taken
// at the call: the control plane calls Save again after each change it must not lose
// (NewJoinToken, RevokeJoinToken, RotateJoinTokens, RemoveNode, ReadmitNode, RevokeSerial).
func (ca *CA) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki: save CA: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return fmt.Errorf("pki: save CA: marshal key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	state, err := ca.encodeState()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, CAKeyFile), keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, CACertFile), ca.CertificatePEM(), 0o644); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, StateFile), state, 0o600)
}

func writeFileAtomic(name string, data []byte, perm fs.FileMode) error {
	if err := atomicfile.WriteFile(name, data, perm); err != nil {
		return fmt.Errorf("pki: save %s: %w", name, err)
	}
	return nil
}

// LoadCA reads a CA that Save wrote to dir. It refuses a key file that anyone but its owner
// may read or write (ErrInsecureKeyFile), a file that is not PEM of the expected kind, a
// certificate that is not a CA, and a key that does not match the certificate (ErrInvalidCA);
// each error names the file. It restores the join tokens, removed nodes and revoked serials
// from dir/state.json (StateFile): a state file others may read or write is refused
// (ErrInsecureKeyFile), a damaged one gives ErrCorruptState naming the file and the field,
// and a missing one (a CA saved before the file existed) gives a CA with no join tokens and
// no revocations. Of the options, only WithClock applies: the subject and lifetime are the
// certificate's.
func LoadCA(dir string, opts ...CAOption) (*CA, error) {
	o, err := applyCAOptions(opts)
	if err != nil {
		return nil, err
	}
	keyName := filepath.Join(dir, CAKeyFile)
	certName := filepath.Join(dir, CACertFile)

	fi, err := os.Stat(keyName)
	if err != nil {
		return nil, fmt.Errorf("pki: load CA: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("pki: load CA: %s has mode %04o, want 0600 or stricter: %w", keyName, perm, ErrInsecureKeyFile)
	}
	keyPEM, err := os.ReadFile(keyName)
	if err != nil {
		return nil, fmt.Errorf("pki: load CA: %w", err)
	}
	certPEM, err := os.ReadFile(certName)
	if err != nil {
		return nil, fmt.Errorf("pki: load CA: %w", err)
	}

	certDER, err := decodePEM(certPEM, "CERTIFICATE", certName)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("pki: load CA: %s: %w: %v", certName, ErrInvalidCA, err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, fmt.Errorf("pki: load CA: %s: %w: the certificate is not a CA", certName, ErrInvalidCA)
	}
	keyDER, err := decodePEM(keyPEM, "PRIVATE KEY", keyName)
	if err != nil {
		return nil, err
	}
	parsed, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return nil, fmt.Errorf("pki: load CA: %s: %w: %v", keyName, ErrInvalidCA, err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("pki: load CA: %s: %w: the key is a %T, not ECDSA", keyName, ErrInvalidCA, parsed)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("pki: load CA: %s: %w: the key does not match the certificate %s", keyName, ErrInvalidCA, certName)
	}
	state, err := loadState(filepath.Join(dir, StateFile))
	if err != nil {
		return nil, err
	}
	ca, err := newCA(o.clock, certDER, key)
	if err != nil {
		return nil, err
	}
	ca.tokens, ca.dropped, ca.removed, ca.revoked = state.tokens, state.dropped, state.removed, state.revoked
	return ca, nil
}

func decodePEM(data []byte, typ, name string) ([]byte, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("pki: load CA: %s: %w: no PEM block", name, ErrInvalidCA)
	}
	if block.Type != typ {
		return nil, fmt.Errorf("pki: load CA: %s: %w: PEM block of type %q, want %q", name, ErrInvalidCA, block.Type, typ)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("pki: load CA: %s: %w: data after the PEM block", name, ErrInvalidCA)
	}
	return block.Bytes, nil
}

// newSerial returns a random positive 128-bit serial number.
func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("pki: serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}
