package tlscert

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
	"time"
)

// verify checks cert for usage against the roots in trusted, for host.
func verify(t *testing.T, cert, key, trusted, host string, usage x509.ExtKeyUsage) {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(trusted)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		t.Errorf("%s for %s: %v", cert, host, err)
	}
}

// A self-signed certificate is trusted through its own file; a CA's
// certificates through the CA's, each for its own use; all name the
// loopback addresses and localhost.
func TestCertificatesVerify(t *testing.T) {
	dir := t.TempDir()
	cert, key, err := SelfSigned(dir, "localhost", "test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		verify(t, cert, key, cert, host, x509.ExtKeyUsageServerAuth)
	}
	ca, err := NewCA(t.TempDir(), "test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	server, serverKey, err := ca.Issue("server", x509.ExtKeyUsageServerAuth)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, server, serverKey, ca.Cert, "127.0.0.1", x509.ExtKeyUsageServerAuth)
	client, clientKey, err := ca.Issue("client", x509.ExtKeyUsageClientAuth)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, client, clientKey, ca.Cert, "", x509.ExtKeyUsageClientAuth)
}
