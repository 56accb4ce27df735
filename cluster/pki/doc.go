// Package pki is the identity half of Dao's remote nodes: the control plane's small
// certificate authority, its join tokens, node certificates and their rotation and
// revocation, and the mutual-TLS configurations that use them. It is pure logic over the
// standard library's crypto (crypto/x509, crypto/ecdsa, crypto/tls); it opens no socket and
// starts no goroutine, and the node protocol carries its messages.
//
// # Keys and lifetimes
//
// The CA's root is a self-signed ECDSA P-256 certificate valid for DefaultCALifetime (10
// years), made by NewCA and kept on disk by Save and LoadCA (ca.crt, ca.key with mode
// 0600, and state.json, see Persistence; LoadCA refuses a key others may read and a key that
// does not match the certificate). Node keys are ECDSA P-256 (NewNodeKey; P-384 and Ed25519 are accepted too).
// Node certificates live DefaultNodeCertLifetime (90 days, as swarmkit's), are for client
// and server authentication, and name the node twice: the common name is the node ID and
// the one URI subject alternative name is dao://node/<id> (NodeURI; NodeIDFromCert reads it
// and checks they agree). Node IDs follow ValidateNodeID: dao's rule for Node.ID, and only
// letters, digits, '.', '_' and '-'. The control plane's serving certificate
// (IssueServerCert) carries ControlPlaneURI instead, so no node can pose as the control
// plane.
//
// # Join flow
//
//  1. The operator asks the control plane for a join token (CA.NewJoinToken):
//     DAO1-<pin>-<secret>, where the pin is the SHA-256 of the CA certificate and the secret
//     160 random bits (see TokenPrefix for the format). The CA keeps only a hash of the
//     secret; tokens expire (DefaultTokenTTL, 24 h, or WithTokenTTL, or never) and can be
//     revoked (CA.RevokeJoinToken) or all replaced at once (CA.RotateJoinTokens).
//  2. The node, given the token and the control plane's address, makes a key (NewNodeKey)
//     and a certificate request (NewCSR), connects without a client certificate, and is shown
//     the CA certificate; it refuses to go on unless VerifyCAPin(token, caCertDER) holds.
//  3. The node sends its request and the token; the control plane calls CA.Join, which
//     checks the token's secret in constant time (CheckJoinToken) and issues a certificate
//     naming the node (IssueNodeCert).
//  4. From then on the node dials with ClientTLSConfig and the control plane serves with
//     CA.ServerTLSConfig: TLS 1.3, both sides authenticated; the server's handshake runs
//     CA.Verify, which refuses a certificate of another CA (ErrUnknownAuthority), an expired
//     one (ErrExpired), a revoked serial (ErrRevoked) and a removed node (ErrNodeRemoved).
//  5. At RenewAt(cert, rand), a random point between 50 % and 80 % of the lifetime, the node
//     asks for a new certificate over its authenticated connection
//     (CA.IssueNodeCertForKey, or IssueNodeCert with a new request).
//  6. Removing a node (CA.RemoveNode) makes every certificate naming it refused; a leaked
//     key is cut off by CA.RevokeSerial.
//
// # Persistence
//
// Save writes, next to ca.crt and ca.key, the state a restart must not forget: state.json
// (StateFile, mode 0600, JSON of version StateVersion) holds the join tokens (the SHA-256
// digest of each secret, never the secret, and its expiry), the revoked join tokens until
// they would have expired, the removals and readmissions of each node and the revoked
// serial numbers. Replicas that share a CA exchange the same state (MarshalState) and merge
// it (MergeState) so that each change spreads, a revocation as well as a new token. Each file
// is written to a temporary file and renamed. LoadCA restores the state, so a revoked node is
// not let back in after the control plane restarts; it refuses a state file others may read
// or write (ErrInsecureKeyFile) and a damaged or tampered one with ErrCorruptState (class
// errdefs.ErrDataLoss), whose text names the file and the field. A directory without
// state.json (saved by an older version) loads with no tokens and no revocations. Between
// calls of Save the state lives in memory: the control plane calls Save after each change
// (a token made or revoked, a node removed or readmitted, a serial revoked).
//
// Every error is of a containerd errdefs class (errdefs.IsUnauthorized on a bad token or
// an unknown certificate, errdefs.IsPermissionDenied on a revoked one, errdefs.IsInvalidArgument
// on bad input, errdefs.IsDataLoss on a damaged state file), and each has its own sentinel
// for errors.Is.
package pki
