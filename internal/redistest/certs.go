package redistest

import (
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/tlscert"
)

// Certs are PEM files made for one test: a private CA and the server and
// client certificates it signed.
type Certs struct {
	CA                    string // the CA's certificate
	ServerCert, ServerKey string
	ClientCert, ClientKey string
}

// NewCerts makes a CA and the certificates it signs in a temp dir.
func NewCerts(tb testing.TB) Certs {
	tb.Helper()
	ca, err := tlscert.NewCA(tb.TempDir(), "sessionlab test", 24*time.Hour)
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	c := Certs{CA: ca.Cert}
	var errServer, errClient error
	c.ServerCert, c.ServerKey, errServer = ca.Issue("server", x509.ExtKeyUsageServerAuth)
	c.ClientCert, c.ClientKey, errClient = ca.Issue("client", x509.ExtKeyUsageClientAuth)
	if err := errors.Join(errServer, errClient); err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	return c
}

// StartTLS starts a redis-server speaking TLS on TLSAddr (with client
// certificates, Redis's default) and plain RESP on Addr for Do and MustDo.
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
