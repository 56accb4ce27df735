package remote_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/opendao/dao/registry/internal/regtest"
	"github.com/opendao/dao/registry/registrytest"
	"github.com/opendao/dao/registry/remote"
)

// selfSigned returns a self-signed certificate for 127.0.0.1 and its key, in PEM.
func selfSigned(t *testing.T, cn string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		IsCA:         true, BasicConstraintsValid: true,
		DNSNames: []string{"r.test"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// TestHostsDirTLS reaches a registry that wants a client certificate, with the CA, client
// certificate and key of its hosts.toml, at the address its server names: without the
// client certificate the handshake fails.
func TestHostsDirTLS(t *testing.T) {
	srvCert, srvKey := selfSigned(t, "r.test", x509.ExtKeyUsageServerAuth)
	cliCert, cliKey := selfSigned(t, "client", x509.ExtKeyUsageClientAuth)
	pair, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	clients := x509.NewCertPool()
	clients.AppendCertsFromPEM(cliCert)
	reg, err := registrytest.New()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(reg)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, port, _ := strings.Cut(srv.Listener.Addr().String(), ":")

	dir := t.TempDir()
	hostsTOML := "server = \"https://r.test:" + port + "\"\nca = \"ca.pem\"\nclient = [[\"client.pem\", \"client.key\"]]\n"
	writeFiles(t, dir, map[string]string{
		"r.test_" + port + "_/hosts.toml": hostsTOML,
		"r.test_" + port + "_/ca.pem":     string(srvCert),
		"r.test_" + port + "_/client.pem": string(cliCert),
		"r.test_" + port + "_/client.key": string(cliKey),
	})
	hosts, err := remote.LoadHostsDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// r.test resolves to the server, as /etc/hosts would say.
	base := http.DefaultTransport.(*http.Transport).Clone()
	addr := srv.Listener.Addr().String()
	base.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	tr := &http.Client{Transport: base}
	ctx := context.Background()
	for _, withCert := range []bool{true, false} {
		h := hosts
		if !withCert {
			hc := hosts["r.test:"+port]
			hc.Certificates = nil
			h = map[string]remote.HostConfig{"r.test:" + port: hc}
		}
		c, err := remote.NewClient(regtest.QuickRetry(), remote.WithHosts(h), remote.WithHTTPClient(tr))
		if err != nil {
			t.Fatal(err)
		}
		ref := "r.test:" + port + "/app:1"
		_, err = c.Push(ctx, ref, regtest.Image(t, "amd64"))
		c.Close()
		if withCert && err != nil {
			t.Errorf("Push with the hosts.toml's client certificate: %v", err)
		}
		if !withCert && err == nil {
			t.Errorf("Push without a client certificate succeeded")
		} else if !withCert {
			t.Logf("Push without a client certificate: %v", err)
		}
	}
}
