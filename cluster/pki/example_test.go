package pki_test

import (
	"crypto/x509"
	"fmt"
	"log"

	"github.com/opendao/dao/cluster/pki"
)

// The join flow without the network: the control plane makes a token, the node checks the
// CA it is shown against the token, asks for a certificate, and the control plane verifies
// it on the node's mutual-TLS connections; once the node is removed, it is refused.
func Example() {
	// Control plane.
	ca, err := pki.NewCA()
	if err != nil {
		log.Fatal(err)
	}
	token, err := ca.NewJoinToken()
	if err != nil {
		log.Fatal(err)
	}

	// Node: given the token out of band, it is shown the CA certificate and checks it.
	shown := ca.CertificateDER()
	if err := pki.VerifyCAPin(token, shown); err != nil {
		log.Fatal(err)
	}
	key, err := pki.NewNodeKey()
	if err != nil {
		log.Fatal(err)
	}
	csr, err := pki.NewCSR(key, "edge-1")
	if err != nil {
		log.Fatal(err)
	}

	// Control plane: the token buys a certificate naming the node.
	der, err := ca.Join(token, csr, "edge-1", 0)
	if err != nil {
		log.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cert.URIs[0])

	// Control plane, on each connection (ServerTLSConfig does this in the handshake).
	id, err := ca.Verify([]*x509.Certificate{cert})
	fmt.Println(id, err)

	ca.RemoveNode("edge-1")
	_, err = ca.Verify([]*x509.Certificate{cert})
	fmt.Println(err)
	// Output:
	// dao://node/edge-1
	// edge-1 <nil>
	// pki: verify: pki: node removed: "edge-1"
}
