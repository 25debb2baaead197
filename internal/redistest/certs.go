package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Certs are PEM files made for one test: a private CA, a server
// certificate for 127.0.0.1 and localhost, and a client certificate, all
// signed by that CA.
type Certs struct {
	CA                    string // the CA's certificate
	ServerCert, ServerKey string
	ClientCert, ClientKey string
}

// NewCerts makes a CA and the certificates it signs in a temp dir.
func NewCerts(tb testing.TB) Certs {
	tb.Helper()
	dir := tb.TempDir()
	caKey := newKey(tb)
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: "sessionlab test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatalf("redistest: CA: %v", err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	c := Certs{CA: filepath.Join(dir, "ca.pem")}
	writePEM(tb, c.CA, "CERTIFICATE", caDER)
	issue := func(name string, usage x509.ExtKeyUsage) (cert, key string) {
		k := newKey(tb)
		tmpl := &x509.Certificate{
			SerialNumber: serial(tb),
			Subject:      pkix.Name{CommonName: name},
			DNSNames:     []string{"localhost"},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			tb.Fatalf("redistest: certificate %s: %v", name, err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			tb.Fatal(err)
		}
		cert, key = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
		writePEM(tb, cert, "CERTIFICATE", der)
		writePEM(tb, key, "PRIVATE KEY", keyDER)
		return cert, key
	}
	c.ServerCert, c.ServerKey = issue("server", x509.ExtKeyUsageServerAuth)
	c.ClientCert, c.ClientKey = issue("client", x509.ExtKeyUsageClientAuth)
	return c
}

// StartTLS starts a redis-server that speaks TLS on TLSAddr (clients must
// show a certificate signed by certs.CA, Redis's default), and plain RESP
// on Addr for the test's own Do and MustDo.
func StartTLS(tb testing.TB, certs Certs, extraArgs ...string) *Server {
	tb.Helper()
	port := freePort(tb)
	s := Start(tb, append([]string{"--tls-port", itoa(port),
		"--tls-cert-file", certs.ServerCert, "--tls-key-file", certs.ServerKey,
		"--tls-ca-cert-file", certs.CA}, extraArgs...)...)
	s.tlsPort = port
	return s
}

// TLSAddr is host:port of the server's TLS port (StartTLS).
func (s *Server) TLSAddr() string { return "127.0.0.1:" + itoa(s.tlsPort) }

func newKey(tb testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func serial(tb testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

func writePEM(tb testing.TB, path, typ string, der []byte) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
}
