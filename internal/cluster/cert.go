package main

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/sessionlab/sessionlab/internal/tlscert"
)

// localhostCert makes a self-signed certificate for localhost in dir, once:
// a browser warns about it the first time; a test trusts the file.
func localhostCert(dir string) (cert, key string, err error) {
	cert, key = filepath.Join(dir, "localhost.pem"), filepath.Join(dir, "localhost-key.pem")
	if _, err := os.Stat(cert); err == nil {
		return cert, key, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", "", err
	}
	return tlscert.SelfSigned(dir, "localhost", "sessionlab cluster", 365*24*time.Hour)
}
