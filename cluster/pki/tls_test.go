package pki_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/opendao/dao/cluster/pki"
)

// handshake runs a TLS handshake over loopback TCP (buffered, unlike net.Pipe, so that an
// alert one side writes never waits for the other to read) and returns both sides' errors and, on
// success, the node ID the server sees.
func handshake(t *testing.T, server, client *tls.Config) (serverErr, clientErr error, nodeID string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	defer cc.Close()
	deadline := time.Now().Add(10 * time.Second)
	_ = sc.SetDeadline(deadline)
	_ = cc.SetDeadline(deadline)
	s, c := tls.Server(sc, server), tls.Client(cc, client)
	done := make(chan error, 1)
	go func() {
		err := c.Handshake()
		if err == nil {
			// TLS 1.3: the client learns of the server's refusal on its first read.
			_, err = c.Read(make([]byte, 1))
		}
		if err != nil {
			_ = cc.Close()
		}
		done <- err
	}()
	serverErr = s.Handshake()
	if serverErr == nil {
		nodeID, serverErr = pki.NodeIDFromCert(s.ConnectionState().PeerCertificates[0])
		_, _ = s.Write([]byte{1})
	} else {
		_ = sc.Close()
	}
	clientErr = <-done
	return serverErr, clientErr, nodeID
}

func TestMutualTLS(t *testing.T) {
	t.Parallel()
	ca, clk := newCA(t)
	other, _ := newCA(t)

	serverKey, _ := pki.NewNodeKey()
	serverDER, err := ca.IssueServerCert(&serverKey.PublicKey, []string{"127.0.0.1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	serverCert, err := pki.TLSCertificate(serverDER, serverKey)
	if err != nil {
		t.Fatal(err)
	}
	serverConf := ca.ServerTLSConfig(serverCert)
	if serverConf.MinVersion != tls.VersionTLS13 || serverConf.ClientAuth != tls.RequireAnyClientCert {
		t.Errorf("server config: version %x, client auth %v", serverConf.MinVersion, serverConf.ClientAuth)
	}

	// nodeConf returns the TLS configuration of a node whose certificate issuer issued and
	// which trusts ca.
	nodeConf := func(issuer *pki.CA, id string, lifetime time.Duration) (*tls.Config, *x509.Certificate) {
		key, cert := issueNode(t, issuer, id, lifetime)
		tc, err := pki.TLSCertificate(cert.Raw, key)
		if err != nil {
			t.Fatal(err)
		}
		return pki.ClientTLSConfig(ca.Certificate(), tc, clk), cert
	}
	good, _ := nodeConf(ca, "good", time.Hour)
	foreign, _ := nodeConf(other, "good", time.Hour)
	revoked, revokedCert := nodeConf(ca, "revoked", 0)
	if err := ca.RevokeSerial(revokedCert.SerialNumber); err != nil {
		t.Fatal(err)
	}
	removed, _ := nodeConf(ca, "removed", 0)
	ca.RemoveNode("removed")

	serverErr, clientErr, id := handshake(t, serverConf, good)
	if serverErr != nil || clientErr != nil || id != "good" {
		t.Fatalf("good node: server %v, client %v, node %q", serverErr, clientErr, id)
	}
	for name, tc := range map[string]struct {
		conf *tls.Config
		want error
	}{
		"another CA's node": {foreign, pki.ErrUnknownAuthority},
		"revoked":           {revoked, pki.ErrRevoked},
		"removed":           {removed, pki.ErrNodeRemoved},
	} {
		serverErr, clientErr, _ := handshake(t, serverConf, tc.conf)
		if !errors.Is(serverErr, tc.want) || clientErr == nil {
			t.Errorf("%s: server %v (want %v), client %v", name, serverErr, tc.want, clientErr)
		}
	}

	// A node that pins another CA refuses the control plane.
	key, cert := issueNode(t, ca, "picky", 0)
	tc, _ := pki.TLSCertificate(cert.Raw, key)
	picky := pki.ClientTLSConfig(other.Certificate(), tc, clk)
	if _, clientErr, _ := handshake(t, serverConf, picky); !errors.Is(clientErr, pki.ErrUnknownAuthority) {
		t.Errorf("node pinning another CA: client %v", clientErr)
	}
	// A node certificate cannot serve as the control plane.
	impostor := ca.ServerTLSConfig(tc)
	if _, clientErr, _ := handshake(t, impostor, good); !errors.Is(clientErr, pki.ErrWrongRole) {
		t.Errorf("node posing as the control plane: client %v", clientErr)
	}

	clk.Advance(time.Hour + time.Second)
	if serverErr, _, _ := handshake(t, serverConf, good); !errors.Is(serverErr, pki.ErrExpired) {
		t.Errorf("expired node certificate: server %v", serverErr)
	}
}

func TestTLSCertificateRefusesMismatch(t *testing.T) {
	t.Parallel()
	ca, _ := newCA(t)
	_, cert := issueNode(t, ca, "n", 0)
	other, _ := pki.NewNodeKey()
	if _, err := pki.TLSCertificate(cert.Raw, other); err == nil {
		t.Error("TLSCertificate accepted another key")
	}
	if _, err := pki.TLSCertificate([]byte("x"), other); err == nil {
		t.Error("TLSCertificate accepted garbage")
	}
}
