// Package tlscert makes the PEM files of the local setups (nginx's
// self-signed certificate, the tests' private CA for Redis), each naming
// 127.0.0.1, ::1 and localhost.
package tlscert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// SelfSigned makes a self-signed server certificate in dir as name.pem and
// name-key.pem, for a client to trust this one file.
func SelfSigned(dir, name, org string, valid time.Duration) (cert, key string, err error) {
	tmpl := template(name, org, valid)
	tmpl.KeyUsage |= x509.KeyUsageCertSign
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	tmpl.BasicConstraintsValid, tmpl.IsCA = true, true
	cert, key, _, _, err = create(dir, name, tmpl, nil, nil)
	return cert, key, err
}

// CA is a private certificate authority; Cert is the file a client trusts.
type CA struct {
	Cert  string
	dir   string
	valid time.Duration
	cert  *x509.Certificate
	key   *ecdsa.PrivateKey
}

// NewCA makes a CA in dir (ca.pem, ca-key.pem).
func NewCA(dir, org string, valid time.Duration) (*CA, error) {
	tmpl := template(org+" CA", org, valid)
	tmpl.KeyUsage |= x509.KeyUsageCertSign
	tmpl.BasicConstraintsValid, tmpl.IsCA = true, true
	cert, _, parsed, key, err := create(dir, "ca", tmpl, nil, nil)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, dir: dir, valid: valid, cert: parsed, key: key}, nil
}

// Issue makes a certificate for usage signed by the CA, in the CA's dir as
// name.pem and name-key.pem.
func (ca *CA) Issue(name string, usage x509.ExtKeyUsage) (cert, key string, err error) {
	tmpl := template(name, ca.cert.Subject.Organization[0], ca.valid)
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
	cert, key, _, _, err = create(ca.dir, name, tmpl, ca.cert, ca.key)
	return cert, key, err
}

func template(name, org string, valid time.Duration) *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: name, Organization: []string{org}},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:   time.Now().Add(-time.Hour),
		NotAfter:    time.Now().Add(valid),
		KeyUsage:    x509.KeyUsageDigitalSignature,
	}
}

// create signs tmpl with a new key (by parent, or by itself when parent is
// nil) and writes the certificate and the key.
func create(dir, name string, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (cert, key string, parsed *x509.Certificate, priv *ecdsa.PrivateKey, err error) {
	if priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return "", "", nil, nil, err
	}
	if tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62)); err != nil {
		return "", "", nil, nil, err
	}
	if parent == nil {
		parent, parentKey = tmpl, priv
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &priv.PublicKey, parentKey)
	if err != nil {
		return "", "", nil, nil, fmt.Errorf("tlscert: %s: %w", name, err)
	}
	parsed, _ = x509.ParseCertificate(der)
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", "", nil, nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", nil, nil, err
	}
	cert, key = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", nil, nil, err
	}
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", nil, nil, err
	}
	return cert, key, parsed, priv, nil
}
